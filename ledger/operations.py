"""Ledger operations outside a single repayment: the daily penalty accrual and invariant check,
the legal ceiling on penalty interest, a product's penalty settings."""
from decimal import Decimal

from audit.operations import record
from cases.models import CaseProblem, Product
from extensions import db
from i18n import N_
from ledger.models import LegalRateCap
from ledger.penalty import accrue_all, lock_overdue_loans, total
from ledger.verify import verify
from workflows import clock
from workflows.errors import InvalidData, NotAllowed

PROBLEM = "ledger_invariant"
SETTINGS_ROLES = ("admin",)


def daily_accrual(as_of, actor=None):
    """Penalty interest through `as_of` on every overdue installment (set-based: `accrue_all`).
    Returns (charges, total)."""
    lock_overdue_loans(as_of)
    charges = accrue_all(as_of)
    amount = total(charges)
    if charges:
        record("ledger.penalty_accrued", actor=actor, data={
            "through": as_of.isoformat(), "charges": len(charges), "amount": str(amount),
            "loans": len({c.loan_id for c in charges})})
    return len(charges), amount


def check_and_report(actor=None):
    """Run `verify` and keep one open case problem per loan and broken invariant; problems
    whose break is gone are resolved. Flushes; returns the breaks."""
    breaks = verify()
    found = {(b.loan_id, b.code): b for b in breaks}
    open_rows = CaseProblem.query.filter_by(kind=PROBLEM, resolved_at=None).all()
    known = set()
    for row in open_rows:
        key = (row.loan_id, row.detail.get("code"))
        if key in found:
            known.add(key)
        else:
            row.resolved_at = clock.now()
            record("case.problem_resolved", actor=actor, case_id=row.loan_id,
                   data={"kind": PROBLEM, "code": key[1]})
    for (loan_id, code), item in found.items():
        if (loan_id, code) in known:
            continue
        db.session.add(CaseProblem(loan_id=loan_id, kind=PROBLEM, opened_at=clock.now(),
                                   detail={"code": code, "detail": item.detail}))
        record("case.problem_opened", actor=actor, case_id=loan_id,
               data={"kind": PROBLEM, "code": code, "detail": item.detail})
    db.session.flush()
    return breaks


def _require_admin(actor):
    if actor is not None and not set(actor.roles) & set(SETTINGS_ROLES):
        raise NotAllowed("only an administrator changes the ledger's settings",
                         code="wrong_role")


def enter_rate_cap(effective_on, lpr, multiple, actor):
    """The one-year LPR from a date on (the ceiling is `multiple` × it); commits."""
    _require_admin(actor)
    errors = {}
    if not Decimal("0") < lpr < Decimal("1"):
        errors["lpr_one_year"] = [N_("Must be a rate between 0 and 1 (e.g. 0.03).")]
    if not Decimal("0") < multiple <= Decimal("10"):
        errors["multiple"] = [N_("Must be more than 0 and at most 10.")]
    if errors:
        raise InvalidData("the rate ceiling has errors", code="invalid", field_errors=errors)
    row = db.session.get(LegalRateCap, effective_on) or LegalRateCap(effective_on=effective_on)
    before = None if row.lpr_one_year is None else {
        "lpr_one_year": str(row.lpr_one_year), "multiple": str(row.multiple)}
    row.lpr_one_year, row.multiple = lpr, multiple
    row.entered_by_id, row.entered_at = getattr(actor, "id", None), clock.now()
    db.session.add(row)
    record("ledger.rate_cap_entered", actor=actor, data={
        "effective_on": effective_on.isoformat(), "lpr_one_year": str(lpr),
        "multiple": str(multiple), "before": before})
    db.session.commit()
    return row


def set_penalty_terms(code, markup, compound, actor):
    """A product's penalty markup over the contract rate and compound interest; commits."""
    _require_admin(actor)
    product = db.session.get(Product, code)
    if product is None:
        raise InvalidData(f"unknown product {code}", code="invalid")
    if not Decimal("0") <= markup <= Decimal("5"):
        raise InvalidData("the markup is out of range", code="invalid", field_errors={
            "penalty_markup": [N_("Must be between 0 and 5 (0.5 = contract rate + 50%).")]})
    before = {"penalty_markup": str(product.penalty_markup),
              "compound_interest": product.compound_interest}
    product.penalty_markup, product.compound_interest = markup, bool(compound)
    record("ledger.penalty_terms_changed", actor=actor, data={
        "product": code, "before": before,
        "after": {"penalty_markup": str(markup), "compound_interest": bool(compound)}})
    db.session.commit()
    return product
