"""Daily delinquency staging (DOMAIN.md §7), set-based: no Python loop over all loans.

The daily run first accrues the day's penalty interest (ledger), then stages, then checks
every ledger invariant and opens a case problem for each break.

DPD is the number of days since the earliest unpaid due date. Stage changes are recorded with
their date; a loan that turns overdue gets an "overdue" case event that starts collection.
"""
import datetime as dt
from collections import namedtuple

from flask import current_app
from sqlalchemy import (Integer, String, case, exists, func, insert, literal, literal_column,
                        or_, select, text, union_all)

from audit.operations import record
from bulk import sparing_collector, update_rows
from cases.models import OFF_CURRENT, DailyRun, Loan, StageChange
from extensions import db
from ledger.book import ZERO
from ledger.models import Installment
from ledger.operations import check_and_report, daily_accrual
from management.points import award_error_free_month, period_of
from workflows import clock
from workflows.clock import BEIJING
from workflows.definitions import latest_definition
from workflows.models import ProcessDefinition, ProcessInstance
from workflows.service import start_processes

# Collections started per statement batch by the daily run.
BATCH = 500
# A stage change as recorded (a stage_changes row).
Change = namedtuple("Change", "loan_id changed_on from_stage to_stage dpd")
# Upper DPD bound of each stage; above the last bound the loan is M3+.
DEFAULT_STAGES = (("current", 0), ("dpd_1_3", 3), ("dpd_4_7", 7), ("dpd_8_30", 30),
                  ("M2", 60), ("M3", 90))


def _days_since(due_column, as_of):
    if db.engine.dialect.name == "postgresql":
        return literal(as_of) - due_column
    return func.cast(func.julianday(literal(as_of.isoformat())) - func.julianday(due_column),
                     db.Integer)


def _stage_expression(dpd):
    bounds = current_app.config.get("DPD_STAGES", DEFAULT_STAGES)
    return case(*[(dpd <= upper, literal(name)) for name, upper in bounds], else_=literal("M3+"))


def _moved(as_of, loan_id=None):
    """The open loans (or one) whose DPD or stage as of `as_of` differs from the stored one:
    (id, loan no, stored stage, DPD, stage) each. Only two parts of the book are read, each
    through its partial index (migration 0014): the loans overdue now (their unpaid
    installments due before `as_of`) and the loans stored off "current" that are not (they
    go back to DPD 0)."""
    unpaid = (Installment.paid_off_on.is_(None), Installment.due_on < as_of)
    earliest = (select(Installment.loan_id, func.min(Installment.due_on).label("due_on"))
                .where(*unpaid).group_by(Installment.loan_id).subquery())
    dpd = _days_since(earliest.c.due_on, as_of)
    is_open = Loan.status.not_in(("closed",))
    overdue = (select(Loan.id, Loan.loan_no, Loan.stage, dpd.label("dpd"),
                      _stage_expression(dpd).label("to_stage"))
               .join(earliest, earliest.c.loan_id == Loan.id)
               .where(is_open, or_(Loan.dpd.is_distinct_from(dpd),
                                   Loan.stage != _stage_expression(dpd))))
    zero = literal_column("0")
    back = (select(Loan.id, Loan.loan_no, Loan.stage, zero.label("dpd"),
                   _stage_expression(zero).label("to_stage"))
            # the index's predicate word for word, so that SQLite uses it too
            .where(is_open, text(f"({OFF_CURRENT})"),
                   ~exists().where(Installment.loan_id == Loan.id, *unpaid)))
    if loan_id is not None:
        overdue, back = (q.where(Loan.id == loan_id) for q in (overdue, back))
    return db.session.execute(union_all(overdue, back)).all()


def _stage(as_of, actor, loan_id=None):
    """Recompute DPD and stage (of one loan or all); record and return the stage changes made,
    [(Change, loan no)]. Only the loans whose DPD or stage moved are written: a current loan
    stays untouched day after day, so the daily run costs the overdue part of the book."""
    moved = _moved(as_of, loan_id)
    changes = [(Change(row.id, as_of, row.stage, row.to_stage, row.dpd), row.loan_no)
               for row in moved if row.stage != row.to_stage]
    if changes:
        db.session.execute(insert(StageChange), [change._asdict() for change, _no in changes])
    if moved:
        table = Loan.__table__
        # One statement for the moved loans, not a second pass over the book.
        update_rows(table, [{"id": row.id, "dpd": row.dpd, "stage": row.to_stage}
                            for row in moved], {"dpd": Integer, "stage": String},
                    lambda new: {"dpd": new.dpd, "stage": new.stage, "stage_since": case(
                        (table.c.stage != new.stage, as_of), else_=table.c.stage_since)})
    for change, _loan_no in changes:
        record("case.stage_changed", actor=actor, case_id=change.loan_id, data={
            "from": change.from_stage, "to": change.to_stage, "dpd": change.dpd,
            "on": as_of.isoformat()})
    return changes


# Feature packages add their daily work here (the classification, the month-end snapshots,
# the scores): each is called as hook(as_of, actor) inside the run's transaction, after the
# staging, and may return a dict of counts for the run's record. `cases` imports none of them.
AFTER_DAILY_RUN = []


def run_daily(as_of=None, actor=None):
    """Stage every open loan as of `as_of` (Beijing date); commits. Returns the counts."""
    with sparing_collector():  # a bulk job over the whole book
        return _run_daily(as_of or clock.today(), actor)


def _run_daily(as_of, actor):
    # Two machines starting the run together queue up here; the second then finds the work
    # done and records nothing twice (SQLite serialises writers anyway).
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(7462)"))
    charges, penalty = daily_accrual(as_of, actor)
    changes = _stage(as_of, actor)
    overdue = _emit_overdue_events(changes, actor)
    breaks = check_and_report(actor)
    if as_of.day == 1:  # the month that ended: +3 for every error-free one [000 §七]
        award_error_free_month(period_of(as_of - dt.timedelta(days=1)))
    # The open loans staged.
    # count(*): PostgreSQL counts them in the status index alone (0014)
    loans = db.session.scalar(select(func.count()).select_from(Loan)
                              .where(Loan.status.not_in(("closed",))))
    run = db.session.get(DailyRun, as_of) or DailyRun(run_on=as_of)
    run.started_at, run.loans = clock.now(), loans
    run.stage_changes = (run.stage_changes or 0) + len(changes)
    db.session.add(run)
    counts = {"loans": loans, "stage_changes": len(changes), "overdue": overdue,
              "penalty_charges": charges, "penalty": str(penalty),
              "ledger_breaks": len(breaks)}
    for hook in AFTER_DAILY_RUN:
        counts.update(hook(as_of, actor) or {})
    record("daily.staging", actor=actor, data={"as_of": as_of.isoformat(), **counts})
    db.session.commit()
    return counts


def restage_loan(loan, actor=None):
    """After a repayment: the loan's DPD and stage as of today, without waiting a day."""
    changes = _stage(clock.today(), actor, loan.id)
    _emit_overdue_events(changes, actor)
    db.session.refresh(loan)


def _emit_overdue_events(changes, actor):
    """A loan turning overdue gets its "overdue" case event, and collection starts for those
    without one running — together, BATCH at a time. Returns how many started collection."""
    newly = [(change, loan_no) for change, loan_no in changes
             if change.from_stage == "current" and change.to_stage != "current"]
    for change, _loan_no in newly:
        record("case.overdue", actor=actor, case_id=change.loan_id,
               data={"dpd": change.dpd, "stage": change.to_stage})
    if not newly or latest_definition("collection") is None:
        return 0
    from collection.facts import starting  # collection builds on cases
    started = 0
    for at in range(0, len(newly), BATCH):
        batch = newly[at:at + BATCH]
        ids = [change.loan_id for change, _loan_no in batch]
        # (status is tested here, not in SQL: SQLite would otherwise read every running
        # instance through the timer index instead of these cases' rows)
        running = {case_id for case_id, status in db.session.execute(
            select(ProcessInstance.case_id, ProcessInstance.status)
            .join(ProcessInstance.definition)
            .where(ProcessInstance.case_id.in_(ids),
                   ProcessDefinition.process_key == "collection")) if status == "running"}
        batch = [(c, no) for c, no in batch if c.loan_id not in running]
        if not batch:
            continue
        ids = [c.loan_id for c, _no in batch]
        amounts = _overdue_amounts(ids, batch[0][0].changed_on)
        # Each start's first step re-reads its loan (collection_refresh): read once for all.
        with starting(ids):
            start_processes("collection", [{"case_id": c.loan_id, "data": {
                "loan_no": loan_no, "dpd": c.dpd, "stage": c.to_stage,
                "overdue_amount": str(amounts.get(c.loan_id, ZERO))}} for c, loan_no in batch],
                actor=actor)
        started += len(batch)
    return started


def _overdue_amounts(loan_ids, as_of):
    """ledger.book.overdue_amount of many loans in one query: {loan id: amount}."""
    amounts = {}
    for row in db.session.execute(select(Installment).where(
            Installment.loan_id.in_(loan_ids), Installment.paid_off_on.is_(None),
            Installment.due_on < as_of).order_by(Installment.loan_id, Installment.seq)).scalars():
        amounts[row.loan_id] = amounts.get(row.loan_id, ZERO) + row.outstanding
    return amounts


def daily_run_due(now=None):
    """Whether the worker should run today's staging: after DAILY_RUN_AT, not yet run."""
    moment = (now or clock.now()).astimezone(BEIJING)
    hour, minute = (int(x) for x in current_app.config.get("DAILY_RUN_AT", "06:00").split(":"))
    if moment.time() < dt.time(hour, minute):
        return False
    return db.session.get(DailyRun, moment.date()) is None
