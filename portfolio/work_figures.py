"""The dashboard's figures of the work rather than the loans: late follow-ups per month and the
scoring model's back-test."""
import datetime as dt
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select

from accounts.models import User
from cases.models import LateFollowUp, Loan
from extensions import db
from portfolio.dashboard import Table, month_add, months_ending
from portfolio.figures import RATE_PLACES, chart, money, month_label, series
from workflows.clock import BEIJING


def _beijing_start(month):
    """The month's first moment in Beijing, as UTC (SQLite compares the stored UTC text)."""
    return dt.datetime.combine(month, dt.time(), BEIJING).astimezone(dt.timezone.utc)


def late_followups(filters):
    """Per month (Beijing time, the twelve ending at the chosen one): late follow-ups recorded
    and not waived, how many were fined, and the fines. The team filter reads the team of the
    person who was late; product and account manager, the loan's."""
    rows = []
    if filters.month:
        months = months_ending(filters.month)
        start, end = _beijing_start(months[0]), _beijing_start(month_add(months[-1], 1))
        query = (select(LateFollowUp.recorded_at, LateFollowUp.fined_at, LateFollowUp.fine)
                 .where(LateFollowUp.recorded_at >= start, LateFollowUp.recorded_at < end,
                        LateFollowUp.waived_at.is_(None)))
        if filters.team_ids is not None:
            query = query.join(User, User.id == LateFollowUp.user_id).where(
                User.team_id.in_(filters.team_ids))
        if filters.product or filters.manager_id:
            query = query.join(Loan, Loan.id == LateFollowUp.loan_id)
            if filters.product:
                query = query.where(Loan.product == filters.product)
            if filters.manager_id:
                query = query.where(Loan.account_manager_id == filters.manager_id)
        # Few rows a month: grouped here by the Beijing month, the same on both databases.
        found = {month: [0, 0, money(0)] for month in months}
        for recorded_at, fined_at, fine in db.session.execute(query):
            if recorded_at.tzinfo is None:  # SQLite hands back naive UTC
                recorded_at = recorded_at.replace(tzinfo=dt.timezone.utc)
            day = recorded_at.astimezone(BEIJING).date().replace(day=1)
            found[day][0] += 1
            found[day][1] += 1 if fined_at is not None else 0
            found[day][2] += money(fine)
        rows = [[month_label(m)] + found[m] for m in months]
    return Table(
        "late", _("Late follow-ups per month"),
        [(_("Month"), "text"), (_("Late follow-ups (not waived)"), "count"),
         (_("Fined"), "count"), (_("Fines"), "money")], rows,
        chart("bar", _("Bar chart of the late follow-ups and fines per month"),
              [row[0] for row in rows],
              series(_("Late follow-ups (not waived)"), [row[1] for row in rows], "count"),
              series(_("Fines"), [row[3] for row in rows], "money")),
        note=_("Tasks completed after their due date, by the month they were recorded (Beijing "
               "time), without the waived ones; fines as decided by the department head."))


def _rate(value):
    return None if value is None else Decimal(str(value)).quantize(RATE_PLACES)


def backtest(filters):
    """The scoring model's back-test per month, from scoring.backtest (None: no scores kept
    for that month). Over the whole portfolio: the model ranks every overdue loan."""
    rows = []
    if filters.month:
        try:
            from scoring.backtest import backtest as run  # the scoring package may be absent
        except ImportError:
            run = None
        for month in months_ending(filters.month) if run else []:
            found = run(month)
            if found:
                rows.append([month_label(found["month"]), found["loans"], found["payers"],
                             _rate(found["auc"]), _rate(found["capture_top_20"]),
                             money(found["expected"]), money(found["actual"])])
    return Table(
        "backtest", _("Scoring model back-test"),
        [(_("Month"), "text"), (_("Loans scored"), "count"), (_("Loans that paid"), "count"),
         (_("AUC"), "number"), (_("Share collected from the top 20%"), "rate"),
         (_("Expected recovery"), "money"), (_("Collected"), "money")], rows,
        chart("bar", _("Bar chart of the expected recovery beside what was collected per month"),
              [row[0] for row in rows],
              series(_("Expected recovery"), [row[5] for row in rows], "money"),
              series(_("Collected"), [row[6] for row in rows], "money")),
        note=_("How well the scores kept at the start of each month ranked that month's "
               "payments, over the whole portfolio: AUC is the chance that a loan that paid "
               "was scored above one that did not (0.5 is chance)."))
