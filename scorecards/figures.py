"""A person's month (the staff scorecard, issue 14 item 5): performance points by reason,
late follow-ups with their fines and waivers, tasks done, calls, contacts, promises, money
collected (scorecards.activity) and the weighted KPI score (scorecards.kpi)."""
import dataclasses
import datetime as dt
from decimal import Decimal

from sqlalchemy import case, func, select

from cases.models import LateFollowUp, PerformancePoint
from extensions import db
from scorecards import kpi
from scorecards.activity import activity
from scorecards.periods import month_bounds

POINT_REASONS = ("error_free_month", "recovered_on_time")


@dataclasses.dataclass
class MonthCard:
    user_id: int
    month: dt.date
    points: dict  # reason -> points
    late: int  # late follow-ups recorded in the month
    fined: int  # of which fined and not waived
    fines: Decimal  # their fines
    waived: int  # of which waived
    activity: dict  # scorecards.activity FIELDS
    kpi: kpi.KpiScore

    @property
    def points_total(self):
        return sum(self.points.values())


def _period(month):
    return f"{month.year:04d}-{month.month:02d}"


def month_cards(user_ids, month):
    """{user_id: MonthCard} of the month (its first day), for every id."""
    user_ids = list(user_ids)
    start, end = month_bounds(month)
    utc_start, utc_end = (start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc))
    points = {uid: {reason: 0 for reason in POINT_REASONS} for uid in user_ids}
    lates = {uid: (0, 0, Decimal("0.00"), 0) for uid in user_ids}
    if user_ids:
        for uid, reason, total in db.session.execute(
                select(PerformancePoint.user_id, PerformancePoint.reason,
                       func.sum(PerformancePoint.points))
                .where(PerformancePoint.user_id.in_(user_ids),
                       PerformancePoint.period == _period(month))
                .group_by(PerformancePoint.user_id, PerformancePoint.reason)):
            points[uid][reason] = int(total)
        fined = (LateFollowUp.fined_at.is_not(None)) & (LateFollowUp.waived_at.is_(None))
        for uid, count, n_fined, fines, n_waived in db.session.execute(
                select(LateFollowUp.user_id, func.count(LateFollowUp.id),
                       func.sum(case((fined, 1), else_=0)),
                       func.sum(case((fined, LateFollowUp.fine), else_=0)),
                       func.sum(case((LateFollowUp.waived_at.is_not(None), 1), else_=0)))
                .where(LateFollowUp.user_id.in_(user_ids), LateFollowUp.recorded_at >= utc_start,
                       LateFollowUp.recorded_at < utc_end)
                .group_by(LateFollowUp.user_id)):
            lates[uid] = (int(count), int(n_fined or 0), Decimal(fines or 0).quantize(
                Decimal("0.01")), int(n_waived or 0))
    done = activity(user_ids, start, end)
    cards = {}
    for uid in user_ids:
        late, n_fined, fines, waived = lates[uid]
        score = kpi.score(kpi.snapshot_totals(month, user_id=uid), done[uid]["tasks_done"],
                          late - waived)
        cards[uid] = MonthCard(uid, month, points[uid], late, n_fined, fines, waived,
                               done[uid], score)
    return cards


def month_card(user_id, month):
    return month_cards([user_id], month)[user_id]


def team_kpi(team_id, month, cards):
    """The team's KPI score: its snapshots, and its people's tasks and late follow-ups."""
    tasks = sum(c.activity["tasks_done"] for c in cards)
    late = sum(c.late - c.waived for c in cards)
    return kpi.score(kpi.snapshot_totals(month, team_id=team_id), tasks, late)
