"""The gettext catalogs: complete in both languages, up to date with the code, compiled,
and actually used by the pages."""
import re
import shlex
import subprocess
import sys
from collections import Counter

import pytest
from babel.messages.pofile import read_po
from flask_babel import get_translations

from tests.conftest import ROOT, login

TRANSLATIONS = ROOT / "translations"
POT = TRANSLATIONS / "messages.pot"
LANGUAGES = ("zh_CN", "en")
# Babel parses zh_CN as zh_Hans_CN and loads the catalog from that directory.
CATALOG_DIRS = {"zh_CN": "zh_Hans_CN", "en": "en"}
# Printf-style placeholders: %(name)s, %(n)d, %s, %%.
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")
CJK = re.compile(r"[\u4e00-\u9fff]")
# zh_CN strings that may legitimately contain no Chinese character (proper names).
ZH_KEEP_AS_IS = {"Daihou", ", "}  # the product name; a list separator (、)


def load_po(path):
    with open(path, "rb") as f:
        return read_po(f)


def ids(catalog):
    """Message ids of a catalog without the header (plural messages by their singular)."""
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def bare_percents(text):
    """The text without its placeholders and %% (what is left is a literal %)."""
    return PLACEHOLDER.sub("", (text or "").replace("%%", ""))


def placeholders(text):
    return Counter(PLACEHOLDER.findall(text or ""))


@pytest.fixture(scope="module")
def template():
    return load_po(POT)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_is_complete(template, lang):
    catalog = load_po(TRANSLATIONS / CATALOG_DIRS[lang] / "LC_MESSAGES" / "messages.po")
    problems = []
    for entry in template:
        if not entry.id:
            continue
        message = catalog.get(entry.id)
        if message is None:
            problems.append(f"missing: {entry.id!r}")
            continue
        strings = as_tuple(message.string)
        if message.fuzzy:
            problems.append(f"fuzzy: {entry.id!r}")
        if not all(s and s.strip() for s in strings):
            problems.append(f"untranslated: {entry.id!r}")
            continue
        expected = placeholders(as_tuple(entry.id)[0])
        for s in strings:
            if placeholders(s) != expected:
                problems.append(f"placeholders differ: {entry.id!r} -> {s!r}")
            # Jinja's gettext always %-formats: a "%" the msgid lacks breaks the page
            if "%" in bare_percents(s) and "%" not in bare_percents(as_tuple(entry.id)[0]):
                problems.append(f"a bare % the msgid does not have: {entry.id!r} -> {s!r}")
        if lang == "en" and strings != as_tuple(entry.id)[:len(strings)]:
            problems.append(f"en differs from msgid: {entry.id!r} -> {message.string!r}")
        if lang == "zh_CN" and entry.id not in ZH_KEEP_AS_IS and \
                not any(CJK.search(s) for s in strings):
            problems.append(f"no Chinese in zh_CN: {entry.id!r} -> {message.string!r}")
    for message, errors in catalog.check():  # Babel's own python-format checks
        problems += [f"{message.id!r}: {e}" for e in errors]
    assert not problems, f"{lang} catalog:\n" + "\n".join(problems)


def test_catalogs_have_no_stray_messages(template):
    for lang in LANGUAGES:
        catalog = load_po(TRANSLATIONS / CATALOG_DIRS[lang] / "LC_MESSAGES" / "messages.po")
        extra = ids(catalog) - ids(template)
        assert not extra, f"{lang} has messages the template lacks (run `make extract`): " \
                          f"{sorted(extra)}"


def extract_command(output):
    """The Makefile's own `pybabel extract` line, writing to `output` instead."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    line = next(ln.strip() for ln in makefile.splitlines() if "pybabel extract" in ln)
    args = shlex.split(line)
    args = args[args.index(next(a for a in args if a.endswith("pybabel"))) + 1:]
    args[args.index("-o") + 1] = str(output)
    return [sys.executable, "-c", "import sys; from babel.messages.frontend import main; "
            "sys.argv[0] = 'pybabel'; sys.exit(main())", *args]


def test_template_is_up_to_date_with_the_code(template, tmp_path):
    fresh = tmp_path / "messages.pot"
    subprocess.run(extract_command(fresh), cwd=ROOT, check=True, capture_output=True)
    extracted = ids(load_po(fresh))
    missing = sorted(extracted - ids(template))
    stale = sorted(ids(template) - extracted)
    assert not missing, "strings in the code but not in translations/messages.pot " \
                        f"(run `make extract` and translate them): {missing}"
    assert not stale, "strings in translations/messages.pot no longer in the code " \
                      f"(run `make extract`): {stale}"


@pytest.mark.parametrize("lang, header", [("zh_CN", "zh-CN"), ("en", "en")])
def test_app_loads_the_compiled_catalog(app, lang, header):
    """What Flask-Babel really serves matches the .po."""
    catalog = load_po(TRANSLATIONS / CATALOG_DIRS[lang] / "LC_MESSAGES" / "messages.po")
    with app.test_request_context("/", headers={"Accept-Language": header}):
        translations = get_translations()

        def served(message):  # a message with a context is looked up with it
            return translations.pgettext(message.context, message.id) if message.context \
                else translations.gettext(message.id)
        wrong = [(m.id, served(m), m.string) for m in catalog
                 if m.id and isinstance(m.id, str) and served(m) != m.string]
    assert not wrong, f"the app serves a stale or missing {lang} catalog " \
                      f"(run `make translations`): {wrong[:5]}"


def test_pages_follow_accept_language(app, users):
    client = app.test_client()
    login(client, "am")
    zh = client.get("/inbox", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "待办" in zh and "认领" in zh
    assert 'lang="zh-CN"' in zh
    assert "Inbox" not in zh
    en = client.get("/inbox", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Inbox" in en and 'lang="en"' in en
    assert "待办" not in en


def test_loan_field_errors_are_translated(app, users):
    """Errors from the loan checks reach the form in the user's language (the API keeps
    them in English)."""
    client = app.test_client()
    login(client, "admin")
    form = {"loan_no": "I-1", "borrower_name": "张伟", "principal": "100000",
            "interest_rate": "0.05", "disbursed_on": "2026-03-02", "maturity_on": "2026-01-01",
            "account_manager": "am"}
    zh = client.post("/cases/new", data=form, headers={"Accept-Language": "zh-CN"})
    assert "必须晚于放款日" in zh.get_data(as_text=True)
    en = client.post("/cases/new", data=form, headers={"Accept-Language": "en"})
    assert "Must be after the disbursement date." in en.get_data(as_text=True)
