"""Audit histories people can read (issue 13 item 6): every event of a handover and of a
collection's steps rendered as labelled fields in zh_CN, with no raw key, code, JSON or
escape; the raw JSON behind "Technical details" for compliance only."""
import re

from flask_login import login_user

from audit.field_labels import FIELD_LABELS, HIDDEN, HIDDEN_FOR
from audit.models import AuditEvent
from audit.presenting import event_fields, technical_json
from cases.presenters import history_rows
from tests.conftest import login
from tests.test_collection import CALL, do, overdue, staff  # noqa: F401 (fixtures)
from tests.test_servicing import serviced  # noqa: F401 (fixture)

ZH = {"Accept-Language": "zh-CN"}
CODE = re.compile(r"\b[a-z]+_[a-z0-9_]+\b")   # wilful_default, dpd_1_3, bpmn_id…
RAW = ("{'", '{"', "\\u", "[{", "None", "True", "False")


def walk(overdue, staff):  # noqa: F811
    """A handed-over loan, overdue; a phone call proposing a visit, its approval and the
    visit report (collection steps of three people)."""
    loan = overdue()
    do(loan, "phone_collection", staff["collector"],
       **dict(CALL, answered_by="nobody", collection_result="no_answer",
              next_step="propose_visit", visit_reason="no answer for a week"))
    do(loan, "approve_visit", staff["leader"], visit_decision="approve", visit_comment="go")
    do(loan, "visit_report", staff["collector"], visit_address="杭州市西湖区",
       visit_met="借款人妻子", visit_findings="shop closed", visit_situation="wilful_default",
       visit_photos_note="4 photos")
    return loan


def _keys(data):
    for key, value in (data or {}).items():
        yield key
        if isinstance(value, dict) and key != "data":
            yield from _keys(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield from _keys(item)


def test_every_event_of_the_demo_walk_reads_in_chinese(app, overdue, staff):  # noqa: F811
    loan = walk(overdue, staff)
    events = AuditEvent.query.filter_by(case_id=loan.id).order_by(AuditEvent.id).all()
    actions = {e.action for e in events}
    assert {"case.created", "task.completed", "collection.call_logged",
            "collection.visit_logged", "case.stage_changed"} <= actions
    for event in events:  # every key has a label or is a technical detail
        for key in _keys(event.data):
            assert (key in FIELD_LABELS or key in HIDDEN or key.endswith("_id")
                    or key in HIDDEN_FOR.get(event.action, ())), (event.action, key)
    with app.test_request_context("/", headers=ZH):
        login_user(staff["compliance"])
        rows = history_rows(events, loan=loan)
    for event, title, pairs in rows:
        if event.data and event.action not in ("task.claimed", "task.unclaimed"):
            assert pairs, event.action
        for label, value in pairs:
            assert not CODE.search(label) and not CODE.search(value), (event.action, label,
                                                                       value)
            assert not any(r in value for r in RAW), (event.action, value)
            assert "13800138000" not in value and "11010519491231002X" not in value
    text = " ".join(f"{label} {value}" for _, _, pairs in rows for label, value in pairs)
    for expected in ("无人接听", "核对结果", "完整", "正常"):
        assert expected in text, expected
    situation = next(p for e, _, p in rows if e.action == "collection.visit_logged")
    assert "wilful_default" not in str(situation)


def test_timeline_has_technical_details_for_compliance_only(app, overdue, staff):  # noqa: F811
    loan = walk(overdue, staff)
    client = app.test_client()
    login(client, "compliance")
    html = client.get(f"/cases/{loan.loan_no}/timeline", headers=ZH).get_data(as_text=True)
    assert html.count('<details class="technical') > 10
    assert "\\u" not in html and "{&#39;" not in html
    assert "wilful_default" in html  # only inside the technical details…
    readable = re.sub(r'<details class="technical.*?</details>', "", html, flags=re.S)
    assert "wilful_default" not in readable and "bpmn_id" not in readable  # …never outside
    assert "11010519491231002X" not in html  # masked in the JSON too
    login(client, "leader")
    html = client.get(f"/cases/{loan.loan_no}/timeline", headers=ZH).get_data(as_text=True)
    assert '<details class="technical' not in html and "bpmn_id" not in html


def test_search_results_read_as_fields(app, overdue, staff):  # noqa: F811
    loan = walk(overdue, staff)
    client = app.test_client()
    login(client, "compliance")
    html = client.get(f"/compliance/search?loan={loan.loan_no}", headers=ZH).get_data(
        as_text=True)
    readable = re.sub(r'<details class="technical.*?</details>', "", html, flags=re.S)
    assert "\\u" not in html and '<details class="technical' in html
    for code in ("bpmn_id", "phone_collection", "dpd_1_3", "collection_result"):
        assert code not in readable, code


def test_technical_json_is_unescaped_and_masked(app, serviced, users):  # noqa: F811
    loan = serviced()
    created = AuditEvent.query.filter_by(action="case.created").one()
    with app.test_request_context("/", headers=ZH):
        login_user(users["compliance"])
        raw = technical_json(created, loan=loan)
        fields = dict(event_fields(created, loan=loan))
    assert "张伟" in raw and "\\u" not in raw and "110105********002X" in raw
    assert "110105********002X" in fields["借款人"]
