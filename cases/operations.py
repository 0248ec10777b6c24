"""Case operations: each is one transaction, audited."""
import datetime as dt
from decimal import Decimal, InvalidOperation

from accounts.models import User
from audit.operations import record
from extensions import db
from cases.models import Loan
from workflows.errors import Conflict, InvalidData, NotFound
from workflows.service import start_process
from workflows.services import service

LOAN_FIELDS = ("loan_no", "borrower_name", "principal", "interest_rate", "disbursed_on",
               "maturity_on", "account_manager")
RISK_GROUPS = ("high", "normal", "low")
FREQUENCIES = ("monthly", "bimonthly", "quarterly")


def N_(message):
    """Mark a message for extraction only: the API returns it in English, the web pages
    translate it when they show it."""
    return message


def _parse_loan(payload):
    """Check and convert a loan payload; InvalidData lists every bad field at once."""
    errors, values = {}, {}
    for name in LOAN_FIELDS:
        raw = payload.get(name)
        if raw is None or str(raw).strip() == "":
            errors[name] = [N_("This field is required.")]
    text = {k: str(payload.get(k, "")).strip() for k in LOAN_FIELDS}
    for name in ("principal", "interest_rate"):
        if name in errors:
            continue
        try:
            values[name] = Decimal(text[name])
            if values[name] <= 0 or not values[name].is_finite():
                raise InvalidOperation
        except InvalidOperation:
            errors[name] = [N_("Must be a positive number.")]
    for name in ("disbursed_on", "maturity_on"):
        if name in errors:
            continue
        try:
            values[name] = dt.date.fromisoformat(text[name])
        except ValueError:
            errors[name] = [N_("Must be a date as YYYY-MM-DD.")]
    if "disbursed_on" in values and "maturity_on" in values \
            and values["maturity_on"] <= values["disbursed_on"]:
        errors["maturity_on"] = [N_("Must be after the disbursement date.")]
    if "account_manager" not in errors:
        manager = User.query.filter_by(username=text["account_manager"]).first()
        if manager is None or "account_manager" not in manager.roles:
            errors["account_manager"] = [N_("No account manager with this user name.")]
        values["account_manager"] = manager
    if len(text["loan_no"]) > 40:
        errors["loan_no"] = [N_("At most 40 characters.")]
    if errors:
        raise InvalidData("the loan has errors", field_errors=errors, code="invalid")
    values["loan_no"], values["borrower_name"] = text["loan_no"], text["borrower_name"]
    return values


def register_loan(payload, actor):
    """Create the case for a disbursed loan and start its handover; commits."""
    values = _parse_loan(payload)
    if Loan.query.filter_by(loan_no=values["loan_no"]).first():
        raise Conflict(f"loan {values['loan_no']} already exists", code="loan_exists")
    manager = values.pop("account_manager")
    loan = Loan(account_manager_id=manager.id, **values)
    db.session.add(loan)
    db.session.flush()
    record("case.created", actor=actor, case_id=loan.id,
           data={k: str(v) for k, v in values.items()} | {"account_manager": manager.username})
    start_process("handover", case_id=loan.id, actor=actor, data={
        "loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
        "account_manager": manager.username,
        "maturity_on": loan.maturity_on.isoformat()})
    db.session.commit()
    return loan


def get_loan(loan_no):
    loan = Loan.query.filter_by(loan_no=loan_no).first()
    if loan is None:
        raise NotFound(f"no loan {loan_no}", code="loan_missing")
    return loan


@service("set_monitoring_plan")
def set_monitoring_plan(data, risk_group, inspection_frequency):
    """Called by the handover's service task once the loan is registered."""
    if risk_group not in RISK_GROUPS or inspection_frequency not in FREQUENCIES:
        raise ValueError(f"invalid monitoring plan {risk_group}/{inspection_frequency}")
    loan = get_loan(data["loan_no"])
    loan.risk_group, loan.inspection_frequency, loan.status = (
        risk_group, inspection_frequency, "servicing")
    record("case.monitoring_plan", case_id=loan.id,
           data={"risk_group": risk_group, "inspection_frequency": inspection_frequency})
    # DOMAIN.md §5.1 step 4: the servicing processes start once the loan is registered.
    from cases.reminders import schedule_reminders
    schedule_reminders(loan)
    return {"risk_group": risk_group, "inspection_frequency": inspection_frequency}
