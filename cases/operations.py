"""Case operations: each is one transaction, audited."""
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import literal, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from audit.operations import record
from bulk import insert_rows, refresh_statistics, sparing_collector
from cases.intake import (COLLATERAL_DATES, LoanIntake, differences, parse_flat,
                          parse_intake)
from cases.models import Borrower, Collateral, Contact, Guarantor, Loan
from extensions import commit_keeping, db
from ledger.models import Installment
from ledger.schedule import charge_schedules, open_schedule, schedule_rows
from search.keys import add_written
from workflows import clock
from workflows.errors import Conflict, InvalidData, NotFound
from workflows.service import start_processes
from workflows.services import service

RISK_GROUPS = ("high", "normal", "low")
FREQUENCIES = ("monthly", "bimonthly", "quarterly")


def _decimal(value):
    return None if value is None else Decimal(value)


# Loans written per transaction by the bulk import (and per flush by add_loans).
BATCH = 500
# An import of this many loans or more refreshes the statistics of the tables it filled
# (bulk.refresh_statistics): traffic right after a large import is planned on the new sizes.
ANALYZE_AFTER = 1000
INTAKE_TABLES = ("loans", "borrowers", "contacts", "collateral", "collateral_valuations",
                 "guarantors", "installments", "ledger_charges", "loan_balances", "search_keys",
                 "process_instances", "human_tasks", "human_task_exclusions",
                 "user_notifications", "audit_events", "audit_chain_queue")


def _new_loan(intake):
    """The Loan of a checked intake with its borrower, parties, collateral and schedule, as
    new ORM objects (not added to a session): how loans were written before add_loans, kept
    as the reference the tests compare the row writes with."""
    c = intake.canonical
    b = c["borrower"]
    borrower = Borrower(kind=b["kind"], name=b["name"], id_number=b["id_number"],
                        phones=list(b["phones"]), addresses=list(b["addresses"]))
    loan = Loan(loan_no=c["loan_no"], product=c["product"], borrower_name=b["name"],
                principal=Decimal(c["principal"]), interest_rate=Decimal(c["interest_rate"]),
                disbursed_on=dt.date.fromisoformat(c["disbursed_on"]),
                maturity_on=dt.date.fromisoformat(c["maturity_on"]),
                account_manager=intake.manager, purpose=c["purpose"],
                repayment_account=c["repayment_account"], borrower=borrower, intake=c)
    loan.contacts = [Contact(**item) for item in c["contacts"]]
    loan.guarantors = [Guarantor(**item) for item in c["guarantors"]]
    loan.collateral = [Collateral(**_collateral(item)) for item in c["collateral"]]
    open_schedule(loan, c["schedule"])
    return loan


def _collateral(item):
    """An item's row: every item the same keys (one INSERT for many), the issue-16 records
    at their defaults when the intake did not give them."""
    dates = {name: dt.date.fromisoformat(item[name]) if item.get(name) else None
             for name in COLLATERAL_DATES}
    return {"asset_type": "other", "registration_office": "", "insurance_policy": "",
            "insurer": ""} | item | {"area": _decimal(item["area"]),
                                     "valuation": _decimal(item["valuation"])} | dates


def _intake_valuations(loan_ids):
    """Each item's intake valuation becomes the first row of its valuation history, dated
    the disbursement day (as migration 0019 did for the loans before it): one INSERT … SELECT."""
    from guarantees.models import CollateralValuation
    table, c, loans = CollateralValuation.__table__, Collateral.__table__, Loan.__table__
    db.session.connection().execute(table.insert().from_select(
        ["collateral_id", "loan_id", "value", "valued_on", "method", "valuer", "source", "note",
         "created_at"],
        select(c.c.id, c.c.loan_id, c.c.valuation, loans.c.disbursed_on, literal("market"),
               literal(""), literal("intake"), literal(""), literal(clock.now()))
        .join(loans, loans.c.id == c.c.loan_id)
        .where(c.c.loan_id.in_(loan_ids), c.c.valuation.is_not(None))))


def add_loan(intake, actor):
    """Create the case of a checked, new loan with its borrower, contacts, guarantors,
    collateral and schedule, and start its handover: add_loans for one loan. Returns the Loan
    and its rows as ORM objects holding what was written (persistent in the session, nothing
    read back); flushes, the caller commits."""
    (written,) = _write_loans([intake], keep_ids=True)
    _register([written], [intake], actor)
    return _loaded_loan(written, intake.manager)


def add_loans(intakes, actor):
    """Register checked, new loans: one statement per table for all of them (bulk.insert_rows,
    with the ids where later rows need them), their schedule charges, case.created events and
    handovers.
    Returns the loan ids; flushes, the caller commits."""
    if not intakes:
        return []
    written = _write_loans(intakes)
    _register(written, intakes, actor)
    return [w["loan"]["id"] for w in written]


def _insert(model, rows, returning=True, complete=False):
    """INSERT the rows (bulk.insert_rows) without the ORM's bulk layer; with `returning`, set
    each row's "id"; with `complete`, put every column's value in the rows first
    (_complete)."""
    if rows and complete:
        _complete(model, rows)
    insert_rows(model.__table__, rows, ids=returning)


_DEFAULTS = {}


def _complete(model, rows):
    """Set every other column of the rows to its default (None without one), as the INSERT
    would: what is written is then known in full, and ORM objects built from the rows need
    nothing read back. (The import leaves this to the INSERT: fewer parameters to send.)"""
    table = model.__table__
    if table not in _DEFAULTS:
        _DEFAULTS[table] = [(c.key, c.default) for c in table.columns
                            if not c.primary_key and c.server_default is None]
    for row in rows:
        for key, default in _DEFAULTS[table]:
            if key not in row:
                row[key] = (None if default is None else default.arg if default.is_scalar
                            else default.arg(None))


def _write_loans(intakes, keep_ids=False):
    """Insert the rows of new loans; per loan {"borrower": row, "loan": row, "contacts": [rows],
    …, "installments": [rows]}. Borrower and loan rows get their ids, the others only with
    `keep_ids` (without, SQLite writes them in one statement, not one per row), which also
    puts every column in the rows (_complete)."""
    canon = [intake.canonical for intake in intakes]
    written = [{"borrower": {"kind": c["borrower"]["kind"], "name": c["borrower"]["name"],
                             "id_number": c["borrower"]["id_number"],
                             "phones": list(c["borrower"]["phones"]),
                             "addresses": list(c["borrower"]["addresses"])}} for c in canon]
    _insert(Borrower, [w["borrower"] for w in written], complete=keep_ids)
    for w, c, intake in zip(written, canon, intakes):
        w["loan"] = {
            "loan_no": c["loan_no"], "product": c["product"],
            "borrower_name": c["borrower"]["name"], "principal": Decimal(c["principal"]),
            "interest_rate": Decimal(c["interest_rate"]),
            "disbursed_on": dt.date.fromisoformat(c["disbursed_on"]),
            "maturity_on": dt.date.fromisoformat(c["maturity_on"]),
            "account_manager_id": intake.manager.id, "purpose": c["purpose"],
            "repayment_account": c["repayment_account"], "borrower_id": w["borrower"]["id"],
            "intake": c}
    _insert(Loan, [w["loan"] for w in written], complete=keep_ids)
    for model, key, shape in ((Contact, "contacts", dict), (Guarantor, "guarantors", dict),
                              (Collateral, "collateral", _collateral),
                              (Installment, "installments", None)):
        for w, c in zip(written, canon):
            items = schedule_rows(c["schedule"]) if shape is None else \
                [shape(item) for item in c[key]]
            w[key] = [row | {"loan_id": w["loan"]["id"]} for row in items]
        _insert(model, [row for w in written for row in w[key]], keep_ids, keep_ids)
        if model is Collateral and any(row["valuation"] is not None for w in written
                                       for row in w[key]):
            _intake_valuations([w["loan"]["id"] for w in written])
    add_written(written)  # the header search's keys (search.keys), from these rows
    return written


def _loaded_loan(written, manager):
    """The Loan of written rows as persistent ORM objects holding exactly those rows (as if
    just loaded), relationships included: nothing is read back to answer with them."""
    def loaded(model, row):
        obj = model(**row)
        make_transient_to_detached(obj)
        return obj
    loan, borrower = loaded(Loan, written["loan"]), loaded(Borrower, written["borrower"])
    set_committed_value(loan, "borrower", borrower)
    set_committed_value(loan, "account_manager", manager)
    for model, key in ((Contact, "contacts"), (Guarantor, "guarantors"),
                       (Collateral, "collateral"), (Installment, "installments")):
        set_committed_value(loan, key, [loaded(model, row) for row in written[key]])
    for inst in loan.installments:
        set_committed_value(inst, "loan", loan)
    db.session.add_all([loan, borrower, *loan.contacts, *loan.guarantors, *loan.collateral,
                        *loan.installments])
    return loan


def _register(written, intakes, actor):
    """What every new case gets once its rows are written: the schedule's charges, the
    case.created event, its handover."""
    loan_ids = [w["loan"]["id"] for w in written]
    charge_schedules(loan_ids)
    for loan_id, intake in zip(loan_ids, intakes):
        record("case.created", actor=actor, case_id=loan_id, data=intake.canonical)
    start_processes("handover", [{"case_id": loan_id, "data": {
        "loan_no": intake.loan_no, "borrower_name": intake.canonical["borrower"]["name"],
        "account_manager": intake.manager.username,
        "maturity_on": intake.canonical["maturity_on"]}}
        for loan_id, intake in zip(loan_ids, intakes)],
        actor=actor, users={i.manager.username: i.manager.id for i in intakes})


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


def receive_loan(payload, actor, source="api", present=None):
    """Register a loan, idempotently on its number: returns (loan, created). The same loan
    again (once normalized) returns the existing case; different data is a Conflict whose
    `details["differences"]` lists the paths that differ. `present`: a function of the loan
    (e.g. the API's case_dict) called before the commit, so the answer is read in the same
    transaction; its result is returned in place of the loan. Commits."""
    intake = payload if isinstance(payload, LoanIntake) else parse_intake(payload)
    try:
        # A new number is the common case: insert at once, and let the unique loan number
        # say when it is a repeat (registered before, or by another request just now).
        loan = add_loan(intake, actor)
        answer = loan if present is None else present(loan)
        # The new loan and its rows hold what was just written: the caller may use them.
        commit_keeping(loan, loan.borrower, loan.account_manager, *loan.contacts,
                       *loan.guarantors, *loan.collateral, *loan.installments)
        return answer, True
    except IntegrityError:
        db.session.rollback()
        loan = _repeat(intake, actor, source)
        if loan is None:
            raise
    answer = loan if present is None else present(loan)
    db.session.commit()
    return answer, False


def register_loan(payload, actor):
    """Create the case for a disbursed loan and start its handover (or return the case already
    registered with the same data); commits."""
    return receive_loan(payload, actor)[0]


@dataclass
class ImportReport:
    imported: list = field(default_factory=list)   # (line, loan_no)
    unchanged: list = field(default_factory=list)  # (line, loan_no)
    errors: list = field(default_factory=list)     # (line, [reason, …])


def _registered(loan_nos):
    """{loan_no: (id, canonical intake)} of the loans already registered, BATCH at a time."""
    loan_nos, found = list(loan_nos), {}
    for at in range(0, len(loan_nos), BATCH):
        found.update((no, (loan_id, intake or {})) for loan_id, no, intake in db.session.execute(
            select(Loan.id, Loan.loan_no, Loan.intake)
            .where(Loan.loan_no.in_(loan_nos[at:at + BATCH]))))
    return found


def _check_registered(candidates, report, repeats):
    """Split (line, intake) into the new ones (returned) and those already registered:
    unchanged (counted, their repeat audited later) or with different data (an error)."""
    registered, new = _registered(i.loan_no for _line, i in candidates), []
    for line, intake in candidates:
        found = registered.get(intake.loan_no)
        if found is None:
            new.append((line, intake))
            continue
        changed = differences(found[1], intake.canonical)
        if changed:
            report.errors.append((line, [f"loan {intake.loan_no} already exists with "
                                         f"different data: {', '.join(changed)}"]))
        else:
            repeats.append((found[0], intake.loan_no))
            report.unchanged.append((line, intake.loan_no))
    return new


def import_loans(rows, actor=None, skip_errors=False):
    """Register the loans of flat rows [(line, {column: text})]. Every row is checked first;
    any bad row imports nothing unless skip_errors (then the good rows are imported). A row
    repeating a registered loan (or an earlier row) unchanged counts as unchanged; with
    different data it is an error. Commits when it imports.

    The checked rows are written BATCH loans per transaction (add_loans). A loan registered
    meanwhile by someone else (another import, the API) makes its batch roll back and run
    again without it: counted as unchanged, or reported as an error when its data differs
    (the batches committed before it stay imported)."""
    with sparing_collector():
        return _import_loans(rows, actor, skip_errors)


def _import_loans(rows, actor, skip_errors):
    report, candidates, repeats, seen, managers = ImportReport(), [], [], {}, {}
    for line, row in rows:
        try:
            intake = parse_flat(row, managers)
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
        candidates.append((line, intake))
    new = _check_registered(candidates, report, repeats)
    if report.errors and not skip_errors:
        db.session.rollback()
        return report
    batches = [new[at:at + BATCH] for at in range(0, len(new), BATCH)] or [[]]
    for number, batch in enumerate(batches):
        last = number == len(batches) - 1
        for _attempt in range(5):
            try:
                add_loans([intake for _line, intake in batch], actor)
                if last:
                    for loan_id, loan_no in repeats:
                        record("case.intake_repeated", actor=actor, case_id=loan_id,
                               data={"loan_no": loan_no, "source": "csv"})
                db.session.commit()
                break
            except (IntegrityError, OperationalError):
                # Another writer registered some of these loans (or deadlocked with us on
                # them): look again and write the rest.
                db.session.rollback()
                batch = _check_registered(batch, report, repeats)
        else:
            raise Conflict("the loans could not be written: other writers kept registering "
                           "the same loan numbers", code="import_contended")
        report.imported.extend((line, intake.loan_no) for line, intake in batch)
    if len(report.imported) >= ANALYZE_AFTER:
        refresh_statistics(INTAKE_TABLES)
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
