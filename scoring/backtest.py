"""The back-test: how well the scores kept at the start of a month (MonthScore) ranked the
payments made in that month.

- auc: the chance that a loan that paid something in the month had a higher score than one
  that paid nothing (ties count half); None when everyone or no one paid.
- capture_top_20: the share of the month's collected amount that came from the top 20 % of
  the loans as the queue ranked them (expected recovery, highest first, ties by loan id);
  None when nothing was collected.
- expected / actual: the expected recoveries summed, against what was collected.

What was collected is the month-end snapshot's `collected_in_month` when the month has
snapshots, else the repayments (not reversed) made in the month, Beijing time.
"""
import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select

from extensions import db
from ledger.models import Repayment
from portfolio.models import LoanMonthSnapshot
from scoring.models import MonthScore
from workflows.clock import BEIJING

ZERO = Decimal("0.00")
TOP_SHARE = Decimal("0.2")


def month_start(day):
    return day.replace(day=1)


def next_month(month):
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def collected_in(month, loan_ids=None):
    """{loan id: amount collected in the month}: snapshots, else repayments."""
    month = month_start(month)
    has_snapshots = db.session.scalar(
        select(LoanMonthSnapshot.loan_id).where(LoanMonthSnapshot.month == month).limit(1))
    if has_snapshots is not None:
        query = (select(LoanMonthSnapshot.loan_id, LoanMonthSnapshot.collected_in_month)
                 .where(LoanMonthSnapshot.month == month))
    else:
        # In UTC: SQLite compares the stored text.
        start, end = (dt.datetime.combine(day, dt.time(), BEIJING).astimezone(dt.timezone.utc)
                      for day in (month, next_month(month)))
        query = (select(Repayment.loan_id, func.sum(Repayment.amount))
                 .where(Repayment.paid_at >= start, Repayment.paid_at < end,
                        Repayment.reversed_at.is_(None))
                 .group_by(Repayment.loan_id))
    found = {loan_id: Decimal(amount or 0) for loan_id, amount in db.session.execute(query)}
    if loan_ids is not None:
        found = {k: v for k, v in found.items() if k in loan_ids}
    return found


def auc(scored):
    """Mann-Whitney AUC of [(score, paid: bool)]; None without both outcomes. Scores are
    ranked with ties sharing their mean rank, so the figure never depends on row order."""
    ordered = sorted(scored, key=lambda pair: pair[0])
    payers = sum(1 for _s, paid in ordered if paid)
    others = len(ordered) - payers
    if not payers or not others:
        return None
    rank_sum, at = Decimal(0), 0
    while at < len(ordered):
        end = at
        while end + 1 < len(ordered) and ordered[end + 1][0] == ordered[at][0]:
            end += 1
        mean_rank = Decimal(at + end + 2) / 2  # ranks are 1-based
        rank_sum += mean_rank * sum(1 for _s, paid in ordered[at:end + 1] if paid)
        at = end + 1
    u = rank_sum - Decimal(payers * (payers + 1)) / 2
    return float(u / (payers * others))


def capture_top(rows, paid, share=TOP_SHARE):
    """Share of `paid` (loan id -> amount) collected from the first `share` of rows, rows being
    (loan id, expected recovery) ranked highest first, ties by loan id."""
    total = sum(paid.values(), ZERO)
    if not rows or total <= 0:
        return None
    ranked = sorted(rows, key=lambda row: (-row[1], row[0]))
    top = max(1, -(-len(ranked) * share // 1))  # ceil, at least one loan
    top_amount = sum((paid.get(loan_id, ZERO) for loan_id, _e in ranked[:int(top)]), ZERO)
    return float(top_amount / total)


def backtest(month):
    """The back-test of the scores kept for `month` (any day of it); None without scores."""
    month = month_start(month)
    rows = db.session.execute(
        select(MonthScore.loan_id, MonthScore.score, MonthScore.expected_recovery)
        .where(MonthScore.month == month).order_by(MonthScore.loan_id)).all()
    if not rows:
        return None
    ids = {row.loan_id for row in rows}
    paid = collected_in(month, ids)
    paid = {k: v for k, v in paid.items() if v > 0}
    return {
        "month": month,
        "loans": len(rows),
        "payers": len(paid),
        "auc": auc([(row.score, row.loan_id in paid) for row in rows]),
        "capture_top_20": capture_top([(r.loan_id, r.expected_recovery) for r in rows], paid),
        "expected": sum((Decimal(r.expected_recovery) for r in rows), ZERO),
        "actual": sum(paid.values(), ZERO),
    }
