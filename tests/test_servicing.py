"""A loan's normal life: reminders on working days, repayments, daily staging, closure."""
import datetime as dt
from decimal import Decimal

import pytest

from cases.models import CaseProblem, Loan, StageChange
from ledger.models import Installment
from ledger.repayments import post_repayment
from cases.staging import run_daily
from extensions import db
from tests.conftest import HANDOVER_DATA, loan_payload
from workflows import clock
from workflows.errors import Conflict, InvalidData
from workflows.inbox import open_tasks_of_case
from workflows.models import HumanTask, ProcessInstance
from workflows.tasks import complete_task
from workflows.timers import fire_due_timers

UTC = dt.timezone.utc
SCHEDULE = [{"due_on": "2026-05-06", "principal": "100000.00", "interest": "1000.00"},
            {"due_on": "2026-06-19", "principal": "100000.00", "interest": "1000.00"},
            {"due_on": "2026-10-12", "principal": "100000.00", "interest": "1000.00"}]

# The counts of the staging itself (the AFTER_DAILY_RUN hooks of issue 14 add theirs).
STAGING_COUNTS = ("loans", "stage_changes", "overdue", "penalty_charges", "penalty",
                  "ledger_breaks")


def three_installment_payload(loan_no="S-1", **overrides):
    body = loan_payload(loan_no, product="installment", principal="300000.00", borrower_name="张伟",
                        maturity_on="2026-10-12", schedule=SCHEDULE,
                        repayment_account="6222020200112233445",
                        borrower={"kind": "person", "name": "张伟",
                                  "id_number": "11010519491231002X",
                                  "phones": ["13800138000"], "addresses": ["杭州市西湖区"]})
    body.update(overrides)
    return body


def hand_over(loan, users):
    complete_task(open_tasks_of_case(loan.id)[0].id, users["am"], data=HANDOVER_DATA)
    complete_task(open_tasks_of_case(loan.id)[0].id, users["plo"],
                  data={"check_result": "complete"})
    complete_task(open_tasks_of_case(loan.id)[0].id, users["plo"], data={
        "ledger_no": "TZ", "risk_group": "normal", "inspection_frequency": "monthly"})
    return db.session.get(Loan, loan.id)


@pytest.fixture
def serviced(new_loan, users):
    def make(**overrides):
        from cases.operations import register_loan
        loan = register_loan(three_installment_payload(**overrides), users["admin"])
        return hand_over(loan, users)
    return make


def reminder_instances(loan):
    return (ProcessInstance.query.filter_by(case_id=loan.id)
            .filter(ProcessInstance.business_key.like("installment:%"))
            .order_by(ProcessInstance.business_key).all())


def test_reminders_land_on_chinese_working_days(app, serviced):
    loan = serviced()
    instances = reminder_instances(loan)
    assert [i.business_key for i in instances] == [
        "installment:1", "installment:2", "installment:3"]
    timers = [i.next_timer_at.replace(tzinfo=UTC) for i in instances]
    assert timers == [
        # May 6 is after the Labour Day holiday (May 1-5): the day before is April 30.
        dt.datetime(2026, 4, 30, 1, 0, tzinfo=UTC),
        # June 19 is the Dragon Boat holiday itself: the working day before is June 18.
        dt.datetime(2026, 6, 18, 1, 0, tzinfo=UTC),
        # Final maturity, 5 working days before, across National Day: September 29.
        dt.datetime(2026, 9, 29, 1, 0, tzinfo=UTC)]

    runner = app.test_cli_runner()
    # The monthly inspection's first timer (2026-04-02) is not what this test is about.
    runner.invoke(args=["timers", "run", "--as-of", "2026-04-29T00:00:00+00:00"])
    early = runner.invoke(args=["timers", "run", "--as-of", "2026-04-30T01:00:00+00:00"])
    assert "0 timer(s) fired" in early.output
    due = runner.invoke(args=["timers", "run", "--as-of", "2026-04-30T01:00:01+00:00"])
    assert "1 timer(s) fired" in due.output
    task = HumanTask.query.filter_by(case_id=loan.id, bpmn_id="remind_borrower").one()
    assert task.lane == "back_office"
    assert task.context["due_on"] == "2026-05-06" and task.context["amount"] == "101000.00"
    from notifications.models import Notification
    sms = Notification.query.filter_by(loan_id=loan.id).one()
    assert sms.recipient == "13800138000" and "2026年5月6日" in sms.body


def test_rule_reminder_confirms_the_essentials_and_a_new_phone_updates_the_borrower(app, serviced, users):
    from accounts.operations import create_user
    clerk = create_user("clerk", "secret-pass", ["back_office"])
    loan = serviced()
    with clock.frozen_at(dt.datetime(2026, 4, 30, 1, 5, tzinfo=UTC)):
        fire_due_timers()
        task = HumanTask.query.filter_by(case_id=loan.id, bpmn_id="remind_borrower").one()
        with pytest.raises(InvalidData) as err:
            complete_task(task.id, clerk, data={"channel": "phone", "reached": "yes"})
        assert "confirmed_amount" in err.value.field_errors
        with pytest.raises(InvalidData) as err:
            complete_task(task.id, clerk, data={"channel": "sms", "reached": "no_answer",
                                                "promised_on": "2026-04-01"})
        assert "promised_on" in err.value.field_errors  # a promise cannot lie in the past
        complete_task(task.id, clerk, data={
            "channel": "phone", "reached": "yes", "confirmed_due_on": "2026-05-06",
            "confirmed_account": "6222020200112233445", "confirmed_amount": "101000",
            "enough_balance": "yes", "promised_on": "2026-05-06",
            "new_phone": "13900001111"})
    # Issue 11 rule 8: the new number learned in the call updates the borrower, audited.
    from audit.models import AuditEvent
    assert db.session.get(Loan, loan.id).borrower.phones[0] == "13900001111"
    assert AuditEvent.query.filter_by(action="borrower.phone_added").one().data["phone"] \
        == "13900001111"
    # The tracking check comes on the working day before the due date, at 16:00.
    instance = reminder_instances(loan)[0]
    assert instance.next_timer_at.replace(tzinfo=UTC) == dt.datetime(2026, 4, 30, 8, 0,
                                                                      tzinfo=UTC)
    with clock.frozen_at(dt.datetime(2026, 4, 30, 8, 1, tzinfo=UTC)):
        fire_due_timers()
    track = HumanTask.query.filter_by(case_id=loan.id, bpmn_id="track_repayment").one()
    complete_task(track.id, clerk, data={"debit_result": "paid"})
    assert db.session.get(ProcessInstance, instance.id).status == "completed"


def test_due_date_in_an_unknown_year_is_a_visible_problem(app, serviced, users):
    schedule = [{"due_on": "2026-12-15", "principal": "100000.00", "interest": "500.00"},
                {"due_on": "2031-03-17", "principal": "200000.00", "interest": "500.00"}]
    loan = serviced(loan_no="S-2031", maturity_on="2031-03-17", schedule=schedule)
    assert loan.status == "servicing"
    assert [i.business_key for i in reminder_instances(loan)] == ["installment:1"]
    problem = CaseProblem.query.filter_by(loan_id=loan.id, resolved_at=None).one()
    assert (problem.kind, problem.year) == ("calendar_year_missing", 2031)
    client = app.test_client()
    from tests.conftest import login
    login(client, "admin")
    page = client.get("/admin/problems", headers={"Accept-Language": "en"})
    assert "2031" in page.get_data(as_text=True) and "S-2031" in page.get_data(as_text=True)
    # An administrator enters 2031's holidays: the reminder is scheduled, the problem closed.
    from calendars.operations import complete_year, enter_days
    enter_days([dt.date(2031, 1, 1)], False, "New Year", users["admin"])
    assert CaseProblem.query.filter_by(loan_id=loan.id, resolved_at=None).count() == 1
    complete_year(2031, "", users["admin"])
    assert [i.business_key for i in reminder_instances(loan)] == [
        "installment:1", "installment:2"]
    assert CaseProblem.query.filter_by(loan_id=loan.id, resolved_at=None).count() == 0


def test_partial_duplicate_and_excess_repayments(app, serviced, users):
    loan = serviced()
    with pytest.raises(InvalidData):
        post_repayment(loan, {"amount": "-1", "paid_at": "2026-04-01",
                              "external_ref": "R1"}, users["admin"])
    first = post_repayment(loan, {"amount": "1500.00", "paid_at": "2026-04-01T10:00:00+08:00",
                                  "external_ref": "R1"}, users["admin"])
    # Oldest installment first; interest before principal.
    assert (first.interest, first.principal) == (Decimal("1000.00"), Decimal("500.00"))
    inst = Installment.query.filter_by(loan_id=loan.id, seq=1).one()
    assert inst.interest_paid == Decimal("1000.00") and inst.principal_paid == Decimal("500.00")
    before = Loan.query.get(loan.id).outstanding
    with pytest.raises(Conflict):
        post_repayment(loan, {"amount": "1500.00", "paid_at": "2026-04-01",
                              "external_ref": "R1"}, users["admin"])
    with pytest.raises(InvalidData):
        post_repayment(loan, {"amount": "999999.00", "paid_at": "2026-04-01",
                              "external_ref": "R2"}, users["admin"])
    loan = Loan.query.get(loan.id)
    assert loan.outstanding == before == Decimal("301500.00")
    assert loan.status == "servicing"


def test_repayment_api_is_idempotent_on_reference(app, serviced, users, token_for):
    loan = serviced()
    client, admin = app.test_client(), token_for("admin")
    url = f"/api/v1/loans/{loan.loan_no}/repayments"
    ok = client.post(url, json={"amount": "101000.00", "paid_at": "2026-05-06",
                                "external_ref": "CB-1"}, headers=admin)
    assert ok.status_code == 201
    assert ok.get_json()["allocation"] == [{"seq": 1, "interest": "1000.00",
                                            "principal": "100000.00"}]
    again = client.post(url, json={"amount": "101000.00", "paid_at": "2026-05-06",
                                   "external_ref": "CB-1"}, headers=admin)
    assert again.status_code == 409
    missing = client.post(url, json={"amount": "5"}, headers=admin)
    assert missing.status_code == 400
    assert {"paid_at", "external_ref"} <= set(missing.get_json()["field_errors"])
    # The first installment is paid: its reminder is cancelled, the others remain.
    statuses = {i.business_key: i.status for i in reminder_instances(loan)}
    assert statuses == {"installment:1": "cancelled", "installment:2": "running",
                        "installment:3": "running"}
    case = client.get(f"/api/v1/cases/{loan.loan_no}", headers=admin).get_json()
    assert (case["outstanding"], case["dpd"], case["stage"], case["status"]) == (
        "202000.00", 0, "current", "servicing")
    clerk = client.post(url, json={"amount": "1", "paid_at": "2026-05-06",
                                   "external_ref": "X"}, headers=token_for("collector"))
    assert clerk.status_code == 403


def test_daily_staging_overdue_collection_and_repayment_message(app, serviced, users):
    loan = serviced()
    assert run_daily(dt.date(2026, 5, 6))["stage_changes"] == 0
    counts = run_daily(dt.date(2026, 5, 8))
    # Two days of penalty interest on 100,000 at 4.35% + 50%: 100000 × 6.525% × 2 / 365.
    staged = {k: counts[k] for k in STAGING_COUNTS}  # the feature hooks add their own counts
    assert staged == {"loans": 1, "stage_changes": 1, "overdue": 1, "penalty_charges": 1,
                      "penalty": "35.75", "ledger_breaks": 0}
    loan = Loan.query.get(loan.id)
    assert (loan.dpd, loan.stage, loan.stage_since) == (2, "dpd_1_3", dt.date(2026, 5, 8))
    change = StageChange.query.filter_by(loan_id=loan.id).one()
    assert (change.from_stage, change.to_stage, change.dpd) == ("current", "dpd_1_3", 2)
    task = HumanTask.query.filter_by(case_id=loan.id, bpmn_id="phone_collection").one()
    assert task.lane == "collector" and task.context["dpd"] == 2
    clock.set_now(dt.datetime(2026, 5, 12, 2, tzinfo=UTC))
    run_daily(dt.date(2026, 5, 12))
    assert Loan.query.get(loan.id).stage == "dpd_4_7"
    assert ProcessInstance.query.join(ProcessInstance.definition).filter(
        ProcessInstance.case_id == loan.id).count() >= 1
    # A partial repayment is noted; collection goes on.
    post_repayment(loan, {"amount": "500.00", "paid_at": "2026-05-12",
                          "external_ref": "P1"}, users["admin"])
    collection = HumanTask.query.filter_by(case_id=loan.id, bpmn_id="phone_collection",
                                           state="ready").one()
    # Paying the overdue installment clears it: the repayment message ends collection.
    first = Installment.query.filter_by(loan_id=loan.id, seq=1).one()
    assert first.penalty_due == Decimal("107.26")  # 6 days by May 12
    post_repayment(loan, {"amount": str(first.outstanding), "paid_at": "2026-05-12",
                          "external_ref": "P2"}, users["admin"])
    assert HumanTask.query.get(collection.id).state == "cancelled"
    instance = ProcessInstance.query.get(collection.instance_id)
    assert instance.status == "completed"
    run_daily(dt.date(2026, 5, 13))
    loan = Loan.query.get(loan.id)
    assert (loan.dpd, loan.stage) == (0, "current")


def test_rule_closure_checks_are_real_after_full_repayment(app, serviced, users):
    """Also issue 11 rule 11: closure checks are real (confirmations, deregistration)."""
    loan = serviced(collateral=[{"kind": "mortgage", "description": "厂房",
                                 "location": "杭州", "registration_no": "浙(2026)001"}])
    post_repayment(loan, {"amount": "303000.00", "paid_at": "2026-04-01",
                          "external_ref": "ALL"}, users["admin"])
    loan = Loan.query.get(loan.id)
    assert loan.status == "closing" and loan.outstanding == 0
    assert {i.status for i in reminder_instances(loan)} == {"cancelled"}
    with pytest.raises(Conflict):
        post_repayment(loan, {"amount": "1.00", "paid_at": "2026-04-02",
                              "external_ref": "MORE"}, users["admin"])
    verify = open_tasks_of_case(loan.id)[0]
    assert verify.bpmn_id == "verify_settlement"
    # Issue 11 rule 11: a required confirmation must be given to continue.
    with pytest.raises(InvalidData) as unconfirmed:
        complete_task(verify.id, users["plo"], data={"settlement_verified": False,
                                                     "ledger_closed_on": "2026-04-02"})
    assert "settlement_verified" in unconfirmed.value.field_errors
    complete_task(verify.id, users["plo"], data={"settlement_verified": True,
                                                 "ledger_closed_on": "2026-04-02"})
    invite = open_tasks_of_case(loan.id)[0]
    assert invite.bpmn_id == "invite_borrower" and invite.candidate_user_id == users["am"].id
    complete_task(invite.id, users["am"], data={
        "appointment_on": "2026-04-08", "appointment_time": "10:00",
        "appointment_place": "公司三楼", "invitation_channel": "phone"})
    onsite = open_tasks_of_case(loan.id)[0]
    with pytest.raises(InvalidData) as err:
        complete_task(onsite.id, users["am"], data={
            "attendee": "agent", "identity_checked": True, "documents_reconciled": True,
            "contract_disposition": "destroyed", "witness_name": "李娜"})
    assert "power_of_attorney_ref" in err.value.field_errors
    complete_task(onsite.id, users["am"], data={
        "attendee": "agent", "agent_name": "王芳", "agent_id_number": "110105194912310021",
        "power_of_attorney_ref": "WT-1", "identity_checked": True,
        "documents_reconciled": True, "contract_disposition": "destroyed",
        "witness_name": "李娜", "personal_documents_returned": True})
    release = open_tasks_of_case(loan.id)[0]
    # Registered collateral is released only with its deregistration record.
    with pytest.raises(InvalidData) as unregistered:
        complete_task(release.id, users["plo"], data={"collateral_action": "none"})
    assert "collateral_action" in unregistered.value.field_errors
    with pytest.raises(InvalidData) as incomplete:
        complete_task(release.id, users["plo"], data={
            "collateral_action": "released", "deregistration_no": "ZX-9",
            "released_on": "2026-04-10"})
    assert "deregistration_office" in incomplete.value.field_errors
    complete_task(release.id, users["plo"], data={
        "collateral_action": "released", "deregistration_no": "ZX-9",
        "released_on": "2026-04-10", "deregistration_office": "杭州市不动产登记中心"})
    loan = Loan.query.get(loan.id)
    assert loan.status == "closed" and loan.closed_at is not None
    assert all(c.released_at for c in loan.collateral)
    assert open_tasks_of_case(loan.id) == []
    assert {i.status for i in ProcessInstance.query.filter_by(case_id=loan.id)} <= {
        "completed", "cancelled"}


def test_daily_staging_on_thousands_of_loans(app, users):
    """Set-based staging: a few thousand loans in one statement each (collection is not
    deployed here, so no process is started)."""
    from sqlalchemy import insert
    n = 3000
    manager = users["am"].id
    db.session.execute(insert(Loan), [
        {"loan_no": f"B-{i:05d}", "borrower_name": "x", "principal": 1000,
         "interest_rate": Decimal("0.05"), "disbursed_on": dt.date(2026, 1, 5),
         "maturity_on": dt.date(2026, 6, 1), "account_manager_id": manager,
         "status": "servicing", "product": "term", "purpose": "", "repayment_account": "",
         "dpd": 0, "stage": "current"} for i in range(n)])
    ids = [row.id for row in Loan.query.order_by(Loan.id)]
    # Loan i has its single installment due i % 120 days before 2026-06-01.
    db.session.execute(insert(Installment), [
        {"loan_id": loan_id, "seq": 1,
         "due_on": dt.date(2026, 6, 1) - dt.timedelta(days=k % 120),
         "principal_due": 1000, "interest_due": 10, "penalty_due": 0, "principal_paid": 0,
         "interest_paid": 0, "penalty_paid": 0} for k, loan_id in enumerate(ids)])
    db.session.commit()
    counts = run_daily(dt.date(2026, 6, 1))
    assert counts["loans"] == n
    stages = dict(db.session.query(Loan.stage, db.func.count()).group_by(Loan.stage).all())
    # k % 120 == 0 → due today → current; 1..3 → dpd_1_3; … ; 91..119 → M3+.
    per_cycle = {"current": 1, "dpd_1_3": 3, "dpd_4_7": 4, "dpd_8_30": 23, "M2": 30,
                 "M3": 30, "M3+": 29}
    assert stages == {k: v * n // 120 for k, v in per_cycle.items()}
    assert counts["stage_changes"] == n - n // 120
    assert StageChange.query.count() == n - n // 120


def test_repayment_through_the_case_page(app, serviced, users):
    from accounts.operations import create_user
    from tests.conftest import login
    create_user("clerk", "secret-pass", ["back_office"])
    loan = serviced()
    client = app.test_client()
    login(client, "clerk")
    page = client.get(f"/cases/{loan.loan_no}", headers={"Accept-Language": "en"})
    assert 'id="repayment-form"' in page.get_data(as_text=True)
    done = client.post(f"/cases/{loan.loan_no}/repayments", follow_redirects=True,
                       data={"amount": "1000.00", "paid_at": "2026-04-01",
                             "external_ref": "WEB-1"}, headers={"Accept-Language": "en"})
    assert "Repayment of 1000.00 posted" in done.get_data(as_text=True)
    again = client.post(f"/cases/{loan.loan_no}/repayments", follow_redirects=True,
                        data={"amount": "1000.00", "paid_at": "2026-04-01",
                              "external_ref": "WEB-1"}, headers={"Accept-Language": "en"})
    assert "already posted" in again.get_data(as_text=True)
    assert Loan.query.get(loan.id).outstanding == Decimal("302000.00")
    collector = app.test_client()
    login(collector, "collector")
    refused = collector.post(f"/cases/{loan.loan_no}/repayments",
                             data={"amount": "1", "paid_at": "2026-04-01", "external_ref": "X"})
    assert refused.status_code == 403


def test_a_second_daily_run_records_nothing_twice_and_repayment_restages(app, serviced, users):
    from audit.models import AuditEvent
    loan = serviced()
    clock.set_now(dt.datetime(2026, 5, 8, 2, tzinfo=UTC))
    assert run_daily(dt.date(2026, 5, 8))["stage_changes"] == 1
    again = run_daily(dt.date(2026, 5, 8))
    assert {k: again[k] for k in STAGING_COUNTS} == {
        "loans": 1, "stage_changes": 0, "overdue": 0, "penalty_charges": 0, "penalty": "0",
        "ledger_breaks": 0}
    assert AuditEvent.query.filter_by(action="case.overdue").count() == 1
    assert AuditEvent.query.filter_by(action="case.stage_changed").count() == 1
    # Paying the overdue installment (with its penalty) puts the loan back to current at once.
    post_repayment(loan, {"amount": "101035.75", "paid_at": "2026-05-08",
                          "external_ref": "NOW"}, users["admin"])
    loan = Loan.query.get(loan.id)
    assert (loan.dpd, loan.stage) == (0, "current")
    assert [(c.from_stage, c.to_stage) for c in StageChange.query.order_by(StageChange.id)] == [
        ("current", "dpd_1_3"), ("dpd_1_3", "current")]
