"""Month-end snapshots: every loan as it stood at the end of a month, kept as a fact.

`take_month_end(month)` writes one LoanMonthSnapshot per loan open at any time in the month
(disbursed by its last day, not closed before its first), in ONE INSERT…SELECT, figures
rebuilt from the immutable ledger rows as of the month's last day (Beijing):

- balance: principal outstanding now plus the principal allocations that took effect after
  the month (a repayment counts from its `paid_at`, a reversal's negative rows from when it
  was booked); 0 once written off by then, or closed;
- DPD: the month's last day minus the earliest installment due before it and unpaid then
  (an installment paid off on or before that day is paid; any other is unpaid exactly when
  its charges by then exceed its allocations by then); overdue_amount: what those owed then;
- category: the last CategoryChange on or before the day, else the `from` of the first one
  after it, else the current one, else the rules on the DPD;
- provision with the rates in force when taken; due_in_month (principal and interest of the
  installments due in the month); collected_in_month (allocations taking effect in the month:
  net of reversals booked in it); team (the account manager's); collector (who completed, or
  holds, the loan's latest collector task of the collection process in the month).

Idempotent by INSERT … ON CONFLICT (month, loan_id) DO NOTHING, the primary key:
a second run, or a later daily run, writes only loans missing from the month, never
rewriting a fact. `retake=True` (the admin CLI's --retake) deletes the month and writes it
again in the same transaction, audited.
"""
import datetime as dt

from flask import current_app
from sqlalchemy import (Date, Numeric, and_, case, cast, delete, exists, func, literal, or_,
                        select, text, true)
from sqlalchemy.dialects import postgresql, sqlite

from accounts.models import User
from audit.operations import record
from cases.models import Loan, LoanExtension
from cases.staging import DEFAULT_STAGES
from extensions import db
from ledger.models import Allocation, Charge, Installment, Repayment, WriteOff
from portfolio.classification import (cents_sql, inserted, provision_cents_sql, rate_bp_sql,
                                      rule_category_sql)
from portfolio.models import CATEGORIES, CategoryChange, LoanCategory, LoanMonthSnapshot
from portfolio.rules import current_rules
from workflows import clock
from workflows.clock import BEIJING
from workflows.models import HumanTask

UTC = dt.timezone.utc


def month_bounds(month):
    """(first day, last day, first instant in UTC, first instant of the next month in UTC)."""
    first = month.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    at = lambda day: dt.datetime.combine(day, dt.time(0), BEIJING).astimezone(UTC)  # noqa: E731
    return first, following - dt.timedelta(days=1), at(first), at(following)


def _days_between(later, earlier):
    if db.engine.dialect.name == "postgresql":
        return later - earlier
    return cast(func.julianday(later) - func.julianday(earlier), db.Integer)


def _bucket_sql(dpd):
    return case((dpd <= 0, "current"), (dpd <= 30, "M1"), (dpd <= 60, "M2"), (dpd <= 90, "M3"),
                else_="M3+")


def _stage_sql(dpd):
    bounds = current_app.config.get("DPD_STAGES", DEFAULT_STAGES)
    return case(*[(dpd <= upper, literal(name)) for name, upper in bounds], else_=literal("M3+"))


def _effective_at():
    """When an allocation took effect: its repayment's value time, a reversal's booking."""
    return case((Allocation.reversal_id.is_(None), Repayment.paid_at),
                else_=Allocation.created_at)


def _select(month, rules):
    first, last, start, end = month_bounds(month)
    eff = _effective_at()
    in_scope = and_(Loan.disbursed_on <= last,
                    or_(Loan.closed_at.is_(None), Loan.closed_at >= start))
    # Per loan: principal paid after the month (added back) and collected in it.
    money = (select(Allocation.loan_id,
                    func.sum(case((and_(Allocation.part == "principal", eff >= end),
                                  Allocation.amount), else_=0)).label("principal_after"),
                    func.sum(case((and_(eff >= start, eff < end), Allocation.amount),
                                  else_=0)).label("collected"))
             .join(Repayment, Repayment.id == Allocation.repayment_id)
             .where(eff >= start).group_by(Allocation.loan_id).subquery("money"))
    # Per loan: principal outstanding now, and what fell due in the month.
    schedule = (select(Installment.loan_id,
                       func.sum(Installment.principal_due - Installment.principal_paid)
                       .label("principal_now"),
                       func.sum(case((Installment.due_on.between(first, last),
                                      Installment.principal_due + Installment.interest_due),
                                     else_=0)).label("due_in_month"))
                .group_by(Installment.loan_id).subquery("schedule"))
    # Installments due before the last day and not surely paid by then: owed at month end.
    maybe_unpaid = and_(Installment.due_on < last,
                        or_(Installment.paid_off_on.is_(None), Installment.paid_off_on > last))
    charged = (select(func.coalesce(func.sum(Charge.amount), 0))
               .where(Charge.installment_id == Installment.id,
                      or_(Charge.source == "schedule",
                          and_(Charge.source == "penalty", Charge.period_end <= last),
                          and_(Charge.source.not_in(("schedule", "penalty")),
                               Charge.created_at < end)))
               .scalar_subquery())
    paid = (select(func.coalesce(func.sum(Allocation.amount), 0))
            .join(Repayment, Repayment.id == Allocation.repayment_id)
            .where(Allocation.installment_id == Installment.id, eff < end).scalar_subquery())
    owed_rows = (select(Installment.loan_id, Installment.due_on, (charged - paid).label("owed"))
                 .where(maybe_unpaid).subquery("owed_rows"))
    owed = (select(owed_rows.c.loan_id, func.min(owed_rows.c.due_on).label("earliest"),
                   func.sum(owed_rows.c.owed).label("overdue"))
            .where(owed_rows.c.owed > 0).group_by(owed_rows.c.loan_id).subquery("owed"))

    closed_by_end = and_(Loan.closed_at.is_not(None), Loan.closed_at < end)
    written_off = exists().where(WriteOff.loan_id == Loan.id, WriteOff.written_off_on <= last)
    dpd = case((closed_by_end, 0), (owed.c.earliest.is_(None), 0),
               else_=_days_between(literal(last, Date), owed.c.earliest))
    principal = (func.coalesce(schedule.c.principal_now, 0)
                 + func.coalesce(money.c.principal_after, 0))
    balance_cents = case((or_(closed_by_end, written_off), 0), else_=cents_sql(principal))
    extended = exists().where(LoanExtension.loan_id == Loan.id, LoanExtension.approved_at < end)
    changes = CategoryChange
    last_change = (select(changes.to_category).where(changes.loan_id == Loan.id,
                                                     changes.changed_on <= last)
                   .order_by(changes.changed_on.desc(), changes.id.desc()).limit(1)
                   .scalar_subquery())
    next_change = (select(changes.from_category).where(changes.loan_id == Loan.id,
                                                       changes.changed_on > last,
                                                       changes.from_category.is_not(None))
                   .order_by(changes.changed_on, changes.id).limit(1).scalar_subquery())
    current = select(LoanCategory.category).where(LoanCategory.loan_id == Loan.id) \
        .scalar_subquery()
    category = func.coalesce(last_change, next_change, current,
                             rule_category_sql(rules, dpd, extended))
    holder = case((and_(HumanTask.completed_at.is_not(None), HumanTask.completed_at < end),
                   HumanTask.completed_by_id), else_=HumanTask.claimed_by_id)
    acted = case((and_(HumanTask.completed_at.is_not(None), HumanTask.completed_at < end),
                  HumanTask.completed_at), else_=HumanTask.created_at)
    # Per loan, in one pass over the month's collector tasks (not a look-up per loan, which
    # PostgreSQL ran through the process_key index: every collection task read for every
    # loan, 2.5 s at 20,000 loans and growing with both).
    ranked = (select(HumanTask.case_id, holder.label("holder"), func.row_number().over(
        partition_by=HumanTask.case_id, order_by=(acted.desc(), HumanTask.id.desc()))
        .label("latest")).where(
        HumanTask.process_key == "collection", HumanTask.lane == "collector",
        HumanTask.created_at < end,
        or_(HumanTask.completed_at.is_(None), HumanTask.completed_at >= start),
        holder.is_not(None)).subquery("ranked"))
    status = case((closed_by_end, "closed"),
                  (Loan.status.in_(("closed", "closing")),
                   case((balance_cents == 0, "closing"), else_="servicing")),
                  else_=Loan.status)
    inner = (select(
        Loan.id.label("loan_id"), Loan.product, Loan.account_manager_id,
        User.team_id, Loan.disbursed_on, Loan.principal, status.label("status"),
        closed_by_end.label("closed"), dpd.label("dpd"), balance_cents.label("balance_cents"),
        func.coalesce(owed.c.overdue, 0).label("overdue"),
        func.coalesce(schedule.c.due_in_month, 0).label("due_in_month"),
        func.coalesce(money.c.collected, 0).label("collected"),
        category.label("category"), ranked.c.holder.label("collector_id"))
        .select_from(Loan).join(User, User.id == Loan.account_manager_id)
        .outerjoin(schedule, schedule.c.loan_id == Loan.id)
        .outerjoin(money, money.c.loan_id == Loan.id)
        .outerjoin(owed, owed.c.loan_id == Loan.id)
        .outerjoin(ranked, and_(ranked.c.case_id == Loan.id, ranked.c.latest == 1))
        .where(in_scope)
        # Materialized: each loan's figures computed once, not once per use below (SQLite
        # would otherwise inline the category's subqueries into every CASE that reads it).
        .cte("facts").prefix_with("MATERIALIZED"))
    rate_bp = rate_bp_sql(rules, inner.c.category)
    rate = case(*[(inner.c.category == c, literal(rules.rates[c], Numeric(7, 4)))
                  for c in CATEGORIES], else_=literal(0, Numeric(7, 4)))
    provision = cast(provision_cents_sql(inner.c.balance_cents, rate_bp), Numeric(18, 2)) / 100
    columns = ["month", "loan_id", "taken_at", "as_of", "status", "product",
               "account_manager_id", "team_id", "collector_id", "disbursed_on", "principal",
               "balance", "overdue_amount", "due_in_month", "collected_in_month", "dpd",
               "bucket", "stage", "category", "provision_rate", "provision"]
    query = select(
        literal(first, Date), inner.c.loan_id, literal(clock.now()), literal(last, Date),
        inner.c.status, inner.c.product, inner.c.account_manager_id, inner.c.team_id,
        inner.c.collector_id, inner.c.disbursed_on, inner.c.principal,
        cast(inner.c.balance_cents, Numeric(18, 2)) / 100, inner.c.overdue,
        inner.c.due_in_month, inner.c.collected, inner.c.dpd,
        case((inner.c.closed, "closed"), else_=_bucket_sql(inner.c.dpd)),
        _stage_sql(inner.c.dpd), inner.c.category, rate, provision).where(true())
    # (WHERE true: SQLite would read the ON of ON CONFLICT after a bare FROM as a join's.)
    return columns, query


def take_month_end(month, actor=None, retake=False):
    """Snapshot the month of `month` (any day of it). Flushes; the caller commits (the daily
    run's hook, or the CLI). Returns the number of rows written."""
    first = month.replace(day=1)
    if retake:
        removed = db.session.execute(delete(LoanMonthSnapshot.__table__).where(
            LoanMonthSnapshot.__table__.c.month == first)).rowcount
    columns, query = _select(first, current_rules())
    table = LoanMonthSnapshot.__table__
    # A loan the month already holds is skipped by its primary key, not by NOT EXISTS in the
    # SELECT: PostgreSQL ran that as a scan of this table per loan while the INSERT was
    # filling it, reading every new row again (quadratic: 4.6 s of 11 at 20,000 loans).
    name = db.session.get_bind().dialect.name
    dialect_insert = postgresql.insert if name == "postgresql" else sqlite.insert
    if name == "postgresql":
        # Planned at a cost that starts its JIT compiler: 2.5 s of compiling to save nothing
        # on a statement that runs once a month (the rest of the transaction goes without).
        db.session.execute(text("SET LOCAL jit = off"))
    written = inserted(dialect_insert(table).from_select(columns, query)
                       .on_conflict_do_nothing(index_elements=["month", "loan_id"]),
                       table.c.loan_id)
    if written or retake:
        data = {"month": first.strftime("%Y-%m"), "rows": written}
        if retake:
            data["retaken"], data["removed"] = True, removed
        record("portfolio.snapshot_taken", actor=actor, data=data)
    return written


def has_snapshot(month):
    return db.session.scalar(select(exists().where(
        LoanMonthSnapshot.month == month.replace(day=1)))) or False


def daily_hook(as_of, actor):
    """The first daily run of a month snapshots the month before (a later run of the month
    finds it taken and writes nothing; a run skipped on the 1st is made up the next day)."""
    previous = (as_of.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    if has_snapshot(previous):
        return {}
    return {"month_end_snapshot": take_month_end(previous, actor)}


def _register():
    from cases.staging import AFTER_DAILY_RUN
    if daily_hook not in AFTER_DAILY_RUN:
        AFTER_DAILY_RUN.append(daily_hook)


_register()
