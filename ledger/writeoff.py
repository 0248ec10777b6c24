"""Write-off (核销, issue 9 item 5): a post-loan officer, lawyer or risk manager proposes, the
department head reviews, the general manager approves (bpmn/write_off.bpmn); proposer,
reviewer and approver are three different people.

Approval takes the outstanding principal, interest and penalty off the books as of that day
(a WriteOff row; penalty accrual skips the loan from then on). The loan stays open and its debt
recoverable: later repayments and legal recoveries are posted as usual. Rejection changes
nothing.
"""
from decimal import Decimal

from sqlalchemy import select

from accounts.models import User
from audit.operations import record
from cases.models import Loan
from extensions import db
from i18n import N_
from ledger.book import ZERO, lock_loan, one_transaction
from ledger.models import PARTS, Repayment, WriteOff
from ledger.penalty import accrue
from workflows import clock
from workflows.errors import Conflict, InvalidData, NotAllowed
from workflows.service import running_instances, start_process
from workflows.services import service

PROCESS = "write_off"
WRITE_OFF_PROPOSERS = ("post_loan_officer", "legal", "risk_manager")
DEFAULT_LEGAL_REASON = "诉讼结果：提出核销建议 / Proposed by the litigation outcome"


def may_propose(user, loan):
    return user.has_role(*WRITE_OFF_PROPOSERS) and refusal(loan) is None


def outstanding_parts(loan):
    """{part: due − paid summed over the installments} for penalty, interest and principal."""
    return {part: sum((getattr(i, f"{part}_due") - getattr(i, f"{part}_paid")
                       for i in loan.installments), start=ZERO) for part in PARTS}


def written_off(loan):
    return WriteOff.query.filter_by(loan_id=loan.id).one_or_none()


def pending(loan):
    """Is a write-off of the loan being decided?"""
    return bool(running_instances(loan.id, PROCESS))


def refusal(loan):
    """Why the loan cannot be proposed for write-off now (a Conflict), or None."""
    if loan.status in ("closing", "closed"):
        return Conflict(f"loan {loan.loan_no} is fully repaid or closed", code="case_closed")
    if written_off(loan) is not None:
        return Conflict(f"loan {loan.loan_no} is already written off",
                        code="already_written_off")
    if loan.outstanding <= 0:
        return Conflict(f"loan {loan.loan_no} has nothing outstanding",
                        code="nothing_outstanding")
    if pending(loan):
        return Conflict(f"a write-off of loan {loan.loan_no} is already being decided",
                        code="write_off_pending")
    return None


def start_write_off(loan, reason, actor):
    """Start the approval under the loan's lock; flushes, the caller commits. Raises Conflict
    when the loan cannot be proposed (see `refusal`). Returns the process instance."""
    loan = lock_loan(loan.id)
    problem = refusal(loan)
    if problem is not None:
        raise problem
    parts = outstanding_parts(loan)
    figures = {f"outstanding_{part}": str(amount) for part, amount in parts.items()}
    figures["outstanding_total"] = str(sum(parts.values(), start=ZERO))
    data = {"loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
            "proposed_by": getattr(actor, "username", None), "reason": reason, **figures}
    record("ledger.write_off_proposed", actor=actor, case_id=loan.id,
           data={"reason": reason, **figures})
    return start_process(PROCESS, case_id=loan.id, data=data, actor=actor,
                         business_key="write_off")


def propose_write_off(loan, reason, actor):
    """A staff proposal from the case page; commits. Returns the process instance."""
    if not actor.has_role(*WRITE_OFF_PROPOSERS):
        raise NotAllowed("only a post-loan officer, lawyer or risk manager may propose a "
                         "write-off", code="wrong_role")
    reason = (reason or "").strip()
    if not reason or len(reason) > 2000:
        raise InvalidData("the write-off proposal has errors", code="invalid",
                          field_errors={"reason": [N_("Required, at most 2000 characters.")]})
    # The unique index on a running (case, business key): a proposal raced this one.
    with one_transaction(lambda: Conflict(
            f"a write-off of loan {loan.loan_no} is already being decided",
            code="write_off_pending")):
        instance = start_write_off(loan, reason, actor)
    return instance


def recoveries_since(write_off):
    """Repayments posted after the write-off (not part of its amount), not reversed."""
    return db.session.scalars(
        select(Repayment).where(Repayment.loan_id == write_off.loan_id,
                                Repayment.created_at > write_off.created_at,
                                Repayment.reversed_at.is_(None))
        .order_by(Repayment.paid_at, Repayment.id)).all()


def recovered_total(repayments):
    return sum((r.amount for r in repayments), start=Decimal("0.00"))


def _loan(data):
    return Loan.query.filter_by(loan_no=data["loan_no"]).one()


def _user(username):
    return User.query.filter_by(username=username).first() if username else None


@service("write_off_loan")
def write_off_loan(data):
    """The general manager approved: accrue penalty to today, then book what is outstanding of
    each part as written off. The loan's status and installments stay as they are."""
    loan = lock_loan(_loan(data).id)
    done = data.get("completed_by", {})
    proposer, reviewer, approver = (_user(data.get("proposed_by")),
                                    _user(done.get("dept_review")), _user(done.get("gm_approval")))
    if loan.status in ("closing", "closed") or loan.outstanding <= 0:
        # Repaid in full while the proposal was being decided: nothing left to write off.
        record("ledger.write_off_lapsed", actor=approver, case_id=loan.id,
               data={"status": loan.status})
        return {"written_off": False}
    today = clock.today()
    accrue(today, loan.id)
    parts = outstanding_parts(loan)
    running = running_instances(loan.id, PROCESS)
    row = WriteOff(loan_id=loan.id, written_off_on=today, principal=parts["principal"],
                   interest=parts["interest"], penalty=parts["penalty"],
                   reason=data.get("reason") or "", proposed_by_id=getattr(proposer, "id", None),
                   reviewed_by_id=getattr(reviewer, "id", None),
                   approved_by_id=getattr(approver, "id", None),
                   instance_id=running[0].id if running else None, created_at=clock.now())
    db.session.add(row)
    db.session.flush()
    figures = {part: str(amount) for part, amount in parts.items()}
    record("ledger.written_off", actor=approver, case_id=loan.id, data={
        "written_off_on": today.isoformat(), **figures, "amount": str(row.amount),
        "reason": row.reason, "proposed_by": data.get("proposed_by"),
        "reviewed_by": done.get("dept_review"), "approved_by": done.get("gm_approval")})
    return {"written_off": True, "write_off_id": row.id, "written_off_on": today.isoformat(),
            "amount": str(row.amount), **figures}


@service("reject_write_off")
def reject_write_off(data):
    """Rejected by the department head or the general manager: nothing changes."""
    loan = _loan(data)
    done = data.get("completed_by", {})
    if data.get("approval_decision") == "reject":
        by, username, comment = "general_manager", done.get("gm_approval"), \
            data.get("approval_comment")
    else:
        by, username, comment = "dept_head", done.get("dept_review"), data.get("review_comment")
    record("ledger.write_off_rejected", actor=_user(username), case_id=loan.id, data={
        "proposed_by": data.get("proposed_by"), "decided_by": by, "comment": comment,
        "outstanding_total": data.get("outstanding_total")})
    return {"outcome": "rejected", "decided_by": by, "comment": comment}
