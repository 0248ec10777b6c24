"""Every outgoing text goes through its template (issue 16): each wired sender records a
SentNotice with the version in use and the rendered text; a new version changes what the next
send uses while the notices already sent keep theirs; the demo's notices all trace back."""
import datetime as dt
from types import SimpleNamespace
from xml.etree import ElementTree as ET

import pytest

from accounts.models import User
from audit.models import AuditEvent
from cases.models import Loan
from extension_requests.operations import request_extension
from extensions import db
from monitoring.risk import _notify_recall
from notices import operations as ops
from notices.defaults import DEFAULTS
from notices.models import SentNotice
from notifications.models import Notification
from tests.test_collection import CALL, at, do, overdue, ready, staff  # noqa: F401
from tests.test_extension import REQUEST, approve, bosses, open_task, review  # noqa: F401
from tests.test_guarantor_demand import GUARANTORS, send_notice, start_demand
from tests.test_guarantor_demand import ready as demand_ready
from tests.test_servicing import serviced  # noqa: F401 (fixture)
from workflows import clock
from workflows.inbox import open_tasks_of_case
from workflows.tasks import complete_task
from workflows.timers import fire_due_timers
from ledger.repayments import post_repayment

UTC = dt.timezone.utc


def sent(loan, key):
    return (SentNotice.query.filter_by(loan_id=loan.id, template_key=key)
            .order_by(SentNotice.id).all())


def traced(notice, version=1):
    """The notice names the version in use, keeps the rendered text, and is audited."""
    assert notice.template_version.version == version
    assert notice.template_version.template.key == notice.template_key
    assert "{" not in notice.body and notice.body.strip()
    event = AuditEvent.query.filter_by(action="notice.sent", case_id=notice.loan_id).filter(
        AuditEvent.data["notice_id"].as_integer() == notice.id).one()
    assert event.data["version"] == version and event.data["body"] == notice.body
    return notice


def test_reminder_sms_uses_the_version_in_use_and_old_notices_keep_theirs(app, serviced, users):
    loan = serviced()
    clock.set_now(dt.datetime(2026, 4, 30, 1, 0, 1, tzinfo=UTC))
    fire_due_timers()
    db.session.commit()
    (first,) = sent(loan, "due_reminder")
    traced(first)
    sms = db.session.get(Notification, first.notification_id)
    assert sms.body == first.body and sms.recipient == first.recipient == "13800138000"
    # DOMAIN.md §5.2: the date, the account and the amount.
    assert "2026年5月6日" in first.body and "¥101,000.00" in first.body
    assert loan.repayment_account in first.body
    owner = User.query.filter_by(username="admin").one()
    channel, _stage, sz, se, body_zh, body_en = DEFAULTS["due_reminder"]
    ops.save_version("due_reminder", sz, se, "新版：" + body_zh, body_en, "v2", owner)
    db.session.commit()
    clock.set_now(dt.datetime(2026, 6, 18, 1, 0, 1, tzinfo=UTC))
    fire_due_timers()
    db.session.commit()
    first_again, second = sent(loan, "due_reminder")
    assert first_again.template_version.version == 1 and not first_again.body.startswith("新版")
    traced(second, 2)
    assert second.body.startswith("新版：")


def test_early_recall_sms(app, serviced):
    loan = serviced()
    _notify_recall(loan, SimpleNamespace(id=7))
    db.session.commit()
    (notice,) = sent(loan, "early_recall")
    traced(notice)
    assert notice.notification_id and "提前收回" in notice.body and loan.loan_no in notice.body


def test_monthly_written_notice_is_issued_before_the_task(app, overdue, staff):  # noqa: F811
    from cases.staging import run_daily
    loan = overdue()
    run_daily(dt.date(2026, 6, 8))
    at(dt.date(2026, 6, 8), 10, 1)
    fire_due_timers()
    task = ready(loan, "written_notice")
    (notice,) = sent(loan, "collection_notice")
    traced(notice)
    assert notice.channel == "letter" and notice.subject == "书面催收通知书"
    assert "逾期33天" in notice.body and notice.recipient.startswith(loan.borrower_name)
    do(loan, "written_notice", staff["collector"], notice_sent_on="2026-06-08",
       notice_channel="in_person", notice_address="杭州市西湖区", receipt_status="pending")
    logged = AuditEvent.query.filter_by(action="collection.notice_sent").one()
    assert logged.data["notice_id"] == notice.id and task.id


def test_lawyers_letter_when_litigation_is_approved(app, overdue, staff):  # noqa: F811
    loan = overdue()
    do(loan, "phone_collection", staff["collector"], **dict(
        CALL, answered_by="nobody", collection_result="no_answer", next_step="propose_visit",
        visit_reason="no answer"))
    do(loan, "approve_visit", staff["leader"], visit_decision="approve", visit_comment="go")
    do(loan, "visit_report", staff["collector"], visit_address="杭州市西湖区", visit_met="邻居",
       visit_findings="shop closed", visit_situation="wilful_default",
       visit_photos_note="none")
    assert not sent(loan, "lawyers_letter")
    do(loan, "approve_litigation", staff["leader"], litigation_decision="approve",
       litigation_comment="sue")
    assert ready(loan, "legal_filing")
    (notice,) = sent(loan, "lawyers_letter")
    traced(notice)
    assert notice.subject == "律师函" and notice.sent_by_id == staff["leader"].id
    assert notice.task_id is not None and notice.instance_id is not None


def test_guarantor_demand_letter(app, overdue, staff):  # noqa: F811
    loan = overdue(guarantors=GUARANTORS)
    start_demand(loan)
    task = demand_ready(loan, "send_demand_notice")
    assert "[1] 致保证人李强" in task.context["guarantor_notices"]
    send_notice(loan, staff["collector"])
    (notice,) = sent(loan, "guarantor_demand")
    traced(notice)
    assert notice.recipient.startswith("李强") and "¥101,035.75" in notice.body
    assert notice.sent_by_id == staff["collector"].id


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_extension_decision_letter(app, serviced, bosses, decision):  # noqa: F811
    loan = serviced()
    request_extension(loan, REQUEST, bosses["am"])
    review(loan, bosses["dh"])
    approve(loan, bosses["gm"], decision)
    key = "extension_approved" if decision == "approve" else "extension_rejected"
    (notice,) = sent(loan, key)
    traced(notice)
    assert notice.sent_by_id == bosses["gm"].id and notice.channel == "letter"
    if decision == "approve":
        assert "展期" in notice.body and "2026年12月15日" in notice.body
    else:
        assert open_task(loan, "inform_client")


def test_closure_invitation_sms(app, serviced, users):
    loan = serviced()
    post_repayment(loan, {"amount": "303000.00", "paid_at": "2026-04-01",
                          "external_ref": "ALL"}, users["admin"])
    loan = db.session.get(Loan, loan.id)
    verify = open_tasks_of_case(loan.id)[0]
    complete_task(verify.id, users["plo"], data={"settlement_verified": True,
                                                 "ledger_closed_on": "2026-04-02"})
    invite = open_tasks_of_case(loan.id)[0]
    complete_task(invite.id, users["am"], data={
        "appointment_on": "2026-04-08", "appointment_time": "10:00",
        "appointment_place": "公司三楼", "invitation_channel": "phone"})
    (notice,) = sent(loan, "closure_invitation")
    traced(notice)
    assert "2026年4月8日" in notice.body and "公司三楼" in notice.body
    assert notice.sent_by_id == users["am"].id and notice.notification_id


def test_bpmn_steps_name_the_template_they_send():
    """Every template is named by a diagram's service task, or by the code that sends it."""
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent / "bpmn"
    named = set()
    for path in root.glob("*.bpmn"):
        for param in ET.parse(path).iter("{http://spiffworkflow.org/bpmn/schema/1.0/core}parameter"):
            if param.get("id") in ("template", "notice"):
                named.add(param.get("value").strip('"'))
    assert set(DEFAULTS) - named == {"early_recall"}  # sent by monitoring/risk.py's recall


def test_every_notice_of_the_demo_traces_to_its_template_version(app, deployed):
    from demo import load_demo
    app.config["DEMO_HISTORY_LOANS"] = 8
    try:
        load_demo()
    finally:
        app.config.pop("DEMO_HISTORY_LOANS")
    staff_names = {u.username for u in User.query}
    notifications = Notification.query.all()
    to_people = [n for n in notifications if n.recipient not in staff_names]
    assert to_people, "the demo sends no SMS to borrowers"
    traced_ids = {s.notification_id for s in SentNotice.query}
    assert all(n.id in traced_ids for n in to_people)
    assert all(s.template_version is not None for s in SentNotice.query)
