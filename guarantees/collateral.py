"""Collateral over the loan's life (issue 16): registration and insurance records, the
valuation history, the loan-to-value ratio now, and the revaluation process
(bpmn/collateral_revaluation.bpmn: a post-loan officer enters the new valuation, a risk manager
who is not that person reviews it; approved, `store_collateral_valuation` stores it).

Loan-to-value (LTV) now = the loan's outstanding PRINCIPAL / the sum of the latest valuations of
its unreleased items. Principal, not the whole balance: the collateral secures the credit
extended, and the lender's LTV limits are set on the principal at approval; interest and
penalty accrue daily, are small beside it and would make the ratio creep with every daily run
(and a collection fee is not "loan"). The same figure the portfolio uses for a loan's balance
(sum of principal due less principal paid over the installments).
"""
import datetime as dt
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select

from flask_babel import lazy_gettext as _l

from audit.operations import record
from cases.access import can_change_case
from cases.models import Collateral, Loan
from extensions import db
from guarantees.models import ASSET_TYPES, VALUATION_METHODS, CollateralValuation
from i18n import N_
from ledger.models import Installment
from workflows import clock
from workflows.definitions import latest_definition
from workflows.errors import Conflict, InvalidData, NotAllowed, NotFound
from workflows.locks import lock_case
from workflows.service import running_instances, start_process
from workflows.services import service
from workflows.tasks import BEFORE_COMPLETE

PROCESS = "collateral_revaluation"
# Who may edit an item's registration and insurance and start a revaluation: the post-loan
# officer keeps the ledger (DOMAIN.md §2), the risk manager acts on the warnings; the loan's own
# account manager too (cases.access.can_change_case). Never compliance or process owners.
EDITORS = frozenset({"post_loan_officer", "risk_manager"})
MAX_VALUE = Decimal(10) ** 12
CENT = Decimal("0.01")


def business_key(collateral_id):
    return f"{PROCESS}:{collateral_id}"


def may_edit(user, loan):
    """May edit the loan's collateral records and start a revaluation (a closed case is
    read-only)."""
    if loan.is_closed or not getattr(user, "is_authenticated", False):
        return False
    if user.roles & EDITORS:
        return True
    return "account_manager" in user.roles and can_change_case(user, loan)


ASSET_TYPE_LABELS = {"real_estate": _l("Real estate"), "vehicle": _l("Vehicle"),
                     "equipment": _l("Machinery and equipment"), "inventory": _l("Inventory"),
                     "deposit": _l("Deposit"), "equity": _l("Equity"), "other": _l("Other")}
METHOD_LABELS = {"market": _l("Market comparison"), "income": _l("Income"), "cost": _l("Cost"),
                 "appraisal": _l("Appraisal report"), "agreed": _l("Agreed value")}
SOURCE_LABELS = {"intake": _l("At disbursement"), "revaluation": _l("Revaluation"),
                 "staff": _l("Staff")}
REASON_LABELS = {"registration_expiring": _l("Registration expiring"),
                 "insurance_expiring": _l("Insurance expiring"),
                 "revaluation_due": _l("Revaluation due"),
                 "ltv_high": _l("Loan-to-value over the threshold")}


# ---------------------------------------------------------------- valuations and LTV

def latest_valuations(loan_ids):
    """{collateral id: its latest CollateralValuation (latest valuation date, then the last
    entered)} for the items of these loans, one query."""
    if not loan_ids:
        return {}
    rows = db.session.scalars(select(CollateralValuation)
                              .where(CollateralValuation.loan_id.in_(list(loan_ids)))
                              .order_by(CollateralValuation.valued_on,
                                        CollateralValuation.id)).all()
    return {row.collateral_id: row for row in rows}


def history(loan_id):
    """{collateral id: [valuations, newest first]}."""
    out = {}
    for row in db.session.scalars(select(CollateralValuation)
                                  .where(CollateralValuation.loan_id == loan_id)
                                  .order_by(CollateralValuation.valued_on.desc(),
                                            CollateralValuation.id.desc())):
        out.setdefault(row.collateral_id, []).append(row)
    return out


def outstanding_principal(loan_id):
    cents = db.session.scalar(
        select(func.sum(func.round((Installment.principal_due - Installment.principal_paid)
                                   * 100))).where(Installment.loan_id == loan_id))
    return (Decimal(int(cents or 0)) / 100).quantize(CENT)


def ltv(loan, latest=None):
    """(ratio, principal, collateral value): the ratio as a Decimal fraction (0.6250), None
    when no unreleased item has a value."""
    latest = latest_valuations([loan.id]) if latest is None else latest
    value = sum((latest[c.id].value for c in loan.collateral
                 if c.released_at is None and c.id in latest), Decimal(0))
    principal = outstanding_principal(loan.id)
    if not value:
        return None, principal, None
    return (principal / value).quantize(Decimal("0.0001")), principal, value


def case_view(loan):
    """What the case page's collateral section shows: per item its latest valuation, history,
    warnings and running revaluation; the loan's LTV now and the threshold that applies."""
    from guarantees.watch import policies, warnings_of
    hist = history(loan.id)
    latest = {cid: rows[0] for cid, rows in hist.items()}
    ratio, principal, value = ltv(loan, latest)
    rules = policies()
    valued = [c for c in loan.collateral if c.released_at is None and c.id in latest]
    threshold = min((rules.get(c.asset_type, rules["other"]).ltv_threshold for c in valued),
                    default=None)
    warnings = warnings_of(loan.id)
    running = {i.business_key for i in running_instances(loan.id, PROCESS)}
    items = [{"item": c, "latest": latest.get(c.id), "history": hist.get(c.id, []),
              "warnings": [w for w in warnings if w.collateral_id == c.id],
              "revaluing": business_key(c.id) in running,
              "policy": rules.get(c.asset_type, rules["other"])} for c in loan.collateral]
    return {"items": items, "ltv": ratio, "principal": principal, "value": value,
            "threshold": threshold, "over": ratio is not None and threshold is not None
            and ratio > threshold, "loan_warnings": [w for w in warnings
                                                     if w.collateral_id is None]}


# ---------------------------------------------------------------- registration, insurance

def _item(loan, collateral_id):
    item = db.session.get(Collateral, collateral_id)
    if item is None or item.loan_id != loan.id:
        raise NotFound(f"no collateral {collateral_id} on loan {loan.loan_no}",
                       code="collateral_missing")
    return item


def _text(values, name, errors, max_len):
    value = (values.get(name) or "").strip()
    if len(value) > max_len:
        errors[name] = [N_("At most %(max)d characters.")]
    return value


def _date(values, name, errors):
    value = values.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        errors[name] = [N_("Not a date (YYYY-MM-DD).")]
        return None


RECORD_FIELDS = ("asset_type", "registration_no", "registration_office", "registered_on",
                 "registration_expires_on", "insurance_policy", "insurer",
                 "insurance_expires_on")


def update_records(loan, collateral_id, actor, values):
    """Edit an item's asset type, registration and insurance; audited with the old and new
    values; commits. Bad input: InvalidData with every field's error, nothing changed."""
    if not may_edit(actor, loan):
        raise NotAllowed("may not edit this loan's collateral", code="wrong_role")
    item = _item(loan, collateral_id)
    if item.released_at is not None:
        raise Conflict("the item is released", code="collateral_released")
    errors = {}
    new = {"asset_type": values.get("asset_type") or item.asset_type,
           "registration_no": _text(values, "registration_no", errors, 80),
           "registration_office": _text(values, "registration_office", errors, 120),
           "registered_on": _date(values, "registered_on", errors),
           "registration_expires_on": _date(values, "registration_expires_on", errors),
           "insurance_policy": _text(values, "insurance_policy", errors, 80),
           "insurer": _text(values, "insurer", errors, 120),
           "insurance_expires_on": _date(values, "insurance_expires_on", errors)}
    if new["asset_type"] not in ASSET_TYPES:
        errors["asset_type"] = [N_("Choose one of the asset types.")]
    if new["registered_on"] and new["registration_expires_on"] \
            and new["registration_expires_on"] <= new["registered_on"]:
        errors["registration_expires_on"] = [N_("Must be after the registration date.")]
    if new["registered_on"] and new["registered_on"] > clock.today():
        errors["registered_on"] = [N_("Must not be in the future.")]
    if new["registration_expires_on"] and not new["registration_no"]:
        errors["registration_no"] = [N_("Enter the registration number with its expiry.")]
    if new["insurance_expires_on"] and not new["insurance_policy"]:
        errors["insurance_policy"] = [N_("Enter the policy number with its expiry.")]
    if errors:
        raise InvalidData("the collateral record has errors", field_errors=errors,
                          code="invalid")
    changed = {}
    for name, value in new.items():
        old = getattr(item, name)
        if old != value:
            changed[name] = {"from": old.isoformat() if isinstance(old, dt.date) else old,
                             "to": value.isoformat() if isinstance(value, dt.date) else value}
            setattr(item, name, value)
    if changed:
        record("collateral.records_changed", actor=actor, case_id=loan.id,
               data={"collateral_id": item.id, "changed": changed})
    db.session.commit()
    return changed


# ---------------------------------------------------------------- revaluation

def running_revaluation(loan, collateral_id):
    key = business_key(collateral_id)
    return next((i for i in running_instances(loan.id, PROCESS) if i.business_key == key),
                None)


def _start_data(loan, item, latest, reason):
    last = latest.get(item.id)
    ratio, principal, _value = ltv(loan, latest)
    return {"loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
            "collateral_id": item.id, "collateral_description": item.description,
            "collateral_kind": item.kind, "asset_type": item.asset_type,
            "registration_no": item.registration_no,
            "last_value": str(last.value) if last else "",
            "last_valued_on": last.valued_on.isoformat() if last else "",
            "ltv_before": str(ratio) if ratio is not None else "",
            "principal": str(principal), "revaluation_reason": reason}


def start_revaluation(loan, collateral_id, actor, reason="staff", commit=True):
    """Start the revaluation of one item (staff from the case page, or the watch when one is
    due). Refused while one of the item runs. Returns the instance."""
    if actor is not None and not may_edit(actor, loan):
        raise NotAllowed("may not revalue this loan's collateral", code="wrong_role")
    lock_case(loan.id)  # two people starting at once: the second sees the first's instance
    item = _item(loan, collateral_id)
    if item.released_at is not None:
        raise Conflict("the item is released", code="collateral_released")
    if running_revaluation(loan, item.id) is not None:
        raise Conflict("a revaluation of this item is already running",
                       code="revaluation_running")
    if latest_definition(PROCESS) is None:
        raise NotFound("the revaluation process is not deployed", code="process_missing")
    latest = latest_valuations([loan.id])
    instance = start_process(PROCESS, case_id=loan.id, actor=actor,
                             business_key=business_key(item.id),
                             data=_start_data(loan, item, latest, reason))
    record("collateral.revaluation_started", actor=actor, case_id=loan.id,
           data={"collateral_id": item.id, "instance_id": instance.id, "reason": reason})
    if commit:
        db.session.commit()
    return instance


def parse_value(value):
    try:
        number = Decimal(str(value).replace(",", "").replace("¥", "").strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def check_valuation(row, values):
    """The officer's entry: a positive value, a valuation date not in the future, a known
    method (field errors, nothing completed)."""
    if row.form_key != "collateral_revaluation_entry":
        return
    errors = {}
    value = parse_value(values.get("new_value"))
    if value is None or value <= 0 or value >= MAX_VALUE:
        errors["new_value"] = [N_("Enter a positive amount.")]
    day = values.get("valued_on")
    try:
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
    except ValueError:
        errors["valued_on"] = [N_("Not a date (YYYY-MM-DD).")]
    else:
        if day > clock.today():
            errors["valued_on"] = [N_("Must not be in the future.")]
    if values.get("method") not in VALUATION_METHODS:
        errors["method"] = [N_("Choose one of the valuation methods.")]
    if errors:
        raise InvalidData("the valuation has errors", field_errors=errors, code="invalid")


BEFORE_COMPLETE.append(check_valuation)


def _user(username):
    from accounts.models import User
    return User.query.filter_by(username=username).first() if username else None


@service("store_collateral_valuation")
def store_collateral_valuation(data):
    """Approved by a reviewer who did not enter it: the valuation joins the item's history
    (entered_by, reviewed_by) and the case's LTV is computed from it."""
    loan = Loan.query.filter_by(loan_no=data["loan_no"]).one()
    item = _item(loan, int(data["collateral_id"]))
    done = data.get("completed_by", {})
    officer, reviewer = _user(done.get("enter_valuation")), _user(done.get("review_valuation"))
    if officer is not None and reviewer is not None and officer.id == reviewer.id:
        raise NotAllowed("the officer may not review their own valuation", code="four_eyes")
    before, _p, _v = ltv(loan)
    instance = running_revaluation(loan, item.id)
    valued_on = data["valued_on"]
    valuation = CollateralValuation(
        collateral_id=item.id, loan_id=loan.id,
        value=parse_value(data["new_value"]).quantize(CENT),
        valued_on=valued_on if isinstance(valued_on, dt.date)
        else dt.date.fromisoformat(str(valued_on)),
        method=data.get("method") or "market", valuer=(data.get("valuer") or "")[:120],
        source="revaluation", note=data.get("valuation_note") or "",
        instance_id=instance.id if instance else None,
        entered_by_id=getattr(officer, "id", None), reviewed_by_id=getattr(reviewer, "id", None),
        created_at=clock.now())
    db.session.add(valuation)
    db.session.flush()
    after, principal, value = ltv(loan)
    record("collateral.revalued", actor=reviewer, case_id=loan.id, data={
        "collateral_id": item.id, "valuation_id": valuation.id, "value": str(valuation.value),
        "valued_on": valuation.valued_on.isoformat(), "method": valuation.method,
        "valuer": valuation.valuer, "entered_by": done.get("enter_valuation"),
        "reviewed_by": done.get("review_valuation"),
        "ltv_before": str(before) if before is not None else None,
        "ltv_after": str(after) if after is not None else None})
    return {"valuation_id": valuation.id, "ltv_after": str(after) if after is not None else ""}
