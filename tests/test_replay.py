"""Replay before deploy (issue 15 item 5): the recorded history of cases run on a draft, and
where the new version diverges."""
import datetime as dt
import json

import pytest
from sqlalchemy import text

from accounts.operations import create_user
from audit.models import AuditEvent
from cases.models import Loan
from cases.operations import register_loan
from cases.staging import run_daily
from extensions import db
from tests.conftest import PASSWORD, ROOT, login
from tests.test_servicing import hand_over, three_installment_payload
from workflows import clock, replay
from workflows.models import HumanTask, ProcessInstance
from workflows.service import complete_task
from workflows.timers import fire_due_timers
from workflows.validation import load_forms

UTC = dt.timezone.utc
BEIJING = dt.timezone(dt.timedelta(hours=8))
COLLECTION = (ROOT / "bpmn" / "collection.bpmn").read_text(encoding="utf-8")
FORMS = load_forms(ROOT / "bpmn" / "forms")
CALL = {"number_called": "13800138000", "answered_by": "borrower",
        "collection_result": "reached", "next_step": "continue"}
THRESHOLD = "<bpmn:conditionExpression>dpd &gt; 90</bpmn:conditionExpression>"


def at(day, hour, minute=0):
    clock.set_now(dt.datetime.combine(day, dt.time(hour, minute), BEIJING).astimezone(UTC))


def with_threshold(days):
    assert COLLECTION.count(THRESHOLD) == 1
    return COLLECTION.replace(THRESHOLD, THRESHOLD.replace("90", str(days)))


def ready(loan_id, bpmn_id):
    return HumanTask.query.filter_by(case_id=loan_id, process_key="collection",
                                     bpmn_id=bpmn_id, state="ready").one()


@pytest.fixture
def collection_cases(deployed, users):
    """Three collection cases whose litigation check saw different DPDs: A only 2 (at the
    start), B 2 then 45 (20 June), C 2 then 96 (10 August: litigation proposed)."""
    users["leader"] = create_user("leader", PASSWORD, ["dept_head"])
    loans = {}
    for name in "ABC":
        loan = register_loan(three_installment_payload(loan_no=f"S-{name}"), users["admin"])
        loans[name] = hand_over(loan, users).id
    at(dt.date(2026, 5, 8), 10)
    assert run_daily(dt.date(2026, 5, 8))["overdue"] == 3
    collector = users["collector"]
    complete_task(ready(loans["B"], "phone_collection").id, collector, data=CALL)
    at(dt.date(2026, 6, 20), 10)
    run_daily(dt.date(2026, 6, 20))
    fire_due_timers()  # B's retry: DPD 45, phone collection again; everyone's monthly notice
    at(dt.date(2026, 6, 21), 10)
    complete_task(ready(loans["C"], "phone_collection").id, collector, data=CALL)
    at(dt.date(2026, 8, 10), 10)
    run_daily(dt.date(2026, 8, 10))
    fire_due_timers()  # C's retry: DPD 96, litigation proposed
    assert ready(loans["C"], "approve_litigation")
    assert ready(loans["B"], "phone_collection") and ready(loans["A"], "phone_collection")
    return {name: db.session.get(Loan, loan_id).loan_no for name, loan_id in loans.items()}


def run(xml, forms=FORMS, **select):
    draft = replay.load_draft(xml, forms, "collection.bpmn")
    instances, more = replay.select_instances(draft.process_keys, **select)
    return replay.replay(draft, instances, more)


def outcomes(report):
    return {row["loan_no"]: row["outcome"] for row in report["cases"]}


def test_the_same_diagram_replays_every_case_identically(collection_cases):
    report = run(COLLECTION)
    assert outcomes(report) == {"S-A": "identical", "S-B": "identical", "S-C": "identical"}
    assert (report["total"], report["identical"], report["diverges"], report["fails"]) == (
        3, 3, 0, 0)
    assert all(row["live_services"] == [] for row in report["cases"])


def test_a_lower_litigation_threshold_diverges_exactly_the_cases_above_it(collection_cases):
    report = run(with_threshold(40))
    assert outcomes(report) == {"S-A": "identical", "S-B": "diverges", "S-C": "identical"}
    reason = next(r["reason"] for r in report["cases"] if r["loan_no"] == "S-B")
    assert reason["code"] == "gateway" and reason["gateway"] == "litigation_check"
    assert reason["expected"] == ["phone_collection"]
    assert reason["actual"] == ["litigation_paused"]
    assert "approve_litigation" in reason["waiting"]
    draft = replay.load_draft(with_threshold(40), FORMS, "collection.bpmn")
    names = replay.Names(draft, locale="en")
    assert replay.describe(reason, names) == (
        "At Over 90 days past due? (litigation_check) the new version goes to Litigation "
        "rejected less than 30 days ago? (litigation_paused) instead of Phone collection "
        "(phone_collection); it then waits at Approve litigation (approve_litigation), "
        "Send the written collection notice (written_notice).")


def test_a_higher_litigation_threshold_diverges_the_case_proposed_for_litigation(
        collection_cases):
    report = run(with_threshold(100))
    assert outcomes(report) == {"S-A": "identical", "S-B": "identical", "S-C": "diverges"}
    reason = next(r["reason"] for r in report["cases"] if r["loan_no"] == "S-C")
    assert (reason["code"], reason["gateway"], reason["expected"], reason["actual"]) == (
        "gateway", "litigation_check", ["litigation_paused"], ["phone_collection"])
