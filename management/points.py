"""Performance points (DOMAIN.md §6, [000 §七]): +3 for a month of duties done without error,
+3 for each overdue loan collected on time after the leader's instruction."""
import datetime as dt

from sqlalchemy import func, select

from accounts.models import User
from audit.operations import record
from cases.models import LateFollowUp, PerformancePoint
from extensions import db
from workflows import clock
from workflows.clock import BEIJING
from workflows.models import HumanTask

POINTS = 3
# "On time": cleared before the loan reached legal collection (over 90 days past due).
ON_TIME_DPD = 90


def period_of(day):
    return f"{day.year:04d}-{day.month:02d}"


def _month(period):
    first = dt.date(int(period[:4]), int(period[5:7]), 1)
    after = (first + dt.timedelta(days=32)).replace(day=1)
    return first, after


def _award(user_id, reason, period, loan_id=None):
    exists = db.session.scalar(select(PerformancePoint.id).where(
        PerformancePoint.user_id == user_id, PerformancePoint.reason == reason,
        PerformancePoint.period == period,
        PerformancePoint.loan_id.is_(None) if loan_id is None
        else PerformancePoint.loan_id == loan_id))
    if exists:
        return None
    point = PerformancePoint(user_id=user_id, reason=reason, period=period, loan_id=loan_id,
                             points=POINTS, awarded_at=clock.now())
    db.session.add(point)
    record("points.awarded", case_id=loan_id, data={
        "user_id": user_id, "reason": reason, "period": period, "points": POINTS})
    return point


def award_error_free_month(period):
    """+3 to every active user who completed a task in the month (YYYY-MM) and was not fined
    for a late follow-up recorded in it. Flushes; returns how many were awarded."""
    first, after = _month(period)
    start = dt.datetime.combine(first, dt.time(), BEIJING)
    end = dt.datetime.combine(after, dt.time(), BEIJING)
    worked = select(HumanTask.completed_by_id).where(
        HumanTask.state == "completed", HumanTask.completed_at >= start,
        HumanTask.completed_at < end, HumanTask.completed_by_id.is_not(None)).distinct()
    fined = select(LateFollowUp.user_id).where(
        LateFollowUp.fined_at.is_not(None), LateFollowUp.waived_at.is_(None),
        LateFollowUp.recorded_at >= start, LateFollowUp.recorded_at < end)
    users = db.session.scalars(select(User.id).where(
        User.id.in_(worked), User.id.not_in(fined), User.active.is_(True))).all()
    awarded = [u for u in users if _award(u, "error_free_month", period)]
    db.session.flush()
    return len(awarded)


def award_recovery(loan_id, username, dpd, on):
    """+3 to the collector who brought an overdue loan back after the leader's instruction,
    when it was cleared on time (DPD at most ON_TIME_DPD). Flushes; the point or None."""
    if dpd > ON_TIME_DPD or not username:
        return None
    user_id = db.session.scalar(select(User.id).where(User.username == username))
    if user_id is None:
        return None
    point = _award(user_id, "recovered_on_time", period_of(on), loan_id)
    db.session.flush()
    return point


def points_by_user(period):
    """[(user, points)] of the month, most first."""
    rows = db.session.execute(
        select(User, func.sum(PerformancePoint.points))
        .join(PerformancePoint, PerformancePoint.user_id == User.id)
        .where(PerformancePoint.period == period)
        .group_by(User.id).order_by(func.sum(PerformancePoint.points).desc(), User.id)).all()
    return [(user, int(total)) for user, total in rows]
