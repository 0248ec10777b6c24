"""Administrators' pages: open problems, calendar, notification outbox."""
import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from accounts.auth import roles_required
from admin.forms import ActionForm, CalendarDaysForm
from calendars.operations import CalendarInputError, enter_days, remove_day
from calendars.workdays import entered_days, non_standard_days, year_source
from cases.models import CaseProblem, Loan
from extensions import db
from notifications.models import Notification
from notifications.outbox import retry
from workflows import clock
from workflows.errors import WorkflowError

bp = Blueprint("admin", __name__, url_prefix="/admin")

YEARS = range(1900, 2201)
LIST_LIMIT = 200

CALENDAR_ERRORS = {
    "bad_dates": _l("Not a date (YYYY-MM-DD) or a range (YYYY-MM-DD..YYYY-MM-DD): "
                    "%(values)s. Nothing was saved."),
    "range_too_long": _l("A range may span at most %(max)d days: %(values)s. "
                         "Nothing was saved."),
    "no_dates": _l("Enter at least one date."),
    "too_many_days": _l("At most %(max)d days at once."),
    "note_too_long": _l("At most %(max)d characters."),
    "day_not_entered": _l("This day was not entered; only entered days can be removed."),
}
NOTIFICATION_ERRORS = {
    "notification_missing": _l("This notification does not exist."),
    "notification_not_failed": _l("Only a failed notification can be retried."),
}


def _message(table, exc):
    message = table.get(exc.code)
    if message is None:
        return _("The request could not be completed.")
    return str(message) % getattr(exc, "params", {}) if getattr(exc, "params", None) \
        else str(message)


@bp.route("/problems")
@login_required
@roles_required("admin")
def problems():
    rows = (CaseProblem.query.filter(CaseProblem.resolved_at.is_(None))
            .order_by(CaseProblem.opened_at).all())
    return render_template("admin/problems.html", problems=rows)


# ---------------------------------------------------------------- calendar

def _year_arg():
    year = request.args.get("year", type=int) or clock.today().year
    if year not in YEARS:
        abort(404)
    return year


def _render_calendar(year, form, status=200):
    days = non_standard_days(year)
    months = [(m, [d for d in days if d["day"].month == m]) for m in range(1, 13)]
    return render_template("admin/calendar.html", year=year, form=form,
                           source=year_source(year), entered_count=len(entered_days(year)),
                           months=[(m, ds) for m, ds in months if ds],
                           month_label=_month_label,
                           weekday_label=lambda day: format_date(day, "EEE")), status


def _month_label(year, month):
    return format_date(dt.date(year, month, 1), "LLLL")


@bp.route("/calendar")
@login_required
@roles_required("admin")
def calendar():
    return _render_calendar(_year_arg(), CalendarDaysForm())


@bp.route("/calendar", methods=["POST"])
@login_required
@roles_required("admin")
def calendar_add():
    form = CalendarDaysForm()
    year = _year_arg()
    if form.validate_on_submit():
        try:
            result = enter_days(form.dates.data, form.kind.data == "workday",
                                form.note.data, current_user._get_current_object())
        except CalendarInputError as exc:
            form.dates.errors = list(form.dates.errors) + [_message(CALENDAR_ERRORS, exc)]
        else:
            if form.kind.data == "workday":
                flash(_("Entered %(count)d make-up working day(s).", count=len(result.days)),
                      "success")
            else:
                flash(_("Entered %(count)d holiday(s).", count=len(result.days)), "success")
            if result.retry_error:
                flash(_("The days are saved, but the reminders waiting for this calendar "
                        "could not be rescheduled; see the open problems and the log."),
                      "error")
            return redirect(url_for("admin.calendar", year=result.years[0]))
    flash(_("Please correct the errors below."), "error")
    return _render_calendar(year, form, 400)


@bp.route("/calendar/<day>/remove", methods=["POST"])
@login_required
@roles_required("admin")
def calendar_remove(day):
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        row = remove_day(day, current_user._get_current_object())
    except WorkflowError as exc:
        flash(_message(CALENDAR_ERRORS, exc), "error")
        return redirect(url_for("admin.calendar", year=request.args.get("year", type=int)))
    flash(_("%(day)s removed: the statutory calendar decides it again.",
            day=row.day.isoformat()), "success")
    return redirect(url_for("admin.calendar", year=row.day.year))


# ---------------------------------------------------------------- notifications

def _notifications(status, order):
    query = (db.session.query(Notification, Loan.loan_no)
             .outerjoin(Loan, Loan.id == Notification.loan_id)
             .filter(Notification.status == status))
    return query.count(), query.order_by(*order).limit(LIST_LIMIT).all()


@bp.route("/notifications")
@login_required
@roles_required("admin")
def notifications():
    pending_total, pending = _notifications(
        "pending", (Notification.next_attempt_at, Notification.id))
    failed_total, failed = _notifications(
        "failed", (Notification.created_at.desc(), Notification.id.desc()))
    return render_template("admin/notifications.html", pending=pending, failed=failed,
                           pending_total=pending_total, failed_total=failed_total,
                           limit=LIST_LIMIT)


@bp.route("/notifications/<int:notification_id>/retry", methods=["POST"])
@login_required
@roles_required("admin")
def notification_retry(notification_id):
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        retry(notification_id, current_user._get_current_object())
    except WorkflowError as exc:
        flash(_message(NOTIFICATION_ERRORS, exc), "error")
    else:
        flash(_("The notification will be sent again at the next run."), "success")
    return redirect(url_for("admin.notifications"))
