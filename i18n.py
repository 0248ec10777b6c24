"""The two interface languages and the current one."""
from flask_babel import get_locale

LANGUAGES = ("zh_CN", "en")


def current_language():
    """'zh_CN' or 'en' (Babel spells Simplified Chinese zh_Hans_CN)."""
    locale = get_locale()
    return "zh_CN" if locale is not None and locale.language == "zh" else "en"
