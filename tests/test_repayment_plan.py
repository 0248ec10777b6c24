"""Issue 11 rule 12 (second half), DOMAIN.md §5.3 [002 E]: a willing but unable borrower gets
a repayment plan (bpmn/repayment_plan.bpmn, called from collection): proposed by the
collector, approved by the leader (four eyes), stored and tracked like a schedule."""
import datetime as dt
from decimal import Decimal

import pytest
from flask import render_template_string
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.operations import create_user
from audit.models import AuditEvent
from collection.plans import RepaymentPlan, assess, covered, lay_out, split_evenly
from extensions import db
from ledger.verify import verify
from tests.conftest import PASSWORD
from tests.test_collection import at, overdue, pay, staff  # noqa: F401  (fixtures)
from tests.test_servicing import serviced  # noqa: F401  (fixture)
from workflows.engine import load_state
from workflows.errors import InvalidData, NotAllowed
from workflows.models import HumanTask, ProcessInstance
from workflows.service import start_process
from workflows.tasks import complete_task
from workflows.timers import fire_due_timers

UTC = dt.timezone.utc
PLAN = {"plan_instalment_count": 3, "plan_first_due_on": "2026-05-20",
        "plan_interval": "monthly", "plan_amounts": "40000, 40000, 21035.75",
        "plan_reason": "Shop closed for two months after a fire; insurance pays in July."}


def start_plan(loan):
    instance = start_process("repayment_plan", case_id=loan.id, data={
        "loan_no": loan.loan_no, "dpd": loan.dpd, "stage": loan.stage})
    db.session.commit()
    return instance


def ready(loan, bpmn_id):
    return HumanTask.query.filter_by(case_id=loan.id, process_key="repayment_plan",
                                     bpmn_id=bpmn_id, state="ready").one()


def result_of(instance):
    instance = db.session.get(ProcessInstance, instance.id)
    workflow = load_state(instance.definition, instance.state_json)
    return instance.status, workflow.data.get("repayment_plan_result")


def propose(loan, user, **changes):
    complete_task(ready(loan, "propose_plan").id, user, data=dict(PLAN, **changes))


def decide(loan, user, decision="approve"):
    complete_task(ready(loan, "approve_plan").id, user, data={
        "plan_decision": decision, "plan_decision_comment": f"leader: {decision}"})


def plan_actions():
    return [e.action for e in AuditEvent.query.filter(
        AuditEvent.action.like("collection.repayment_plan%")).order_by(AuditEvent.id)]


@pytest.fixture
def both(staff):
    return create_user("both", PASSWORD, ["collector", "dept_head"])


def test_rule_willing_but_unable_borrower_gets_an_approved_repayment_plan(
        app, overdue, staff, both):
    loan = overdue()  # 8 May: 101 035.75 overdue
    instance = start_plan(loan)
    task = ready(loan, "propose_plan")
    assert task.lane == "collector" and task.form_key == "repayment_plan_proposal"
    assert task.context["plan_overdue_amount_text"] == "¥101,035.75"

    # A plan that does not cover the overdue amount exactly is refused with a field error.
    with pytest.raises(InvalidData) as err:
        propose(loan, both, plan_amounts="40000, 40000, 21000")
    assert err.value.field_errors["plan_amounts"] == [
        "The instalments must add up to the overdue amount exactly.",
        "¥101,000.00 ≠ ¥101,035.75"]
    with pytest.raises(InvalidData) as err:
        propose(loan, both, plan_amounts="50000, 51035.75")
    assert "plan_amounts" in err.value.field_errors
    propose(loan, both)

    approval = ready(loan, "approve_plan")
    assert approval.lane == "dept_head"
    assert approval.context["plan_schedule_text"].splitlines() == [
        "1. 2026-05-20  ¥40,000.00", "2. 2026-06-20  ¥40,000.00", "3. 2026-07-20  ¥21,035.75"]
    assert approval.context["plan_proposed_by"] == "both"
    # Four eyes: the proposer never approves, even holding the leader's role.
    with pytest.raises(NotAllowed) as err:
        decide(loan, both)
    assert err.value.code == "four_eyes"
    decide(loan, staff["leader"])

    plan = RepaymentPlan.query.one()
    assert (plan.total, plan.status, plan.proposed_by_id, plan.approved_by_id) == (
        Decimal("101035.75"), "active", both.id, staff["leader"].id)
    assert [(i.seq, i.due_on.isoformat(), i.amount, i.status) for i in plan.instalments] == [
        (1, "2026-05-20", Decimal("40000.00"), "pending"),
        (2, "2026-06-20", Decimal("40000.00"), "pending"),
        (3, "2026-07-20", Decimal("21035.75"), "pending")]
    # Tracked like a schedule: the check runs at the end of the plan date, Beijing time.
    assert db.session.get(ProcessInstance, instance.id).next_timer_at.replace(tzinfo=UTC) == \
        dt.datetime(2026, 5, 20, 15, 59, tzinfo=UTC)

    # Kept: 25 000 + 15 000 paid before the first date.
    at(dt.date(2026, 5, 12), 10)
    pay(loan, "25000.00", "P1", staff["admin"])
    at(dt.date(2026, 5, 19), 10)
    pay(loan, "15000.00", "P2", staff["admin"])
    at(dt.date(2026, 5, 21), 0, 5)
    fire_due_timers()
    plan = db.session.get(RepaymentPlan, plan.id)
    assert [i.status for i in plan.instalments] == ["kept", "pending", "pending"]
    assert plan.status == "active" and plan.paid_since_approval == Decimal("40000.00")
    assert result_of(instance) == ("running", None)

    # Broken: only 30 000 more by the second date (70 000 of the 80 000 due so far).
    at(dt.date(2026, 6, 18), 10)
    pay(loan, "30000.00", "P3", staff["admin"])
    at(dt.date(2026, 6, 21), 9)
    fire_due_timers()
    plan = db.session.get(RepaymentPlan, plan.id)
    assert plan.status == "broken" and plan.ended_at is not None
    assert [i.status for i in plan.instalments] == ["kept", "missed", "pending"]
    assert result_of(instance) == ("completed", "broken")
    assert plan_actions() == ["collection.repayment_plan_approved",
                              "collection.repayment_plan_kept",
                              "collection.repayment_plan_broken"]
    broken = AuditEvent.query.filter_by(action="collection.repayment_plan_broken").one()
    assert broken.data["paid"] == "70000.00" and broken.data["due_so_far"] == "80000.00"
    assert not verify([loan.id])

    # The case page's section.
    with app.test_request_context():
        html = render_template_string('{% include "collection/_repayment_plans.html" %}',
                                      loan=loan)
    assert "2026-06-20" in html and "¥40,000.00" in html and "¥70,000.00" in html


def test_a_kept_plan_completes_and_a_rejected_one_stores_nothing(app, overdue, staff):
    loan = overdue()
    rejected = start_plan(loan)
    propose(loan, staff["collector"], plan_amounts="", plan_instalment_count=2,
            plan_interval="weekly")
    assert ready(loan, "approve_plan").context["plan_schedule_text"].splitlines() == [
        "1. 2026-05-20  ¥50,517.87", "2. 2026-05-27  ¥50,517.88"]
    decide(loan, staff["leader"], "reject")
    assert result_of(rejected) == ("completed", "rejected")
    assert RepaymentPlan.query.count() == 0
    assert plan_actions() == ["collection.repayment_plan_rejected"]

    instance = start_plan(loan)
    propose(loan, staff["collector"], plan_amounts="", plan_instalment_count=2,
            plan_interval="biweekly")
    decide(loan, staff["leader"])
    at(dt.date(2026, 5, 20), 10)
    pay(loan, "50517.87", "Q1", staff["admin"])
    at(dt.date(2026, 5, 21), 9)
    fire_due_timers()
    at(dt.date(2026, 6, 3), 11)
    pay(loan, "50517.88", "Q2", staff["admin"])
    at(dt.date(2026, 6, 4), 9)
    fire_due_timers()
    plan = RepaymentPlan.query.one()
    assert plan.status == "completed"
    assert [i.status for i in plan.instalments] == ["kept", "kept"]
    assert result_of(instance) == ("completed", "completed")


# ---------------------------------------------------------------- properties

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999.99"), places=2)


@settings(max_examples=300, deadline=None)
@given(total=amounts, count=st.integers(min_value=1, max_value=24))
def test_a_plans_instalments_always_sum_to_the_overdue_amount(total, count):
    if total < Decimal("0.01") * count:
        with pytest.raises(InvalidData):
            lay_out(total, count, dt.date(2026, 1, 31), "monthly")
        return
    rows = lay_out(total, count, dt.date(2026, 1, 31), "monthly")
    assert sum(amount for _, _, amount in rows) == total
    assert all(amount >= Decimal("0.01") for _, _, amount in rows)
    assert [seq for seq, _, _ in rows] == list(range(1, count + 1))
    dates = [due for _, due, _ in rows]
    assert dates == sorted(set(dates)) and all(d.day in (28, 29, 30, 31) for d in dates)
    assert sum(split_evenly(total, count)) == total
    # Typed amounts are accepted exactly when they add up to the overdue amount.
    typed = [a for _, _, a in rows]
    typed[0] += Decimal("0.01")
    with pytest.raises(InvalidData):
        lay_out(total, count, dt.date(2026, 1, 31), "monthly", ", ".join(map(str, typed)))


@settings(max_examples=300, deadline=None)
@given(plan=st.lists(amounts, min_size=1, max_size=12),
       payments=st.lists(st.decimals(min_value=0, max_value=Decimal("2000000"), places=2),
                         max_size=12))
def test_the_plan_check_never_double_counts_a_payment(plan, payments):
    paid = Decimal(0)
    state = "kept"
    for seq in range(1, len(plan) + 1):
        paid += payments[seq - 1] if seq - 1 < len(payments) else Decimal(0)
        parts = covered(plan, paid)
        # Each payment is counted once: what the instalments show is what was paid.
        assert sum(parts) == min(paid, sum(plan))
        assert all(Decimal(0) <= part <= amount for part, amount in zip(parts, plan))
        # Checking again changes nothing.
        assert assess(plan, paid, seq) == assess(plan, paid, seq)
        state = assess(plan, paid, seq)
        assert state == ("completed" if paid >= sum(plan) else
                         "broken" if paid < sum(plan[:seq]) else
                         "completed" if seq == len(plan) else "kept")
        if state != "kept":
            break
    assert state in ("kept", "completed", "broken")
