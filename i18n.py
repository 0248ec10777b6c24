"""The two interface languages and the current one."""
from babel import Locale
from flask_babel import get_locale

LANGUAGES = ("zh_CN", "en")
LOCALES = {name: Locale.parse(name) for name in LANGUAGES}


def current_language():
    """'zh_CN' or 'en' (Babel spells Simplified Chinese zh_Hans_CN)."""
    locale = get_locale()
    return "zh_CN" if locale is not None and locale.language == "zh" else "en"


def N_(message):
    """Mark a message for extraction without translating it: the API answers in English and
    the web pages translate the message when they show it."""
    return message
