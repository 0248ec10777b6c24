"""Willing but unable → a repayment plan (DOMAIN.md §5.3 [002 E]): the service operations of
bpmn/repayment_plan.bpmn, the approved plan and its tracking."""
import calendar
import datetime as dt
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from sqlalchemy import func, select

from audit.operations import record
from cases.models import Loan
from collection.facts import actor_of, completed_step, loan_of, overdue_amount
from extensions import db
from i18n import N_
from ledger.models import Repayment
from workflows import clock
from workflows.clock import now
from workflows.errors import InvalidData
from workflows.models import HumanTask
from workflows.services import service
from workflows.tasks import BEFORE_COMPLETE


class RepaymentPlan(db.Model):
    """An approved plan to pay the overdue amount in instalments; tracked like a schedule."""
    __tablename__ = "repayment_plans"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"))
    total = db.Column(db.Numeric(18, 2), nullable=False)  # the overdue amount when proposed
    reason = db.Column(db.Text, nullable=False, default="")
    proposed_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    approved_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    approved_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    status = db.Column(db.String(10), nullable=False, default="active")  # active|completed|broken
    paid_since_approval = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    ended_at = db.Column(db.DateTime(timezone=True))
    instalments = db.relationship("RepaymentPlanInstalment", order_by="RepaymentPlanInstalment.seq",
                                  cascade="all, delete-orphan")


class RepaymentPlanInstalment(db.Model):
    __tablename__ = "repayment_plan_instalments"
    __table_args__ = (db.UniqueConstraint("plan_id", "seq"),)
    id = db.Column(db.Integer, primary_key=True)
    plan_id = db.Column(db.Integer, db.ForeignKey("repayment_plans.id"), nullable=False,
                        index=True)
    seq = db.Column(db.Integer, nullable=False)
    due_on = db.Column(db.Date, nullable=False)
    amount = db.Column(db.Numeric(18, 2), nullable=False)
    status = db.Column(db.String(10), nullable=False, default="pending")  # pending|kept|missed
    checked_at = db.Column(db.DateTime(timezone=True))


# ---------------------------------------------------------------- the plan's arithmetic
# Task data names start with plan_: the process runs as a call activity of collection and its
# data flows back into collection's.

RESULTS = ("completed", "broken", "rejected")
CENT = Decimal("0.01")
MAX_INSTALMENTS = 24
# Plan dates fall on any calendar day, as the loan's own schedule does (ledger.schedule does
# not move due dates to working days); the check runs at the end of that day.
INTERVALS = {"monthly": None, "biweekly": dt.timedelta(days=14), "weekly": dt.timedelta(days=7)}


def split_evenly(total, count):
    """`count` instalments of whole cents adding up to `total` exactly; the cents that do not
    divide go to the last one."""
    share = (total / count).quantize(CENT, rounding=ROUND_DOWN)
    return [share] * (count - 1) + [total - share * (count - 1)]


def plan_dates(first, count, interval):
    """The instalment dates: monthly on the first date's day (clamped to a short month's
    end), or every one or two weeks."""
    if INTERVALS[interval] is None:
        return [_months_on(first, i) for i in range(count)]
    return [first + INTERVALS[interval] * i for i in range(count)]


def _months_on(first, months):
    index = first.month - 1 + months
    year, month = first.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(first.day, calendar.monthrange(year, month)[1]))


def parse_amounts(text):
    """The amounts typed by the collector ("5000, 5000.00; 1234.5"), or None when blank."""
    parts = [p for p in str(text or "").replace("，", ",").replace(";", ",")
             .replace("；", ",").replace("\n", ",").split(",") if p.strip()]
    if not parts:
        return None
    amounts = []
    for part in parts:
        amount = Decimal(part.strip().replace("¥", "").replace(" ", ""))
        if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
            raise InvalidOperation(part)
        amounts.append(amount)
    return amounts


def lay_out(total, count, first, interval, amounts_text=""):
    """The instalments [(seq, due_on, amount)] of a proposal. Raises InvalidData with field
    errors when the typed amounts do not fit: the plan covers `total` exactly."""
    try:
        amounts = parse_amounts(amounts_text)
    except (InvalidOperation, ValueError):
        raise InvalidData("the plan has errors", code="invalid", field_errors={
            "plan_amounts": [N_("Amounts must be positive, with at most two decimals, "
                                "separated by commas.")]}) from None
    if amounts is None:
        if total < CENT * count:
            raise InvalidData("the plan has errors", code="invalid", field_errors={
                "plan_instalment_count": [N_("Too many instalments for this amount.")]})
        amounts = split_evenly(total, count)
    elif len(amounts) != count:
        raise InvalidData("the plan has errors", code="invalid", field_errors={
            "plan_amounts": [N_("Give one amount per instalment, or leave it blank for "
                                "equal instalments.")]})
    elif sum(amounts) != total:
        raise InvalidData("the plan has errors", code="invalid", field_errors={
            # The figures as a language-neutral second line (the page translates the first).
            "plan_amounts": [N_("The instalments must add up to the overdue amount exactly."),
                             f"{yuan(sum(amounts))} ≠ {yuan(total)}"]})
    return list(zip(range(1, count + 1), plan_dates(first, count, interval), amounts))


def covered(amounts, paid):
    """How much of each instalment `paid` covers, oldest first. Each payment is counted once:
    the total paid is spread over the instalments in order, never beyond an instalment."""
    left, out = max(paid, Decimal(0)), []
    for amount in amounts:
        part = min(amount, left)
        out.append(part)
        left -= part
    return out


def assess(amounts, paid, through_seq):
    """The plan's state after instalment `through_seq` fell due: broken if what was paid does
    not cover the instalments due so far, completed if it covers them all, else kept."""
    if paid >= sum(amounts):
        return "completed"
    if paid < sum(amounts[:through_seq]):
        return "broken"
    return "completed" if through_seq >= len(amounts) else "kept"


def paid_since(loan_id, moment):
    """What the borrower's (any payer's) repayments posted since `moment` add up to; a
    reversed repayment does not count."""
    return Decimal(str(db.session.scalar(
        select(func.coalesce(func.sum(Repayment.amount), 0))
        .where(Repayment.loan_id == loan_id, Repayment.created_at >= moment,
               Repayment.reversed_at.is_(None))) or 0))


# ---------------------------------------------------------------- operations

def yuan(amount):
    return f"¥{Decimal(str(amount)):,.2f}"


@service("repayment_plan_prepare")
def prepare(data):
    """Before the proposal: the amount overdue now, which the plan must cover exactly."""
    loan = loan_of(data)
    amount = overdue_amount(loan)
    data["plan_overdue_amount"] = str(amount)
    data["plan_overdue_amount_text"] = yuan(amount)
    data["borrower_name"] = loan.borrower_name
    return {"overdue_amount": str(amount)}


@service("repayment_plan_lay_out")
def lay_out_proposal(data):
    """The proposal as instalments, for the leader's approval. The overdue amount is read
    again in the completion's transaction, the same value check_proposal accepted."""
    total = overdue_amount(loan_of(data))
    data["plan_overdue_amount"], data["plan_overdue_amount_text"] = str(total), yuan(total)
    rows = lay_out(total, int(data["plan_instalment_count"]),
                   dt.date.fromisoformat(str(data["plan_first_due_on"])[:10]),
                   data["plan_interval"], data.get("plan_amounts"))
    data["plan_instalments"] = [{"seq": seq, "due_on": due.isoformat(), "amount": str(amount)}
                                for seq, due, amount in rows]
    data["plan_schedule_text"] = "\n".join(f"{seq}. {due.isoformat()}  {yuan(amount)}"
                                           for seq, due, amount in rows)
    data["plan_proposed_by"] = (data.get("completed_by") or {}).get("propose_plan")
    return {"instalments": len(rows)}


@service("repayment_plan_store")
def store(data):
    """Approved: the plan and its instalments are stored and tracked from now on."""
    loan, approver, task_id = completed_step(data, "approve_plan")
    proposer = actor_of(data, "propose_plan")
    row = db.session.get(HumanTask, task_id) if task_id else None
    plan = RepaymentPlan(loan_id=loan.id, instance_id=row.instance_id if row else None,
                         total=Decimal(str(data["plan_overdue_amount"])),
                         reason=data.get("plan_reason") or "",
                         proposed_by_id=getattr(proposer, "id", None),
                         approved_by_id=getattr(approver, "id", None),
                         approved_at=clock.now(), status="active", paid_since_approval=0)
    plan.instalments = [RepaymentPlanInstalment(seq=i["seq"], amount=Decimal(i["amount"]),
                                                due_on=dt.date.fromisoformat(i["due_on"]))
                        for i in data["plan_instalments"]]
    db.session.add(plan)
    db.session.flush()
    record("collection.repayment_plan_approved", actor=approver, case_id=loan.id,
           task_id=task_id, data={"plan_id": plan.id, "total": str(plan.total),
                                  "instalments": data["plan_instalments"],
                                  "proposed_by": data.get("plan_proposed_by"),
                                  "comment": data.get("plan_decision_comment")})
    data["plan_id"] = plan.id
    data["plan_next_seq"] = 1
    data["plan_next_due_on"] = plan.instalments[0].due_on.isoformat()
    data["plan_status"] = "active"
    return {"plan_id": plan.id}


@service("repayment_plan_check")
def check(data):
    """The end of a plan date: do the repayments since approval cover the plan so far?"""
    plan = db.session.get(RepaymentPlan, data["plan_id"])
    seq = int(data["plan_next_seq"])
    amounts = [i.amount for i in plan.instalments]
    paid = paid_since(plan.loan_id, plan.approved_at)
    state = assess(amounts, paid, seq)
    plan.paid_since_approval = paid
    for inst, part in zip(plan.instalments, covered(amounts, paid)):
        if inst.seq <= seq or state == "completed":
            inst.status = "kept" if part >= inst.amount else "missed"
            inst.checked_at = inst.checked_at or clock.now()
    data["plan_status"] = state
    if state == "kept":
        data["plan_next_seq"] = seq + 1
        data["plan_next_due_on"] = plan.instalments[seq].due_on.isoformat()
        record("collection.repayment_plan_kept", case_id=plan.loan_id,
               data={"plan_id": plan.id, "seq": seq, "paid": str(paid)})
        return {"status": state}
    plan.status, plan.ended_at = state, clock.now()
    data["repayment_plan_result"] = state
    record(f"collection.repayment_plan_{state}", case_id=plan.loan_id,
           data={"plan_id": plan.id, "seq": seq, "paid": str(paid),
                 "due_so_far": str(sum(amounts[:seq]))})
    return {"status": state}


@service("repayment_plan_reject")
def reject(data):
    """The leader did not approve: nothing is stored, the decision is audited."""
    loan, approver, task_id = completed_step(data, "approve_plan")
    data["repayment_plan_result"] = "rejected"
    record("collection.repayment_plan_rejected", actor=approver, case_id=loan.id,
           task_id=task_id,
           data={"total": data.get("plan_overdue_amount"),
                 "instalments": data.get("plan_instalments"),
                 "comment": data.get("plan_decision_comment")})
    return {"result": "rejected"}


def check_proposal(row, values):
    """The proposal must cover the overdue amount exactly: a clear field error otherwise."""
    if row.form_key != "repayment_plan_proposal":
        return
    total = overdue_amount(db.session.get(Loan, row.case_id))
    if total <= 0:
        raise InvalidData("nothing is overdue", code="invalid", field_errors={
            "plan_instalment_count": [N_("Nothing is overdue: no plan is needed.")]})
    if values.get("plan_instalment_count") and values.get("plan_first_due_on"):
        lay_out(total, int(values["plan_instalment_count"]),
                dt.date.fromisoformat(str(values["plan_first_due_on"])[:10]),
                values.get("plan_interval") or "monthly", values.get("plan_amounts"))


BEFORE_COMPLETE.append(check_proposal)


# ---------------------------------------------------------------- the case page

def plans_of(loan_id):
    """The case's plans, newest first, with each instalment's covered amount."""
    plans = db.session.scalars(select(RepaymentPlan).where(RepaymentPlan.loan_id == loan_id)
                               .order_by(RepaymentPlan.id.desc())).all()
    out = []
    for plan in plans:
        paid = (paid_since(loan_id, plan.approved_at) if plan.status == "active"
                else plan.paid_since_approval)
        parts = covered([i.amount for i in plan.instalments], paid)
        out.append({"plan": plan, "paid": paid,
                    "instalments": list(zip(plan.instalments, parts))})
    return out
