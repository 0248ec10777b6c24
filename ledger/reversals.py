"""Reversing a posted repayment (e.g. the debit bounced): asked for with a reason by one person,
decided by a second who neither asked for it nor posted the repayment (four eyes).

Allocation rows are never changed: an approved reversal adds every allocation of the
repayment again, negated and naming the reversal (`ledger.book.unallocate`). Both steps run
under the loan's row lock, so a reversal cannot interleave with a repayment, a penalty accrual
or another decision on the same loan; two people deciding at once queue up and the second
finds the reversal decided (409). A partial unique index allows one live (pending or
approved) reversal per repayment, the backstop behind the check.
"""
from sqlalchemy import select

from audit.operations import record
from monitoring.reminders import schedule_reminders
from cases.staging import restage_loan
from extensions import db
from i18n import N_
from ledger.book import ZERO, cents, lock_loan, one_transaction, unallocate
from ledger.models import PARTS, Allocation, Repayment, Reversal
from ledger.penalty import accrue
from workflows import clock
from workflows.errors import Conflict, InvalidData, NotAllowed, NotFound, WorkflowError

# Who may ask for a reversal, and who may decide one (never the asker or the poster).
REVERSAL_REQUESTERS = ("back_office", "post_loan_officer", "admin")
REVERSAL_DECIDERS = ("dept_head", "post_loan_officer")
TEXT_MAX = 2000
CLOSURE_STATUSES = ("closing", "closed")
DECISIONS = {"approve": True, "reject": False}


def may_request(user, loan):
    """Whether the user may ask to reverse repayments of this loan (shown as a form)."""
    return bool(user and user.has_role(*REVERSAL_REQUESTERS)
                and loan.status not in CLOSURE_STATUSES)


def may_decide(user, reversal):
    """Whether the user may approve or reject this pending reversal."""
    return bool(user and user.has_role(*REVERSAL_DECIDERS) and reversal.status == "pending"
                and user.id not in (reversal.requested_by_id, reversal.repayment.posted_by_id))


def _require_role(actor, roles, what):
    if actor is None or not actor.has_role(*roles):
        raise NotAllowed(f"only {', '.join(roles)} may {what}", code="wrong_role")


def _clean_text(value, name, required, errors):
    text = value.strip() if isinstance(value, str) else ""
    if value is not None and not isinstance(value, str):
        errors[name] = [N_("Must be text.")]
    elif required and not text:
        errors[name] = [N_("Required: say why the repayment is taken back.")]
    elif len(text) > TEXT_MAX:
        errors[name] = [N_("At most 2000 characters.")]
    return text


def parse_decision(value):
    """"approve" → True, "reject" → False; anything else is refused with a field error."""
    if isinstance(value, str) and value.strip() in DECISIONS:
        return DECISIONS[value.strip()]
    raise InvalidData("the decision must be approve or reject", code="invalid",
                      field_errors={"decision": [N_("Choose approve or reject.")]})


def find_repayment(loan, external_ref):
    """The repayment of `loan` posted under `external_ref`; NotFound otherwise."""
    repayment = Repayment.query.filter_by(loan_id=loan.id, external_ref=external_ref).first()
    if repayment is None:
        raise NotFound(f"no repayment {external_ref} on loan {loan.loan_no}",
                       code="repayment_missing")
    return repayment


def _fresh(model, row_id):
    """The row read again under the loan's lock (another transaction may have changed it)."""
    return db.session.scalars(select(model).where(model.id == row_id)
                              .execution_options(populate_existing=True)).one()


def pending_reversal(repayment_id):
    return Reversal.query.filter_by(repayment_id=repayment_id, status="pending").first()


def _pending_conflict(repayment_id):
    return Conflict(f"repayment {repayment_id} already has a reversal waiting for a decision",
                    code="reversal_pending")


def request_reversal(repayment_id, reason, actor, loan_id=None):
    """Ask for a repayment to be taken back; commits and returns the pending Reversal.

    `loan_id`, when given, is the loan the repayment must belong to (else NotFound). Refused
    (Conflict) when the repayment is already reversed, has a pending reversal, or its loan is
    in closure; InvalidData without a reason. Nothing changes when refused."""
    _require_role(actor, REVERSAL_REQUESTERS, "request a reversal")
    errors = {}
    reason = _clean_text(reason, "reason", True, errors)
    if errors:
        raise InvalidData("the reversal request has errors", field_errors=errors,
                          code="invalid")
    repayment = db.session.get(Repayment, repayment_id)
    if repayment is None or (loan_id is not None and repayment.loan_id != loan_id):
        raise NotFound(f"no repayment {repayment_id}", code="repayment_missing")
    # The partial unique index: another request for this repayment won the race.
    with one_transaction(lambda: _pending_conflict(repayment_id)):
        reversal = _request(repayment.loan_id, repayment_id, reason, actor)
    return reversal


def _request(loan_id, repayment_id, reason, actor):
    loan = lock_loan(loan_id)
    repayment = _fresh(Repayment, repayment_id)
    if repayment.reversed_at is not None:
        raise Conflict(f"repayment {repayment.external_ref} is already reversed",
                       code="reversal_done")
    if pending_reversal(repayment.id) is not None:
        raise _pending_conflict(repayment.external_ref)
    if loan.status in CLOSURE_STATUSES:
        raise Conflict(f"loan {loan.loan_no} is in closure; its repayments can no longer be "
                       "reversed", code="reversal_case_closing")
    reversal = Reversal(loan_id=loan.id, repayment_id=repayment.id, reason=reason,
                        status="pending", requested_by_id=actor.id,
                        requested_at=clock.now())
    db.session.add(reversal)
    db.session.flush()
    record("ledger.reversal_requested", actor=actor, case_id=loan.id, data={
        "reversal_id": reversal.id, "external_ref": repayment.external_ref,
        "amount": str(repayment.amount), "reason": reason})
    return reversal


def decide_reversal(reversal_id, approve, note, actor, loan_id=None):
    """Approve or reject a pending reversal; commits and returns it.

    `approve` is a bool, or "approve"/"reject". Four eyes: the decider may be neither the
    requester nor the repayment's poster (NotAllowed, code "four_eyes"). A reversal no longer
    pending (someone decided first) is a Conflict. Approving negates every allocation of the
    repayment, reopens what it had paid off, restages the loan and gives reopened future
    installments their reminders back."""
    _require_role(actor, REVERSAL_DECIDERS, "decide a reversal")
    if not isinstance(approve, bool):  # "reject" must never count as a yes
        approve = parse_decision(approve)
    errors = {}
    note = _clean_text(note, "note", False, errors)
    if errors:
        raise InvalidData("the decision has errors", field_errors=errors, code="invalid")
    reversal = db.session.get(Reversal, reversal_id)
    if reversal is None or (loan_id is not None and reversal.loan_id != loan_id):
        raise NotFound(f"no reversal {reversal_id}", code="reversal_missing")
    try:
        reversal = _decide(reversal.loan_id, reversal_id, approve, note, actor)
        db.session.commit()
    except WorkflowError:
        db.session.rollback()
        raise
    return reversal


def _decide(loan_id, reversal_id, approve, note, actor):
    loan = lock_loan(loan_id)
    reversal = _fresh(Reversal, reversal_id)
    repayment = _fresh(Repayment, reversal.repayment_id)
    if actor.id in (reversal.requested_by_id, repayment.posted_by_id):
        raise NotAllowed("four eyes: whoever requested the reversal or posted the repayment "
                         "may not decide it", code="four_eyes")
    if reversal.status != "pending":
        raise Conflict(f"reversal {reversal.id} was already {reversal.status}",
                       code="reversal_decided")
    reversal.decided_by_id, reversal.decided_at = actor.id, clock.now()
    reversal.decision_note = note
    base = {"reversal_id": reversal.id, "external_ref": repayment.external_ref,
            "amount": str(repayment.amount), "note": note}
    if not approve:
        reversal.status = "rejected"
        db.session.flush()
        record("ledger.reversal_rejected", actor=actor, case_id=loan.id, data=base)
        return reversal
    if loan.status in CLOSURE_STATUSES:
        raise Conflict(f"loan {loan.loan_no} is in closure; its repayments can no longer be "
                       "reversed", code="reversal_case_closing")
    before = loan.outstanding
    paid_off = {i.id for i in loan.installments if i.paid_off_on is not None}
    touched = unallocate(repayment, reversal, clock.today())
    # Reopened installments owe penalty up to today, as the day's run would have charged.
    accrue(clock.today(), loan.id)
    reversal.status = "approved"
    repayment.reversed_at = clock.now()
    db.session.flush()
    parts = {part: ZERO for part in PARTS}
    negated = select(Allocation).where(Allocation.reversal_id == reversal.id)
    for row in db.session.scalars(negated):
        parts[row.part] += row.amount
    reopened = [i.seq for i in touched if i.id in paid_off and i.paid_off_on is None]
    after = loan.outstanding
    restage_loan(loan, actor)
    if loan.status == "servicing":
        schedule_reminders(loan, actor)
    # The amounts taken back per part (positive; the new rows carry them negated).
    record("ledger.reversal_approved", actor=actor, case_id=loan.id, data={
        **base, **{part: str(cents(ZERO - amount)) for part, amount in parts.items()},
        "installments": [i.seq for i in touched], "reopened": reopened,
        "outstanding_before": str(before), "outstanding": str(after)})
    db.session.flush()
    return reversal
