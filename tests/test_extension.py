"""Extension approval (DOMAIN.md §5.4): request, one-extension rule, review, approval."""
import datetime as dt
from decimal import Decimal

import pytest

from accounts.operations import create_user
from audit.models import AuditEvent
from extension_requests.operations import request_extension
from cases.models import CaseProblem, Loan, LoanExtension
from extensions import db
from ledger.models import Charge
from ledger.verify import verify
from tests.conftest import PASSWORD, login
from tests.test_servicing import reminder_instances, serviced  # noqa: F401  (fixture)
from workflows.errors import Conflict, InvalidData, NotAllowed
from workflows.models import HumanTask, HumanTaskExclusion, ProcessInstance
from workflows import clock
from workflows.tasks import complete_task
from workflows.timers import fire_due_timers

UTC = dt.timezone.utc
REQUEST = {"new_maturity_on": "2026-12-15", "proposed_rate": "0.0500",
           "reason": "Buyer paid late; receivables due in November."}


@pytest.fixture
def bosses(users):
    spec = {"dh": ["dept_head"], "dh2": ["dept_head"], "gm": ["general_manager"],
            "gm2": ["general_manager"], "boss": ["dept_head", "general_manager"],
            "amdh": ["account_manager", "dept_head"]}
    return users | {name: create_user(name, PASSWORD, roles) for name, roles in spec.items()}


def open_task(loan, bpmn_id):
    return HumanTask.query.filter_by(case_id=loan.id, bpmn_id=bpmn_id, state="ready").one()


def extension_instance(loan):
    return (ProcessInstance.query.filter_by(case_id=loan.id, business_key="extension")
            .order_by(ProcessInstance.id.desc()).first())


def actions(loan):
    return [e.action for e in AuditEvent.query.filter_by(case_id=loan.id)
            .order_by(AuditEvent.id)]


def review(loan, user, decision="approve"):
    complete_task(open_task(loan, "dept_review").id, user, data={
        "review_decision": decision, "review_comment": f"dept head: {decision}"})


def approve(loan, user, decision="approve"):
    complete_task(open_task(loan, "gm_approval").id, user, data={
        "approval_decision": decision, "approval_comment": f"GM: {decision}"})


def extend(loan, users, payload=REQUEST):
    request_extension(loan, payload, users["am"])
    review(loan, users["dh"])
    approve(loan, users["gm"])
    return db.session.get(Loan, loan.id)


def test_approval_changes_maturity_rate_and_moves_the_reminder(app, serviced, bosses,
                                                               token_for):
    loan = serviced()
    final_before = reminder_instances(loan)[2]
    assert final_before.next_timer_at.replace(tzinfo=UTC) == dt.datetime(2026, 9, 29, 1, 0,
                                                                           tzinfo=UTC)
    response = app.test_client().post(f"/api/v1/loans/{loan.loan_no}/extensions", json=REQUEST,
                                      headers=token_for("am"))
    assert response.status_code == 201, response.json
    assert response.json["process"] == "extension"
    task = open_task(loan, "dept_review")
    assert task.lane == "dept_head" and task.form_key == "extension_review"
    assert task.context["new_maturity_on"] == "2026-12-15"
    assert task.context["requested_by"] == "am"
    # The requester may never take the review (notUserVariable), and nobody else is excluded.
    assert [x.user_id for x in HumanTaskExclusion.query.filter_by(task_id=task.id)] == [
        bosses["am"].id]
    review(loan, bosses["dh"])
    gm_task = open_task(loan, "gm_approval")
    assert {x.user_id for x in HumanTaskExclusion.query.filter_by(task_id=gm_task.id)} == {
        bosses["am"].id, bosses["dh"].id}
    approve(loan, bosses["gm"])

    loan = db.session.get(Loan, loan.id)
    assert loan.maturity_on == dt.date(2026, 12, 15)
    assert loan.interest_rate == Decimal("0.05")
    # Only the final installment moves.
    assert [i.due_on.isoformat() for i in loan.installments] == [
        "2026-05-06", "2026-06-19", "2026-12-15"]
    # The 64 added days bear interest on the final installment's 100,000 at the new 5%.
    extra = Charge.query.filter_by(loan_id=loan.id, source="extension").one()
    assert extra.amount == Decimal("876.71") and extra.rate == Decimal("0.05")
    assert loan.installments[-1].interest_due == Decimal("1876.71")
    assert loan.outstanding == Decimal("303876.71") and verify() == []
    ext = LoanExtension.query.filter_by(loan_id=loan.id).one()
    assert (ext.old_maturity_on, ext.new_maturity_on) == (dt.date(2026, 10, 12),
                                                          dt.date(2026, 12, 15))
    assert (ext.old_interest_rate, ext.new_interest_rate) == (Decimal("0.0435"),
                                                              Decimal("0.05"))
    assert (ext.requested_by_id, ext.reviewed_by_id, ext.approved_by_id) == (
        bosses["am"].id, bosses["dh"].id, bosses["gm"].id)
    assert ext.override_justification is None and ext.reason == REQUEST["reason"]
    assert ext.instance_id == extension_instance(loan).id
    assert extension_instance(loan).status == "completed"

    # The old reminder of the final installment is cancelled, a new one waits for the
    # new date: 5 working days before Tuesday 15 December is Tuesday 8 December, 09:00.
    old = db.session.get(ProcessInstance, final_before.id)
    assert old.status == "cancelled" and old.next_timer_at is None
    finals = [i for i in reminder_instances(loan)
              if i.business_key == "installment:3" and i.status == "running"]
    assert len(finals) == 1 and finals[0].id != final_before.id
    assert finals[0].next_timer_at.replace(tzinfo=UTC) == dt.datetime(2026, 12, 8, 1, 0,
                                                                       tzinfo=UTC)
    # The other reminders are untouched.
    assert [i.status for i in reminder_instances(loan)
            if i.business_key != "installment:3"] == ["running", "running"]
    assert "extension.requested" in actions(loan) and "extension.approved" in actions(loan)


def test_dept_head_rejects_and_the_requester_tells_the_client(app, serviced, bosses):
    loan = serviced()
    request_extension(loan, REQUEST, bosses["am"])
    review(loan, bosses["dh"], "reject")
    inform = open_task(loan, "inform_client")
    assert inform.lane == "account_manager" and inform.candidate_user_id == bosses["am"].id
    assert inform.context["review_comment"] == "dept head: reject"
    with pytest.raises(NotAllowed):
        complete_task(inform.id, bosses["am2"], data={"informed_via": "phone",
                                                      "informed_on": "2026-03-02"})
    complete_task(inform.id, bosses["am"], data={"informed_via": "phone",
                                                 "informed_on": "2026-03-02"})
    loan = db.session.get(Loan, loan.id)
    assert loan.maturity_on == dt.date(2026, 10, 12) and loan.interest_rate == Decimal("0.0435")
    assert loan.installments[-1].due_on == dt.date(2026, 10, 12)
    assert LoanExtension.query.count() == 0
    assert extension_instance(loan).status == "completed"
    assert "extension.rejected" in actions(loan)
    assert all(i.status == "running" for i in reminder_instances(loan))


def test_general_manager_rejects(app, serviced, bosses):
    loan = serviced()
    request_extension(loan, REQUEST, bosses["am"])
    review(loan, bosses["dh"])
    approve(loan, bosses["gm"], "reject")
    assert open_task(loan, "inform_client").context["approval_comment"] == "GM: reject"
    loan = db.session.get(Loan, loan.id)
    assert loan.maturity_on == dt.date(2026, 10, 12)
    assert LoanExtension.query.count() == 0
    event = AuditEvent.query.filter_by(case_id=loan.id, action="extension.rejected").one()
    assert event.data["decided_by"] == "general_manager"


def test_three_different_people(app, serviced, bosses):
    loan = serviced()
    request_extension(loan, REQUEST, bosses["am"])
    review(loan, bosses["boss"])
    # The reviewer also holds general_manager but may not approve what they reviewed.
    with pytest.raises(NotAllowed) as err:
        approve(loan, bosses["boss"])
    assert err.value.code == "four_eyes"
    approve(loan, bosses["gm"])
    assert LoanExtension.query.one().approved_by_id == bosses["gm"].id

    # The requester holding dept_head may not review their own request.
    other = serviced(loan_no="S-2")
    other.account_manager_id = bosses["amdh"].id  # the loan changed hands after handover
    db.session.commit()
    request_extension(other, REQUEST, bosses["amdh"])
    with pytest.raises(NotAllowed) as err:
        review(other, bosses["amdh"])
    assert err.value.code == "four_eyes"
    review(other, bosses["dh"])
    assert open_task(other, "gm_approval")


def test_second_extension_is_refused(app, serviced, bosses):
    loan = extend(serviced(), bosses)
    request_extension(loan, {**REQUEST, "new_maturity_on": "2027-03-15"}, bosses["am"])
    override = open_task(loan, "gm_override")
    assert override.lane == "general_manager"
    with pytest.raises(InvalidData) as err:  # an override needs a written justification
        complete_task(override.id, bosses["gm"], data={"override": "yes"})
    assert "override_justification" in err.value.field_errors
    complete_task(override.id, bosses["gm"], data={"override": "no"})
    assert open_task(loan, "inform_client").candidate_user_id == bosses["am"].id
    assert HumanTask.query.filter_by(case_id=loan.id, bpmn_id="dept_review").count() == 1
    assert LoanExtension.query.count() == 1
    assert db.session.get(Loan, loan.id).maturity_on == dt.date(2026, 12, 15)
    event = AuditEvent.query.filter_by(case_id=loan.id, action="extension.refused").one()
    assert event.data["decided_by"] == "rule"


def test_second_extension_overridden_then_approved(app, serviced, bosses):
    loan = extend(serviced(), bosses)
    request_extension(loan, {**REQUEST, "new_maturity_on": "2027-03-15",
                             "proposed_rate": "0.055"}, bosses["am"])
    complete_task(open_task(loan, "gm_override").id, bosses["gm"], data={
        "override": "yes", "override_justification": "Export order confirmed by LC."})
    review(loan, bosses["dh2"])
    approve(loan, bosses["gm2"])
    loan = db.session.get(Loan, loan.id)
    assert loan.maturity_on == dt.date(2027, 3, 15) and loan.interest_rate == Decimal("0.055")
    assert loan.installments[-1].due_on == dt.date(2027, 3, 15)
    second = LoanExtension.query.order_by(LoanExtension.id.desc()).first()
    assert second.override_justification == "Export order confirmed by LC."
    assert second.old_maturity_on == dt.date(2026, 12, 15)
    assert (second.reviewed_by_id, second.approved_by_id) == (bosses["dh2"].id,
                                                              bosses["gm2"].id)
    # Nobody has entered the 2027 working days yet: the reminder waits, visibly.
    assert not [i for i in reminder_instances(loan)
                if i.business_key == "installment:3" and i.status == "running"]
    problem = CaseProblem.query.filter_by(loan_id=loan.id, resolved_at=None).one()
    assert (problem.year, problem.detail["installment_seq"]) == (2027, 3)


def test_validation(app, serviced, bosses, token_for):
    loan = serviced()
    client, headers = app.test_client(), token_for("am")
    url = f"/api/v1/loans/{loan.loan_no}/extensions"
    cases = [({"new_maturity_on": "2026-10-12"}, "new_maturity_on"),
             ({"new_maturity_on": "2026-09-01"}, "new_maturity_on"),
             ({"new_maturity_on": "soon"}, "new_maturity_on"),
             ({"proposed_rate": "1"}, "proposed_rate"),
             ({"proposed_rate": "0"}, "proposed_rate"),
             ({"proposed_rate": "-0.01"}, "proposed_rate"),
             ({"proposed_rate": "abc"}, "proposed_rate"),
             ({"reason": "  "}, "reason")]
    for change, field in cases:
        response = client.post(url, json={**REQUEST, **change}, headers=headers)
        assert response.status_code == 400, change
        assert list(response.json["field_errors"]) == [field], change
    assert extension_instance(loan) is None
    assert client.post(url, data="x", headers=headers).status_code == 400

    assert client.post(url, json=REQUEST, headers=headers).status_code == 201
    pending = client.post(url, json=REQUEST, headers=headers)
    assert pending.status_code == 409 and "already" in pending.json["error"]

    db.session.get(Loan, loan.id).status = "closed"
    db.session.commit()
    with pytest.raises(Conflict) as err:
        request_extension(db.session.get(Loan, loan.id), REQUEST, bosses["am"])
    assert err.value.code == "case_closed"


def test_only_the_loans_account_manager_may_request(app, serviced, bosses, token_for):
    loan = serviced()
    client = app.test_client()
    url = f"/api/v1/loans/{loan.loan_no}/extensions"
    for name in ("plo", "dh", "gm", "am2"):
        assert client.post(url, json=REQUEST, headers=token_for(name)).status_code == 403, name
    for name in ("plo", "am2"):
        web = app.test_client()
        login(web, name)
        response = web.post(f"/cases/{loan.loan_no}/extensions", data=REQUEST)
        assert response.status_code == 403, name
    assert extension_instance(loan) is None


def test_web_form(app, serviced, bosses):
    loan = serviced()
    web = app.test_client()
    login(web, "am")
    page = web.get(f"/cases/{loan.loan_no}").get_data(as_text=True)
    assert f"/cases/{loan.loan_no}/extensions" in page
    bad = web.post(f"/cases/{loan.loan_no}/extensions",
                   data={**REQUEST, "new_maturity_on": "2026-10-01"})
    assert bad.status_code == 400
    assert extension_instance(loan) is None
    ok = web.post(f"/cases/{loan.loan_no}/extensions", data=REQUEST)
    assert ok.status_code == 302
    assert extension_instance(loan).status == "running"
    task = open_task(loan, "dept_review")
    reviewer = app.test_client()
    login(reviewer, "dh")
    page = reviewer.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "2026-12-15" in page and REQUEST["reason"] in page
    done = reviewer.post(f"/tasks/{task.id}", data={"review_decision": "approve",
                                                    "review_comment": "ok"})
    assert done.status_code == 302
    assert open_task(loan, "gm_approval")
    other = app.test_client()
    login(other, "plo")
    page = other.get(f"/cases/{loan.loan_no}").get_data(as_text=True)
    assert f"/cases/{loan.loan_no}/extensions" not in page


def test_overdue_loan_gets_a_new_final_reminder(app, serviced, bosses):
    """The final reminder had already run (the loan is past its maturity): the extension
    plans a new one for the new date."""
    clerk = create_user("clerk", PASSWORD, ["back_office"])
    loan = serviced()
    final_before = reminder_instances(loan)[2]
    with clock.frozen_at(dt.datetime(2026, 10, 13, 2, 0, tzinfo=UTC)):
        fire_due_timers()
        for bpmn_id, data in (("remind_borrower", {"channel": "phone", "reached": "no_answer"}),
                              ("track_repayment", {"debit_result": "insufficient"}),
                              ("follow_up_call", {"reached": "no_answer",
                                                  "follow_up_note": "无人接听"})):
            task = HumanTask.query.filter_by(instance_id=final_before.id, bpmn_id=bpmn_id,
                                             state="ready").one()
            complete_task(task.id, clerk, data=data)
            fire_due_timers()
        assert db.session.get(ProcessInstance, final_before.id).status == "completed"
        extend(loan, bosses)
    finals = [i for i in reminder_instances(loan)
              if i.business_key == "installment:3" and i.status == "running"]
    assert len(finals) == 1
    assert finals[0].next_timer_at.replace(tzinfo=UTC) == dt.datetime(2026, 12, 8, 1, 0,
                                                                       tzinfo=UTC)


def test_rule_extension_terms_within_the_lending_rules(app, serviced, bosses):  # noqa: F811
    """Issue 11 rule 13: a short-term loan is extended by at most its original term
    (贷款通则 art. 12), at a rate not above the legal ceiling."""
    from extension_requests.operations import latest_extended_maturity
    loan = serviced(account_manager="am")
    # Disbursed 2026-03-02, due 2026-10-12: 224 days, so at most until 2027-05-24.
    assert latest_extended_maturity(loan) == dt.date(2027, 5, 24)
    with pytest.raises(InvalidData) as too_long:
        request_extension(loan, {**REQUEST, "new_maturity_on": "2027-05-25"}, bosses["am"])
    assert "new_maturity_on" in too_long.value.field_errors
    with pytest.raises(InvalidData) as too_dear:  # the ceiling is 4 × 3.00% = 12%
        request_extension(loan, {**REQUEST, "proposed_rate": "0.1201"}, bosses["am"])
    assert "proposed_rate" in too_dear.value.field_errors
    request_extension(loan, {**REQUEST, "new_maturity_on": "2027-05-24",
                             "proposed_rate": "0.12"}, bosses["am"])
