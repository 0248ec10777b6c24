"""Extension approval (DOMAIN.md §5.4): requested by the loan's account manager, reviewed by the
department head, approved by the general manager; three different people.

As a rule a loan is extended at most once: a second request is refused unless the general
manager overrides it with a written justification. Approval moves the maturity date and the
final installment's due date, changes the rate, writes a LoanExtension row and reschedules the
final installment's reminder. Rejection changes nothing; the requester gets a task to tell
the client.
"""
import datetime as dt
from decimal import Decimal, InvalidOperation

from sqlalchemy.exc import IntegrityError

from accounts.models import User
from audit.operations import record
from cases.models import LoanExtension, Loan
from monitoring.reminders import _has_reminder, _schedule_one, cancel_reminder, schedule_reminders
from monitoring.risk import raise_extension_signal
from extensions import db
from i18n import N_
from ledger.book import lock_loan
from ledger.penalty import cap_on, legal_caps
from ledger.schedule import extension_interest
from workflows import clock
from workflows.clock import BEIJING
from workflows.errors import Conflict, InvalidData, NotAllowed
from workflows.service import running_instances, start_process
from workflows.services import service

PROCESS = "extension"
RATE_PLACES = Decimal("0.000001")  # loans.interest_rate is Numeric(9, 6)


def may_request(user, loan):
    """Only the loan's own account manager requests an extension."""
    return user.has_role("account_manager") and loan.account_manager_id == user.id


def latest_extended_maturity(loan):
    """The latest maturity an extension may reach (PBOC 贷款通则 art. 12): a short-term loan
    (a year or less) by at most its original term, a medium-term one (up to five years) by
    half of it, a longer one by three years — all extensions together."""
    first = LoanExtension.query.filter_by(loan_id=loan.id).order_by(LoanExtension.id).first()
    original = first.old_maturity_on if first else loan.maturity_on
    term = (original - loan.disbursed_on).days
    if term <= 366:
        allowed = term
    elif term <= 5 * 366:
        allowed = term // 2
    else:
        allowed = 3 * 365
    return original + dt.timedelta(days=allowed)


def _parse(loan, payload):
    errors, values = {}, {}
    raw = str(payload.get("new_maturity_on") or "").strip()
    try:
        new_maturity = dt.date.fromisoformat(raw)
        if new_maturity <= loan.maturity_on:
            errors["new_maturity_on"] = [N_("Must be after the current maturity date.")]
        values["new_maturity_on"] = new_maturity
    except ValueError:
        errors["new_maturity_on"] = [N_("Must be a date in ISO 8601 (YYYY-MM-DD).")]
    latest = latest_extended_maturity(loan)
    if "new_maturity_on" in values and not errors and values["new_maturity_on"] > latest:
        errors["new_maturity_on"] = [N_("Beyond the longest extension the lending rules "
                                        "allow for this loan.")]
    try:
        rate = Decimal(str(payload.get("proposed_rate") or "").strip())
        if not rate.is_finite() or not 0 < rate < 1 or rate != rate.quantize(RATE_PLACES):
            raise InvalidOperation
        values["proposed_rate"] = rate
        cap = cap_on(legal_caps(), clock.now().astimezone(BEIJING).date())
        if cap is not None and rate > cap:
            errors["proposed_rate"] = [N_("Above the legal ceiling on interest rates.")]
    except InvalidOperation:
        errors["proposed_rate"] = [N_("Must be a rate between 0 and 1 (e.g. 0.0435), "
                                      "at most six decimals.")]
    reason = str(payload.get("reason") or "").strip()
    if not reason or len(reason) > 2000:
        errors["reason"] = [N_("Required, at most 2000 characters.")]
    values["reason"] = reason
    if errors:
        raise InvalidData("the extension request has errors", field_errors=errors,
                          code="invalid")
    return values


def request_extension(loan, payload, actor):
    """Start the extension approval for a loan; commits. Returns the process instance."""
    if not may_request(actor, loan):
        raise NotAllowed("only the loan's account manager may request an extension",
                         code="wrong_role")
    if loan.status in ("closing", "closed"):
        raise Conflict(f"loan {loan.loan_no} is fully repaid or closed", code="case_closed")
    values = _parse(loan, payload)
    # Under the loan's lock, so of two simultaneous requests the second sees the first; the
    # unique index on running (case, business key) stands behind it.
    loan = lock_loan(loan.id)
    if running_instances(loan.id, PROCESS):
        raise Conflict(f"an extension of loan {loan.loan_no} is already being decided",
                       code="extension_pending")
    data = {"loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
            "requested_by": actor.username,
            "current_maturity_on": loan.maturity_on.isoformat(),
            "current_rate": str(loan.interest_rate),
            "new_maturity_on": values["new_maturity_on"].isoformat(),
            "proposed_rate": str(values["proposed_rate"]), "reason": values["reason"]}
    record("extension.requested", actor=actor, case_id=loan.id, data={
        k: data[k] for k in ("current_maturity_on", "new_maturity_on", "current_rate",
                             "proposed_rate", "reason")})
    try:
        instance = start_process(PROCESS, case_id=loan.id, data=data, actor=actor,
                                 business_key="extension")
        raise_extension_signal(loan, actor, values["reason"])  # issue 11 rule 9: category 7
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict(f"an extension of loan {loan.loan_no} is already being decided",
                       code="extension_pending") from exc
    return instance


def _loan(data):
    return Loan.query.filter_by(loan_no=data["loan_no"]).one()


def _user_id(username):
    if not username:
        return None
    return db.session.scalar(db.select(User.id).where(User.username == username))


@service("extension_history")
def extension_history(data):
    """How often the loan was extended before (the "no second extension" rule)."""
    loan = _loan(data)
    previous = LoanExtension.query.filter_by(loan_id=loan.id).order_by(LoanExtension.id).all()
    return {"count": len(previous), "extended": bool(previous),
            "last_new_maturity_on": previous[-1].new_maturity_on.isoformat() if previous
            else None}


def _decision_notice(template, loan, values, actor):
    """The decision letter to the borrower, from the template the diagram names."""
    if not template:
        return None
    from notices.operations import borrower_address, letter_recipient, send
    notice = send(template, loan, values,
                  letter_recipient(loan.borrower_name, borrower_address(loan)), actor=actor)
    return notice.id


@service("approve_extension")
def approve_extension(data, notice=None):
    """The general manager approved: change the loan, its final installment (due date and the
    interest of the extended term at the approved rate) and its reminder."""
    loan = lock_loan(_loan(data).id)
    done = data.get("completed_by", {})
    requester_id = _user_id(data.get("requested_by"))
    approver_id = _user_id(done.get("gm_approval"))
    requester = db.session.get(User, requester_id) if requester_id else None
    approver = db.session.get(User, approver_id) if approver_id else None
    new_maturity = dt.date.fromisoformat(data["new_maturity_on"])
    new_rate = Decimal(data["proposed_rate"])
    old_maturity, old_rate = loan.maturity_on, loan.interest_rate
    running = running_instances(loan.id, PROCESS)
    justification = (data.get("override_justification") or None) \
        if data.get("override") == "yes" else None
    extension = LoanExtension(
        loan_id=loan.id, old_maturity_on=old_maturity, new_maturity_on=new_maturity,
        old_interest_rate=old_rate, new_interest_rate=new_rate, reason=data.get("reason", ""),
        requested_by_id=requester_id, reviewed_by_id=_user_id(done.get("dept_review")),
        approved_by_id=approver_id,
        override_justification=justification, approved_at=clock.now(),
        instance_id=running[0].id if running else None)
    db.session.add(extension)
    loan.maturity_on, loan.interest_rate = new_maturity, new_rate
    moved = []
    final = loan.installments[-1] if loan.installments else None
    if final is not None and final.due_on != new_maturity:
        old_due = final.due_on
        final.due_on = new_maturity
        interest = extension_interest(final, old_due, new_maturity, new_rate)
        moved.append({"seq": final.seq, "old_due_on": old_due.isoformat(),
                      "new_due_on": new_maturity.isoformat(),
                      "extension_interest": str(interest),
                      "installment_total": str(final.outstanding)})
        db.session.flush()
        if loan.status == "servicing":
            cancel_reminder(loan, final, "loan extended", requester)
            today = clock.now().astimezone(BEIJING).date()
            if _has_reminder(loan, final) and not final.paid_off_on and final.due_on >= today:
                # Its reminder had already run (an overdue loan): plan one for the new date.
                _schedule_one(loan, final, requester)
    db.session.flush()
    if loan.status == "servicing":
        schedule_reminders(loan, requester)
    record("extension.approved", actor=approver, case_id=loan.id, data={
        "old_maturity_on": old_maturity.isoformat(), "new_maturity_on": new_maturity.isoformat(),
        "old_interest_rate": str(old_rate), "new_interest_rate": str(new_rate),
        "requested_by": data.get("requested_by"), "reviewed_by": done.get("dept_review"),
        "approved_by": done.get("gm_approval"), "override_justification": justification,
        "installments_moved": moved})
    if loan.status == "servicing":
        from cases.staging import restage_loan
        restage_loan(loan, None)
    notice_id = _decision_notice(notice, loan, {
        "old_maturity_date": old_maturity, "new_maturity_date": new_maturity,
        "new_rate": new_rate}, approver)
    return {"extension_id": extension.id, "new_maturity_on": new_maturity.isoformat(),
            "installments_moved": moved, "notice_id": notice_id}


@service("reject_extension")
def reject_extension(data, notice=None):
    """Refused (a second extension) or rejected: nothing changes; the requester is told."""
    loan = _loan(data)
    if data.get("approval_decision") == "reject":
        action, by, comment = "extension.rejected", "general_manager", data.get("approval_comment")
    elif data.get("review_decision") == "reject":
        action, by, comment = "extension.rejected", "dept_head", data.get("review_comment")
    else:
        action, by = "extension.refused", "rule"
        comment = "the loan was extended before; a second extension is not granted"
    record(action, case_id=loan.id, data={
        "requested_by": data.get("requested_by"), "decided_by": by, "comment": comment,
        "new_maturity_on": data.get("new_maturity_on"),
        "proposed_rate": data.get("proposed_rate")})
    done = data.get("completed_by", {})
    decider = {"general_manager": "gm_approval", "dept_head": "dept_review"}.get(by)
    actor_id = _user_id(done.get(decider)) if decider else None
    notice_id = _decision_notice(notice, loan, {"decision_comment": comment},
                                 db.session.get(User, actor_id) if actor_id else None)
    return {"outcome": "refused" if action == "extension.refused" else "rejected",
            "decided_by": by, "comment": comment, "notice_id": notice_id}
