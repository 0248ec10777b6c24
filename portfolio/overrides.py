"""Manual up- or down-grades of a loan's category, with four eyes (bpmn/category_override.bpmn).

Who asks: a post-loan officer, a risk manager or a department head (OVERRIDE_REQUESTERS), on
the case page, with the target category and a reason. Who decides: another person — a risk
manager; when a risk manager asked, the department head (so a one-risk-manager branch still
has a second pair of eyes). The approval task carries `notUserVariable = requested_by`, so
the requester can never take it, whatever roles they hold.

Approved: the category changes at once (a CategoryChange with basis "override" and the
reason) and sticks over the daily run, which only keeps `rule_category` current. Rejected:
nothing changes. One pending request per loan (the running process's unique business key).

Lifting an approved override returns the loan to its rules' category at once; it needs a
reason but not a second person: it goes back to the regulatory default rather than away from
it (OVERRIDE_LIFTERS: risk manager or department head).
"""
from sqlalchemy.exc import IntegrityError

from accounts.models import User
from audit.operations import record
from cases.models import Loan, LoanExtension
from extensions import db
from i18n import N_
from portfolio.labels import CATEGORY_LABELS
from portfolio.models import CATEGORIES, CategoryChange, CategoryOverride, LoanCategory
from portfolio.rules import current_rules
from workflows import clock
from workflows.errors import Conflict, InvalidData, NotAllowed, NotFound
from workflows.locks import lock_case
from workflows.service import start_process
from workflows.services import service

PROCESS = "category_override"
OVERRIDE_REQUESTERS = frozenset({"post_loan_officer", "risk_manager", "dept_head"})
OVERRIDE_LIFTERS = frozenset({"risk_manager", "dept_head"})
REASON_MAX = 2000


def may_request(user, loan):
    return bool(user.is_authenticated and not loan.is_closed
                and user.roles & OVERRIDE_REQUESTERS)


def may_lift(user, loan):
    return bool(user.is_authenticated and not loan.is_closed and user.roles & OVERRIDE_LIFTERS)


def pending_override(loan_id):
    return CategoryOverride.query.filter_by(loan_id=loan_id, status="pending").first()


def active_override(loan_id):
    row = db.session.get(LoanCategory, loan_id)
    if row is None or row.basis != "override" or row.override_id is None:
        return None
    return db.session.get(CategoryOverride, row.override_id)


def _reason(reason, errors):
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = [N_("Give the reason.")]
    elif len(reason) > REASON_MAX:
        errors["reason"] = [N_("At most 2000 characters.")]
    return reason


def ensure_category_row(loan):
    """The loan's LoanCategory, created from the rules when the daily run has not classified
    it yet (with its first CategoryChange)."""
    row = db.session.get(LoanCategory, loan.id)
    if row is not None:
        return row
    from portfolio.classification import rule_category
    extended = db.session.query(LoanExtension.id).filter_by(loan_id=loan.id).first() is not None
    category = rule_category(current_rules(), loan.dpd, extended)
    today = clock.today()
    row = LoanCategory(loan_id=loan.id, category=category, rule_category=category,
                       basis="rules", since=today, updated_on=today)
    db.session.add(row)
    db.session.add(CategoryChange(loan_id=loan.id, changed_on=today, to_category=category,
                                  basis="rules", dpd=loan.dpd, reason="",
                                  recorded_at=clock.now()))
    db.session.flush()
    return row


def request_override(loan, actor, to_category, reason):
    """Ask for the loan's category to become `to_category`, with a reason. Commits; returns
    the CategoryOverride (pending)."""
    if loan.is_closed:
        raise Conflict(f"loan {loan.loan_no} is closed", code="case_closed")
    if not actor.roles & OVERRIDE_REQUESTERS:
        raise NotAllowed("only an officer, a risk manager or a department head may ask for "
                         "a change of category", code="wrong_role")
    from portfolio.classification import category_of
    errors = {}
    if to_category not in CATEGORIES:
        errors["category"] = [N_("Choose a category.")]
    elif to_category == category_of(loan.id):
        errors["category"] = [N_("This is already the loan's category.")]
    reason = _reason(reason, errors)
    if errors:
        raise InvalidData("the request has errors", field_errors=errors, code="invalid")
    lock_case(loan.id)  # of two simultaneous requests the second sees the first
    current = ensure_category_row(loan)
    if pending_override(loan.id) is not None:
        raise Conflict(f"a change of loan {loan.loan_no}'s category is already being decided",
                       code="override_pending")
    override = CategoryOverride(loan_id=loan.id, from_category=current.category,
                                to_category=to_category, reason=reason, status="pending",
                                requested_by_id=actor.id, requested_at=clock.now())
    db.session.add(override)
    db.session.flush()
    # A risk manager's own request goes to the department head; any other to a risk manager.
    approver_role = "dept_head" if "risk_manager" in actor.roles else "risk_manager"
    record("portfolio.override_requested", actor=actor, case_id=loan.id, data={
        "override_id": override.id, "from": current.category, "to": to_category,
        "reason": reason, "approver_role": approver_role})
    instance = start_process(PROCESS, case_id=loan.id, actor=actor, business_key=PROCESS, data={
        "loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
        "override_id": override.id, "current_category": current.category,
        "rule_category": current.rule_category, "target_category": to_category,
        "override_reason": reason, "requested_by": actor.username,
        "requested_by_name": actor.label, "approver_role": approver_role})
    override.instance_id = instance.id
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("a change of this loan's category was asked at the same moment",
                       code="override_pending") from exc
    return override


def _decision(data):
    """(override, approver) of a completed approval task."""
    override = db.session.get(CategoryOverride, int(data["override_id"]))
    if override is None:
        raise NotFound(f"no category override {data['override_id']}", code="not_found")
    done = data.get("completed_by", {})
    username = done.get("approve_risk_manager") or done.get("approve_dept_head")
    approver = User.query.filter_by(username=username).first() if username else None
    return override, approver


def _change(loan_id, to_category, basis, reason, actor, override_id=None):
    """Set the loan's category now and record the change (when it is one)."""
    loan = db.session.get(Loan, loan_id)
    row = ensure_category_row(loan)
    today = clock.today()
    if row.category != to_category:
        db.session.add(CategoryChange(
            loan_id=loan_id, changed_on=today, from_category=row.category,
            to_category=to_category, basis=basis, dpd=loan.dpd, reason=reason,
            override_id=override_id, actor_id=getattr(actor, "id", None),
            recorded_at=clock.now()))
        row.category, row.since = to_category, today
    row.basis, row.override_id, row.updated_on = basis, override_id, today
    return row


@service("apply_category_override")
def apply_category_override(data):
    """Approved by another person: the category changes at once and sticks until lifted."""
    override, approver = _decision(data)
    if override.status != "pending":
        return {"applied": False, "status": override.status}
    if approver is None or approver.id == override.requested_by_id:  # four eyes, again
        raise NotAllowed("the requester may not approve their own request", code="four_eyes")
    old = active_override(override.loan_id)
    if old is not None:  # a new override replaces the one in force
        old.status = "lifted"
    override.status, override.decided_by_id = "approved", approver.id
    override.decided_at, override.decision_note = clock.now(), data.get("override_remarks") or ""
    previous = db.session.get(LoanCategory, override.loan_id)
    before = previous.category if previous is not None else override.from_category
    _change(override.loan_id, override.to_category, "override", override.reason, approver,
            override.id)
    record("portfolio.override_approved", actor=approver, case_id=override.loan_id, data={
        "override_id": override.id, "from": before, "to": override.to_category,
        "reason": override.reason, "remarks": override.decision_note,
        "requested_by": data.get("requested_by")})
    return {"applied": True}


@service("reject_category_override")
def reject_category_override(data):
    """Rejected: nothing changes; the refusal is on the record."""
    override, approver = _decision(data)
    if override.status != "pending":
        return {"applied": False, "status": override.status}
    override.status = "rejected"
    override.decided_by_id = getattr(approver, "id", None)
    override.decided_at, override.decision_note = clock.now(), data.get("override_remarks") or ""
    record("portfolio.override_rejected", actor=approver, case_id=override.loan_id, data={
        "override_id": override.id, "to": override.to_category, "reason": override.reason,
        "remarks": override.decision_note, "requested_by": data.get("requested_by")})
    return {"applied": False}


def lift_override(loan, actor, reason):
    """End the override in force: the loan goes back to its rules' category at once.
    Commits; returns the LoanCategory."""
    if not actor.roles & OVERRIDE_LIFTERS:
        raise NotAllowed("only a risk manager or a department head may lift an override",
                         code="wrong_role")
    errors = {}
    reason = _reason(reason, errors)
    if errors:
        raise InvalidData("the lift has errors", field_errors=errors, code="invalid")
    lock_case(loan.id)
    override = active_override(loan.id)
    if override is None:
        raise Conflict(f"loan {loan.loan_no} has no override in force", code="no_override")
    row = db.session.get(LoanCategory, loan.id)
    before = row.category
    override.status = "lifted"
    _change(loan.id, row.rule_category, "rules", reason, actor)
    record("portfolio.override_lifted", actor=actor, case_id=loan.id, data={
        "override_id": override.id, "from": before, "to": row.category, "reason": reason})
    db.session.commit()
    return row


def overrides_of(loan_id, limit=10):
    return (CategoryOverride.query.filter_by(loan_id=loan_id)
            .order_by(CategoryOverride.id.desc()).limit(limit).all())


def category_choices():
    return [(c, CATEGORY_LABELS[c]) for c in CATEGORIES]
