"""Closure (DOMAIN.md §5.5): a zero balance ends servicing and starts the closure process,
whose last step archives the case."""
from audit.operations import record
from cases.models import Loan
from extensions import db
from i18n import N_
from workflows import clock
from workflows.errors import InvalidData
from workflows.service import BEFORE_COMPLETE, cancel_instance, running_instances, start_process
from workflows.services import service


def start_closure(loan, actor=None):
    """Balance is zero: servicing ends and the closure process starts (DOMAIN.md §5.5)."""
    for instance in running_instances(loan.id):
        if instance.definition.process_key != "handover":
            cancel_instance(instance, "loan fully repaid", actor)
    loan.status = "closing"
    record("case.closing", actor=actor, case_id=loan.id, data={"loan_no": loan.loan_no})
    start_process("closure", case_id=loan.id, actor=actor, data={
        "loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
        "account_manager": loan.account_manager.username})


@service("archive_case")
def archive_case(data, contract_disposition):
    """Closure's last step: release the collateral, end every other process, close the case."""
    loan = Loan.query.filter_by(loan_no=data["loan_no"]).one()
    for item in loan.collateral:
        if item.released_at is None:
            item.released_at = clock.now()
    for instance in running_instances(loan.id):
        if instance.definition.process_key != "closure":
            cancel_instance(instance, "case closed", None)
    loan.status, loan.closed_at = "closed", clock.now()
    record("case.closed", case_id=loan.id, data={
        "contract_disposition": contract_disposition,
        "collateral_action": data.get("collateral_action"),
        "deregistration": {k: data.get(k) for k in ("deregistration_no", "released_on",
                                                    "deregistration_office")}})
    return {"closed": True}


def check_release(row, values):
    """Closure's release step: registered collateral is released only with its
    deregistration record; "no collateral" is refused when the loan has some registered."""
    if row.form_key != "closure_release" or values.get("collateral_action") != "none":
        return
    loan = db.session.get(Loan, row.case_id)
    if loan is not None and any(c.registration_no for c in loan.collateral):
        raise InvalidData("registered collateral needs its deregistration record",
                          code="invalid", field_errors={"collateral_action": [N_(
                              "This loan has registered collateral: record its "
                              "deregistration.")]})


BEFORE_COMPLETE.append(check_release)
