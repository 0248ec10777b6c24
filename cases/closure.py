"""Closure (DOMAIN.md §5.5): a zero balance ends servicing and starts the closure process,
whose last step archives the case."""
import datetime as dt

from audit.operations import record
from cases.models import Loan
from extensions import db
from i18n import N_
from workflows import clock
from workflows.errors import InvalidData
from workflows.service import cancel_instance, running_instances, start_process
from workflows.services import service
from workflows.tasks import BEFORE_COMPLETE


def start_closure(loan, actor=None):
    """Balance is zero: servicing ends and the closure process starts (DOMAIN.md §5.5)."""
    for instance in running_instances(loan.id):
        if instance.definition.process_key != "handover":
            cancel_instance(instance, "loan fully repaid", actor)
    loan.status = "closing"
    record("case.closing", actor=actor, case_id=loan.id, data={"loan_no": loan.loan_no})
    start_process("closure", case_id=loan.id, actor=actor, data={
        "loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
        "account_manager": loan.account_manager.username,
        "collateral_registrations": registrations_text(loan)})


def registered_items(loan):
    """The unreleased items with a registration to cancel."""
    return [c for c in loan.collateral if c.released_at is None and c.registration_no]


def registrations_text(loan):
    """What the release step shows: each registered item's number, office and description
    (the registration record the deregistration cancels)."""
    return "；".join(" · ".join(part for part in (c.registration_no, c.registration_office,
                                                 c.description) if part)
                    for c in registered_items(loan))


@service("archive_case")
def archive_case(data, contract_disposition):
    """Closure's last step: release the collateral, end every other process, close the case."""
    loan = Loan.query.filter_by(loan_no=data["loan_no"]).one()
    released = []
    deregistered_on = _day(data.get("released_on"))
    for item in loan.collateral:
        if item.released_at is None:
            item.released_at = clock.now()
            if item.registration_no and data.get("collateral_action") == "released":
                # The deregistration record cancels this item's registration.
                item.deregistration_no = (data.get("deregistration_no") or "")[:80]
                item.deregistered_on = deregistered_on
            released.append({"collateral_id": item.id, "registration_no": item.registration_no,
                             "registration_office": item.registration_office,
                             "deregistration_no": item.deregistration_no,
                             "deregistered_on": item.deregistered_on.isoformat()
                             if item.deregistered_on else None})
    for instance in running_instances(loan.id):
        if instance.definition.process_key != "closure":
            cancel_instance(instance, "case closed", None)
    loan.status, loan.closed_at = "closed", clock.now()
    record("case.closed", case_id=loan.id, data={
        "contract_disposition": contract_disposition,
        "collateral_action": data.get("collateral_action"),
        "deregistration": {k: data.get(k) for k in ("deregistration_no", "released_on",
                                                    "deregistration_office")},
        "released": released})
    return {"closed": True}


def _day(value):
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def check_release(row, values):
    """Closure's release step: registered collateral is released only with its
    deregistration record ("nothing to deregister" is refused when the loan has some
    registered); a deregistration record is refused for a loan with no registered
    collateral."""
    if row.form_key != "closure_release":
        return
    loan = db.session.get(Loan, row.case_id)
    if loan is None:
        return
    registered = registered_items(loan)
    action = values.get("collateral_action")
    if action == "none" and registered:
        raise InvalidData("registered collateral needs its deregistration record",
                          code="invalid", field_errors={"collateral_action": [N_(
                              "This loan has registered collateral: record its "
                              "deregistration.")]})
    if action == "released":
        if not registered:
            raise InvalidData("no registered collateral to deregister", code="invalid",
                              field_errors={"collateral_action": [N_(
                                  "This loan has no registered collateral: there is nothing "
                                  "to deregister.")]})



BEFORE_COMPLETE.append(check_release)
