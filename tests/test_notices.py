"""The template library (issue 16): the placeholder syntax, saving versions (refused when a
placeholder is unknown, missing or malformed), concurrent saves, previews, the pages and the
PDF of a letter."""
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import IntegrityError

from accounts.operations import create_user
from audit.models import AuditEvent
from extensions import db
from notices import operations as ops
from notices import placeholders as ph
from notices.defaults import DEFAULTS
from notices.models import NoticeTemplate, NoticeTemplateVersion, SentNotice
from tests.conftest import PASSWORD, login
from tests.test_browser import live_server  # noqa: F401 (fixture)
from tests.test_browser_pages import open_page  # noqa: F401 (fixture)
from workflows.errors import Conflict, InvalidData

REMINDER = DEFAULTS["due_reminder"]


@pytest.fixture
def owner(users):
    return create_user("owner", PASSWORD, ["process_owner"])


def save(key="due_reminder", actor=None, comment="clearer", **texts):
    channel, _stage, subject_zh, subject_en, body_zh, body_en = DEFAULTS[key]
    values = {"subject_zh": subject_zh, "subject_en": subject_en, "body_zh": body_zh,
              "body_en": body_en} | texts
    return ops.save_version(key, comment=comment, actor=actor, **values)


# ---------------------------------------------------------------- the syntax

def test_parser_reads_names_and_literal_braces():
    parts, problems = ph.parse("a {loan_no} b {{x}} c")
    assert problems == [] and parts == ["a ", ("loan_no",), " b {x} c"]
    assert ph.fill("{{{loan_no}}}", {"loan_no": "L-1"}) == "{L-1}"


@pytest.mark.parametrize("text", ["{loan_no", "loan_no}", "{loan.no}", "{amount:>10}",
                                  "{ loan_no }", "{}", "{{loan_no}", "{a{b}}", "{0}"])
def test_parser_reports_malformed_text(text):
    assert ph.parse(text)[1], text


def test_check_reports_unknown_and_missing_required_placeholders():
    found = ph.check("due_reminder", "Pay {amount} by {due_date} {guarantor_name}")
    messages = [m % v for m, v in found]
    assert "{guarantor_name} is not a placeholder of this template." in messages
    assert "{repayment_account} is required in this template." in messages
    assert not ph.check("due_reminder", REMINDER[4])


def test_every_shipped_text_passes_its_own_checks():
    for key, (channel, stage, subject_zh, subject_en, body_zh, body_en) in DEFAULTS.items():
        assert not ops.problems(key, channel, subject_zh, subject_en, body_zh, body_en), key


TEXT = st.lists(st.sampled_from(list("{}ab _:.元") + ["{loan_no}", "{amount}", "{due_date}",
                                                     "{{", "}}"]), max_size=30).map("".join)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(text=TEXT, values=st.dictionaries(st.sampled_from(list(ph.PLACEHOLDERS)),
                                         st.one_of(st.none(), st.text(max_size=10),
                                                   st.integers()), max_size=6))
def test_rendering_never_raises(text, values):
    """Any text, clean or not, with any values: parse and fill answer, never raise; a text the
    checks accept renders every placeholder it names."""
    parts, problems = ph.parse(text)
    out = ph.fill(text, values)
    assert isinstance(out, str)
    if not problems and not ph.check("due_reminder", text, need_required=False):
        for part in parts:
            if isinstance(part, tuple) and values.get(part[0]) not in (None, ""):
                assert str(values[part[0]]) in out


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=st.dictionaries(st.sampled_from(list(ph.PLACEHOLDERS)),
                           st.one_of(st.none(), st.text(max_size=12), st.integers(),
                                     st.decimals(allow_nan=False, allow_infinity=False),
                                     st.dates()), max_size=8))
def test_formatting_any_values_for_a_saved_template_never_raises(app, raw):
    with app.test_request_context():
        for key in DEFAULTS:
            for language in ops.LANGUAGES:
                values = ph.formatted(key, raw, language)
                assert isinstance(ph.fill(DEFAULTS[key][4], values), str)


def test_values_are_written_for_the_language():
    assert ph.format_value("due_date", "2026-12-01", "zh_CN") == "2026年12月1日"
    assert ph.format_value("due_date", "2026-12-01", "en") == "1 December 2026"
    assert ph.format_value("amount", "1234.5", "zh_CN") == "¥1,234.50"
    assert ph.format_value("new_rate", "0.0435", "en") == "4.35%"


# ---------------------------------------------------------------- saving versions

def test_shipped_templates_are_written_once(app, owner):
    ops.ensure_templates()
    ops.ensure_templates()
    db.session.commit()
    assert NoticeTemplate.query.count() == len(DEFAULTS)
    assert NoticeTemplateVersion.query.count() == len(DEFAULTS)


def test_ensure_templates_survives_a_concurrent_writer(app, monkeypatch):
    """Another request wrote the template between our read and our insert: the savepoint
    rolls back and the row written is used."""
    ops.ensure_templates()
    db.session.commit()
    real = db.session.scalars
    calls = []

    def stale(statement, *a, **kw):
        if not calls and "notice_templates.key" in str(statement):
            calls.append(1)
            return iter(())  # "nothing written yet"
        return real(statement, *a, **kw)
    monkeypatch.setattr(db.session, "scalars", stale)
    ops.ensure_templates()
    monkeypatch.undo()
    db.session.commit()
    assert NoticeTemplate.query.count() == len(DEFAULTS)


@pytest.mark.parametrize("field,text,expected", [
    ("body_zh", "您的贷款{loan_no}将于{due_date}到期，应还{amount}。", "required"),
    ("body_en", REMINDER[5] + " {guarantor_name}", "not a placeholder"),
    ("body_zh", REMINDER[4] + " {amount", "not closed"),
    ("body_en", REMINDER[5] + " }", "has no"),
    ("body_zh", "", "cannot be empty"),
    ("body_en", REMINDER[5] + "x" * 400, "at most"),
])
def test_save_refuses_bad_text_and_changes_nothing(app, owner, field, text, expected):
    ops.ensure_templates()
    db.session.commit()
    with app.test_request_context(headers={"Accept-Language": "en"}):
        with pytest.raises(InvalidData) as err:
            save(actor=owner, **{field: text})
    assert field in err.value.field_errors
    assert expected in " ".join(err.value.field_errors[field]).lower() or \
        expected in " ".join(err.value.field_errors[field])
    db.session.rollback()
    assert ops.current_version("due_reminder").version == 1


def test_save_refuses_in_the_users_language_and_wants_a_comment(app, owner):
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        with pytest.raises(InvalidData) as err:
            save(actor=owner, comment=" ", body_zh="{loan_no}")
    assert "comment" in err.value.field_errors


def test_a_new_version_is_used_and_audited(app, owner):
    version = save(actor=owner, body_zh=REMINDER[4].replace("如已还款请忽略。", ""))
    db.session.commit()
    assert version.version == 2 and ops.current_version("due_reminder").id == version.id
    event = AuditEvent.query.filter_by(action="notice.template_saved",
                                       actor_id=owner.id).one()
    assert event.data == {"key": "due_reminder", "version": 2, "comment": "clearer"}


def test_concurrent_saves_one_wins_the_other_is_a_clear_conflict(app, owner):
    save(actor=owner, base_version=1)
    db.session.commit()
    with pytest.raises(Conflict):
        save(actor=owner, base_version=1, comment="mine")
    db.session.rollback()
    assert [v.version for v in ops.template("due_reminder").versions] == [1, 2]


def test_a_race_on_the_version_number_is_a_conflict_not_an_error(app, owner, monkeypatch):
    """Two saves read the same highest version: the unique constraint refuses the second."""
    ops.ensure_templates()
    db.session.commit()
    template = ops.template("due_reminder")
    db.session.add(NoticeTemplateVersion(template_id=template.id, version=2, body_zh="x",
                                         body_en="x"))
    db.session.flush()
    real = db.session.scalar

    def stale_max(statement, *a, **kw):
        if "max(notice_template_versions.version)" in str(statement):
            return 1
        return real(statement, *a, **kw)
    monkeypatch.setattr(db.session, "scalar", stale_max)
    with pytest.raises(Conflict):
        save(actor=owner)
    monkeypatch.undo()
    db.session.rollback()


def test_integrity_error_is_caught_inside_a_savepoint(app):
    # The outer transaction survives the refused insert (nothing else is lost).
    ops.ensure_templates()
    db.session.commit()
    template = ops.template("early_recall")
    try:
        with db.session.begin_nested():
            db.session.add(NoticeTemplateVersion(template_id=template.id, version=1,
                                                 body_zh="x", body_en="x"))
            db.session.flush()
    except IntegrityError:
        pass
    assert ops.current_version("early_recall").version == 1


# ---------------------------------------------------------------- pages

def test_pages_list_edit_preview_and_restore(app, owner, new_loan):
    loan = new_loan("N-1", borrower_name="王五")
    db.session.commit()
    client = app.test_client()
    login(client, "owner")
    page = client.get("/notices", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "到期提醒" in page or "Due-date reminder" in page
    assert "due_reminder" not in page.replace('id="template-due_reminder"', "").replace(
        "/notices/due_reminder", "")
    page = client.get("/notices/due_reminder?loan_no=N-1").get_data(as_text=True)
    assert "王五" in page and "N-1" in page
    # What only the sending step knows (the installment's date and amount) shows as examples,
    # said so, never as a gap in the text.
    page = client.get("/notices/due_reminder?loan_no=N-1",
                      headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'id="preview-examples"' in page and "Due date" in page and "¥8,650.00" in page
    # A bad text: field errors, the text kept, nothing saved.
    bad = client.post("/notices/due_reminder", data={
        "body_zh": "请还款{amount}", "body_en": REMINDER[5], "comment": "shorter",
        "base_version": "1", "action": "save"}, headers={"Accept-Language": "en"})
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert "{due_date} is required in this template." in html and "请还款{amount}" in html
    # A draft previewed on the case, not saved.
    draft = client.post("/notices/due_reminder", data={
        "body_zh": REMINDER[4] + "谢谢。", "body_en": REMINDER[5], "comment": "",
        "base_version": "1", "loan_no": "N-1", "action": "preview"})
    assert draft.status_code == 200 and "谢谢。" in draft.get_data(as_text=True)
    assert ops.current_version("due_reminder").version == 1
    ok = client.post("/notices/due_reminder", data={
        "body_zh": REMINDER[4] + "谢谢。", "body_en": REMINDER[5], "comment": "thanks",
        "base_version": "1", "action": "save"})
    assert ok.status_code == 302
    assert ops.current_version("due_reminder").version == 2
    # Someone else saved meanwhile: a conflict, the text kept.
    stale = client.post("/notices/due_reminder", data={
        "body_zh": REMINDER[4] + "再见。", "body_en": REMINDER[5], "comment": "bye",
        "base_version": "1", "action": "save"})
    assert stale.status_code == 409 and "再见。" in stale.get_data(as_text=True)
    old = client.get("/notices/due_reminder/versions/1")
    assert old.status_code == 200 and "谢谢。" not in old.get_data(as_text=True)
    assert client.post("/notices/due_reminder/versions/1/restore").status_code == 302
    current = ops.current_version("due_reminder")
    assert current.version == 3 and current.body_zh == REMINDER[4]
    assert loan.id


def test_other_staff_read_but_cannot_save(app, users, owner):
    client = app.test_client()
    login(client, "collector")
    assert client.get("/notices").status_code == 200
    assert client.get("/notices/collection_notice").status_code == 200
    assert client.post("/notices/due_reminder", data={
        "body_zh": REMINDER[4], "body_en": REMINDER[5], "comment": "x",
        "action": "save"}).status_code == 403
    assert client.post("/notices/due_reminder/versions/1/restore").status_code == 403
    assert ops.current_version("due_reminder").version == 1


def test_preview_of_a_case_is_refused_to_who_may_not_see_it(app, users, new_loan):
    new_loan("N-2", manager="am2")
    db.session.commit()
    client = app.test_client()
    login(client, "am")  # an account manager sees only their own cases
    page = client.get("/notices/due_reminder?loan_no=N-2",
                      headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "You may not see this case." in page and "杭州明远贸易" not in page
    assert client.get("/notices/collection_notice/preview.pdf?loan_no=N-2").status_code == 403


def test_letter_pdf_opens_for_who_may_see_the_case_only(app, users, new_loan):
    loan = new_loan("N-3", manager="am")
    ops.send("lawyers_letter", loan, {"deadline": dt.date(2026, 7, 1)}, "杭州明远贸易有限公司")
    db.session.commit()
    notice = SentNotice.query.one()
    assert notice.subject == "律师函" and "2026年7月1日" in notice.body
    client = app.test_client()
    login(client, "am")
    response = client.get(f"/cases/N-3/notices/{notice.id}.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    case_page = client.get("/cases/N-3").get_data(as_text=True)
    assert f"/cases/N-3/notices/{notice.id}.pdf" in case_page
    preview = client.get("/notices/lawyers_letter/preview.pdf?loan_no=N-3&language=en")
    assert preview.status_code == 200 and preview.data.startswith(b"%PDF")
    other = app.test_client()
    login(other, "am2")
    assert other.get(f"/cases/N-3/notices/{notice.id}.pdf").status_code == 403


def test_a_letter_is_traced_in_its_own_words():
    from notices.letters import reference
    assert reference("zh_CN", 3, 41) == "文书编号：000041 · 模板第3版"
    assert reference("en", 3, 41) == "Notice no. 000041 · template version 3"
    assert reference("zh_CN", 2) == "模板第2版"  # a preview has no number


# ---------------------------------------------------------------- in a browser

@pytest.mark.parametrize("viewport, locale", [("desktop", "zh-CN"), ("phone", "en-US")])
def test_pages_are_accessible_in_a_browser(capsys, app, owner, new_loan, live_server,  # noqa: F811
                                           open_page, viewport, locale):
    from tests.test_browser import browser_login, require_chromium
    from tests.test_browser_pages import check
    require_chromium(capsys)
    create_user("ownrisk", PASSWORD, ["process_owner", "risk_manager"])  # sees cases too
    loan = new_loan("N-9")
    ops.send("collection_notice", loan, {}, "杭州明远贸易有限公司")
    db.session.commit()
    problems = []
    if True:
        page = open_page(viewport, locale)
        browser_login(page, "ownrisk")
        for name, url in (("list", "/notices"),
                          ("edit", "/notices/collection_notice?loan_no=N-9"),
                          ("version", "/notices/due_reminder/versions/1?loan_no=N-9"),
                          ("case", "/cases/N-9")):
            page.goto(url)
            check(page, f"notices-{name}-{viewport}", problems, viewport)
        page.goto("/notices/due_reminder")
        page.fill("#body_zh", "{amount")
        page.fill("#comment", "try")
        page.click("button[value=save]")
        assert page.locator("#body_zh[aria-invalid=true]").count() == 1
        check(page, f"notices-error-{viewport}", problems, viewport)
    assert problems == []
