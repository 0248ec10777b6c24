"""Case operations: each is one transaction, audited."""
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from audit.operations import record
from cases.intake import LoanIntake, differences, parse_flat, parse_intake
from cases.models import Borrower, Collateral, Contact, Guarantor, Loan
from extensions import db
from ledger.schedule import open_schedule
from workflows.errors import Conflict, InvalidData, NotFound
from workflows.service import start_process
from workflows.services import service

RISK_GROUPS = ("high", "normal", "low")
FREQUENCIES = ("monthly", "bimonthly", "quarterly")


def _decimal(value):
    return None if value is None else Decimal(value)


def add_loan(intake, actor):
    """Create the case of a checked, new loan with its borrower, contacts, guarantors,
    collateral and schedule, and start its handover. Flushes; the caller commits."""
    c = intake.canonical
    b = c["borrower"]
    borrower = Borrower(kind=b["kind"], name=b["name"], id_number=b["id_number"],
                        phones=list(b["phones"]), addresses=list(b["addresses"]))
    loan = Loan(loan_no=c["loan_no"], product=c["product"], borrower_name=b["name"],
                principal=Decimal(c["principal"]), interest_rate=Decimal(c["interest_rate"]),
                disbursed_on=dt.date.fromisoformat(c["disbursed_on"]),
                maturity_on=dt.date.fromisoformat(c["maturity_on"]),
                account_manager_id=intake.manager.id, purpose=c["purpose"],
                repayment_account=c["repayment_account"], borrower=borrower, intake=c)
    loan.contacts = [Contact(**item) for item in c["contacts"]]
    loan.guarantors = [Guarantor(**item) for item in c["guarantors"]]
    loan.collateral = [Collateral(**(item | {"area": _decimal(item["area"]),
                                             "valuation": _decimal(item["valuation"])}))
                       for item in c["collateral"]]
    db.session.add(loan)
    db.session.flush()
    open_schedule(loan, c["schedule"])
    record("case.created", actor=actor, case_id=loan.id, data=c)
    start_process("handover", case_id=loan.id, actor=actor, data={
        "loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
        "account_manager": intake.manager.username,
        "maturity_on": loan.maturity_on.isoformat()})
    return loan


def stored_intake(loan):
    """The canonical intake the loan was created from (every loan registered through
    receive_loan or the import stores it)."""
    return loan.intake or {}


def existing_loan(intake):
    """(loan, differences) for a loan number already registered, or (None, None)."""
    loan = Loan.query.filter_by(loan_no=intake.loan_no).first()
    if loan is None:
        return None, None
    return loan, differences(stored_intake(loan), intake.canonical)


def loan_conflict(loan_no, changed):
    return Conflict(f"loan {loan_no} already exists with different data", code="loan_exists",
                    details={"differences": changed})


def _repeat(intake, actor, source):
    """The loan already registered under this number, when the intake is the same (audited);
    Conflict listing what differs otherwise; None when the number is new."""
    loan, changed = existing_loan(intake)
    if loan is None:
        return None
    if changed:
        raise loan_conflict(intake.loan_no, changed)
    record("case.intake_repeated", actor=actor, case_id=loan.id,
           data={"loan_no": loan.loan_no, "source": source})
    return loan


def receive_loan(payload, actor, source="api"):
    """Register a loan, idempotently on its number: returns (loan, created). The same loan
    again (once normalized) returns the existing case; different data is a Conflict whose
    `details["differences"]` lists the paths that differ. Commits."""
    intake = payload if isinstance(payload, LoanIntake) else parse_intake(payload)
    loan = _repeat(intake, actor, source)
    if loan is None:
        try:
            loan = add_loan(intake, actor)
            db.session.commit()
            return loan, True
        except IntegrityError:
            # Registered at the same moment by another request: answer as for a repeat.
            db.session.rollback()
            loan = _repeat(intake, actor, source)
            if loan is None:
                raise
    db.session.commit()
    return loan, False


def register_loan(payload, actor):
    """Create the case for a disbursed loan and start its handover (or return the case already
    registered with the same data); commits."""
    return receive_loan(payload, actor)[0]


@dataclass
class ImportReport:
    imported: list = field(default_factory=list)   # (line, loan_no)
    unchanged: list = field(default_factory=list)  # (line, loan_no)
    errors: list = field(default_factory=list)     # (line, [reason, …])


def import_loans(rows, actor=None, skip_errors=False):
    """Register the loans of flat rows [(line, {column: text})] in one transaction. Every row
    is checked first; any bad row imports nothing unless skip_errors (then the good rows are
    imported). A row repeating a registered loan (or an earlier row) unchanged counts as
    unchanged; with different data it is an error. Commits when it imports."""
    report, new, repeats, seen = ImportReport(), [], [], {}
    for line, row in rows:
        try:
            intake = parse_flat(row)
        except InvalidData as exc:
            report.errors.append((line, [f"{name}: {message}"
                                         for name, messages in exc.field_errors.items()
                                         for message in messages]))
            continue
        if intake.loan_no in seen:
            first_line, canonical = seen[intake.loan_no]
            changed = differences(canonical, intake.canonical)
            if changed:
                report.errors.append((line, [
                    f"loan {intake.loan_no} is also on line {first_line} with different "
                    f"data: {', '.join(changed)}"]))
            else:
                report.unchanged.append((line, intake.loan_no))
            continue
        seen[intake.loan_no] = (line, intake.canonical)
        loan, changed = existing_loan(intake)
        if loan is None:
            new.append((line, intake))
        elif changed:
            report.errors.append((line, [f"loan {intake.loan_no} already exists with "
                                         f"different data: {', '.join(changed)}"]))
        else:
            repeats.append(loan)
            report.unchanged.append((line, intake.loan_no))
    if report.errors and not skip_errors:
        db.session.rollback()
        return report
    for line, intake in new:
        add_loan(intake, actor)
        report.imported.append((line, intake.loan_no))
    for loan in repeats:
        record("case.intake_repeated", actor=actor, case_id=loan.id,
               data={"loan_no": loan.loan_no, "source": "csv"})
    db.session.commit()
    return report


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
    from monitoring.reminders import schedule_reminders
    schedule_reminders(loan)
    from monitoring.risk import start_inspections; start_inspections(loan)  # noqa: E702 (§5.6)
    return {"risk_group": risk_group, "inspection_frequency": inspection_frequency}
