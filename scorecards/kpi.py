"""The training deck's weighted KPI score (DOMAIN.md §6, [004]) over the parts that have data.

Each part is scored 0–100:
- NPL ratio (30%): the balance of the person's (or team's) loans classified substandard,
  doubtful or loss over their whole balance, from the month-end snapshots of the month
  (a person's loans: those they collected or manage). 0% scores 100, NPL_CEILING (5%, the
  regulators' red line for banks) or more scores 0, linearly between.
- Collection success rate (20%): money collected in the month over what fell due in it, from
  the same snapshots, capped at 100%; scores the rate × 100.
- Compliance (15%): the share of the month's tasks done that were not late follow-ups (waived
  ones are not counted against the person), × 100.
- Customer satisfaction (20%) and cost control (15%): no data is recorded yet.
The score is the weighted mean over the parts with data: Σ weight × part / Σ those weights, so
it stays on the 0–100 scale; the page says which weights were left out.
"""
import dataclasses
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import case, func, or_, select

from extensions import db
from portfolio.models import LoanMonthSnapshot

WEIGHTS = {"npl": 30, "collection": 20, "satisfaction": 20, "cost": 15, "compliance": 15}
NPL_CATEGORIES = ("substandard", "doubtful", "loss")
NPL_CEILING = Decimal("0.05")
HUNDRED = Decimal(100)
ONE_PLACE = Decimal("0.1")


@dataclasses.dataclass
class Part:
    key: str
    weight: int
    value: Decimal | None = None  # the measure: a ratio (0.0123) or None without data
    score: Decimal | None = None  # 0–100, or None without data


@dataclasses.dataclass
class KpiScore:
    parts: list
    score: Decimal | None  # None: no part has data

    @property
    def weight_with_data(self):
        return sum(p.weight for p in self.parts if p.score is not None)

    @property
    def missing(self):
        return [p.key for p in self.parts if p.score is None]


def _round(value):
    return value.quantize(ONE_PLACE, rounding=ROUND_HALF_UP)


def snapshot_totals(month, user_id=None, team_id=None):
    """(balance, NPL balance, due in month, collected in month) of the month's snapshots of
    the team's loans, or of the person's (those they collected or manage)."""
    npl = case((LoanMonthSnapshot.category.in_(NPL_CATEGORIES), LoanMonthSnapshot.balance),
               else_=0)
    query = select(func.sum(LoanMonthSnapshot.balance), func.sum(npl),
                   func.sum(LoanMonthSnapshot.due_in_month),
                   func.sum(LoanMonthSnapshot.collected_in_month)
                   ).where(LoanMonthSnapshot.month == month)
    if team_id is not None:
        query = query.where(LoanMonthSnapshot.team_id == team_id)
    else:
        query = query.where(or_(LoanMonthSnapshot.collector_id == user_id,
                                LoanMonthSnapshot.account_manager_id == user_id))
    return tuple(Decimal(v or 0) for v in db.session.execute(query).one())


def score(totals, tasks_done, late_counted):
    """The KpiScore from snapshot totals (snapshot_totals) and the month's tasks done and
    late follow-ups not waived."""
    balance, npl_balance, due, collected = totals
    parts = {key: Part(key, weight) for key, weight in WEIGHTS.items()}
    if balance > 0:
        ratio = npl_balance / balance
        parts["npl"].value = ratio
        parts["npl"].score = _round(max(Decimal(0), 1 - ratio / NPL_CEILING) * HUNDRED)
    if due > 0:
        rate = collected / due
        parts["collection"].value = rate
        parts["collection"].score = _round(min(Decimal(1), rate) * HUNDRED)
    if tasks_done > 0 or late_counted > 0:
        on_time = max(0, tasks_done - late_counted)
        share = Decimal(on_time) / Decimal(max(tasks_done, late_counted))
        parts["compliance"].value = share
        parts["compliance"].score = _round(share * HUNDRED)
    with_data = [p for p in parts.values() if p.score is not None]
    total = None
    if with_data:
        total = _round(sum(p.weight * p.score for p in with_data)
                       / sum(p.weight for p in with_data))
    return KpiScore(list(parts.values()), total)
