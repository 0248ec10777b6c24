"""Changes to a loan's inspection plan (DOMAIN.md §5.6; issue 11 rules 5 and 9).

Changing the inspection frequency needs the leader's approval with a reason [000 §五(2),
003 §四.2]: an officer proposes it with a reason, the `inspection_frequency` process
(bpmn/inspection_frequency.bpmn) gives the department head an approval task (never the
proposer's), and only an approved change takes effect — the loan's frequency changes and the
waiting inspection cycle re-plans its next day (message `inspection_plan_changed`). A rejected
one leaves the plan as it was.

A sudden event (systemic or guarantee-circle risk, the controller in trouble: 003 §四.3) allows
an emergency revisit: an unscheduled inspection task for the account manager at once, an
instance of the `inspection` process that runs one cycle and ends.
"""
from sqlalchemy.exc import IntegrityError

from audit.operations import record
from extensions import db
from i18n import N_
from monitoring.risk import INSPECTION, MONTHS, _loan, _user
from workflows import clock
from workflows.clock import BEIJING
from workflows.errors import Conflict, InvalidData, NotAllowed
from workflows.locks import lock_case
from workflows.models import ProcessInstance
from workflows.service import deliver_message, running_instances, start_process
from workflows.services import service

FREQUENCY_PROCESS = "inspection_frequency"
REPLAN_MESSAGE = "inspection_plan_changed"
EMERGENCY_KEY = "inspection:emergency:"
# Who may propose a change of frequency or start an emergency revisit: the officers and
# leaders (an account manager only on the loans they manage).
PLAN_ROLES = frozenset({"post_loan_officer", "risk_manager", "dept_head", "general_manager"})
REASON_MAX = 2000


def has_plan_role(user, loan):
    return bool(user.is_authenticated and (user.roles & PLAN_ROLES or (
        "account_manager" in user.roles and loan.account_manager_id == user.id)))


def may_change_plan(user, loan):
    """Whether the case page offers the plan's actions to this user."""
    return not loan.is_closed and loan.status != "closing" and has_plan_role(user, loan)


def pending_change(loan):
    return next(iter(running_instances(loan.id, FREQUENCY_PROCESS)), None)


def _reason(reason, errors):
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = [N_("Give the reason.")]
    elif len(reason) > REASON_MAX:
        errors["reason"] = [N_("At most 2000 characters.")]
    return reason


def _check_may(actor, loan):
    from cases.records import ensure_open
    ensure_open(loan)
    if loan.status == "closing":  # fully repaid: the inspection cycle has ended
        raise Conflict(f"loan {loan.loan_no} is fully repaid", code="case_closed")
    if not has_plan_role(actor, loan):
        raise NotAllowed("only an officer or leader may change the inspection plan",
                         code="wrong_role")


def propose_frequency_change(loan, actor, frequency, reason):
    """Propose a new inspection frequency with a reason; the department head decides.
    Commits; returns the approval process instance."""
    _check_may(actor, loan)
    errors = {}
    if frequency not in MONTHS:
        errors["frequency"] = [N_("Choose a frequency.")]
    elif frequency == (loan.inspection_frequency or "monthly"):
        errors["frequency"] = [N_("This is already the loan's frequency.")]
    elif loan.risk_group == "high" and frequency != "monthly":
        errors["frequency"] = [N_("A high-risk loan is inspected every month.")]
    reason = _reason(reason, errors)
    if errors:
        raise InvalidData("the change has errors", field_errors=errors, code="invalid")
    # Under the case's lock, so of two simultaneous proposals the second sees the first.
    lock_case(loan.id)
    if pending_change(loan) is not None:
        raise Conflict(f"a change of loan {loan.loan_no}'s inspection frequency is already "
                       "being decided", code="plan_change_pending")
    current = loan.inspection_frequency or "monthly"
    record("inspection.frequency_proposed", actor=actor, case_id=loan.id, data={
        "old_frequency": current, "new_frequency": frequency, "reason": reason})
    instance = start_process(FREQUENCY_PROCESS, case_id=loan.id, actor=actor,
                             business_key=FREQUENCY_PROCESS, data={
                                 "loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
                                 "risk_group": loan.risk_group or "",
                                 "current_frequency": current, "proposed_frequency": frequency,
                                 "change_reason": reason, "proposed_by": actor.username})
    _commit(f"a change of loan {loan.loan_no}'s inspection frequency is already being decided")
    return instance


@service("apply_inspection_frequency")
def apply_inspection_frequency(data):
    """The department head approved: the frequency changes and the waiting inspection cycle
    re-plans its next day (a cycle under way keeps its day; the next one uses the new
    frequency)."""
    loan = _loan(data)
    approver = _user(data.get("completed_by", {}).get("approve_change"))
    new = data["proposed_frequency"]
    if loan.risk_group == "high" and new != "monthly":
        # The risk group became high while the change waited: the rule wins.
        record("inspection.frequency_refused", actor=approver, case_id=loan.id, data={
            "new_frequency": new, "reason": "high risk"})
        return {"applied": False}
    old, loan.inspection_frequency = loan.inspection_frequency, new
    record("case.monitoring_plan", actor=approver, case_id=loan.id, data={
        "risk_group": loan.risk_group, "inspection_frequency": new,
        "old_frequency": old, "reason": data.get("change_reason"),
        "proposed_by": data.get("proposed_by"), "approved_by": getattr(approver, "username", None),
        "approval_remarks": data.get("frequency_remarks") or ""})
    db.session.flush()
    caught = deliver_message(loan.id, REPLAN_MESSAGE, {"frequency": new}, actor=approver)
    return {"applied": True, "replanned": bool(caught)}


@service("keep_inspection_frequency")
def keep_inspection_frequency(data):
    """Rejected: the plan stays as it was; the refusal is on the record."""
    loan = _loan(data)
    approver = _user(data.get("completed_by", {}).get("approve_change"))
    record("inspection.frequency_rejected", actor=approver, case_id=loan.id, data={
        "frequency": loan.inspection_frequency, "proposed_frequency": data.get(
            "proposed_frequency"), "reason": data.get("change_reason"),
        "remarks": data.get("frequency_remarks") or ""})
    return {"applied": False}


def start_emergency_revisit(loan, actor, reason):
    """A sudden event: an unscheduled inspection task for the account manager, at once.
    Commits; returns the instance."""
    _check_may(actor, loan)
    errors = {}
    reason = _reason(reason, errors)
    if errors:
        raise InvalidData("the revisit has errors", field_errors=errors, code="invalid")
    day = clock.now().astimezone(BEIJING).date()
    lock_case(loan.id)  # the revisit's number is counted under the case's lock
    n = ProcessInstance.query.filter(ProcessInstance.case_id == loan.id,
                                     ProcessInstance.business_key.like(EMERGENCY_KEY + "%")).count()
    record("inspection.emergency_started", actor=actor, case_id=loan.id,
           data={"reason": reason, "on": day.isoformat()})
    instance = start_process(INSPECTION, case_id=loan.id, actor=actor,
                             business_key=f"{EMERGENCY_KEY}{n + 1}",
                             data={"loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
                                   "account_manager": loan.account_manager.username,
                                   "emergency": True, "emergency_reason": reason,
                                   "emergency_by": actor.username,
                                   "emergency_on": day.isoformat(),
                                   "inspection": {"cycle": 0, "anchor": ""}})
    _commit("an emergency revisit of this loan was started at the same moment")
    return instance


def _commit(conflict):
    # The unique index on running (case, business key) stands behind the checks above.
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict(conflict, code="plan_change_pending") from exc
