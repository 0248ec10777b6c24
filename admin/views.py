"""Administrators' pages: open problems, calendar, notification outbox, penalty interest."""
import datetime as dt
from decimal import Decimal

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from accounts.auth import roles_required
from accounts.models import User
from admin.forms import ActionForm, CalendarDaysForm, PenaltyTermsForm, RateCapForm
from calendars.operations import (CalendarInputError, complete_year, enter_days, remove_day,
                                  reopen_year)
from calendars.workdays import entered_days, non_standard_days, year_source
from cases.models import PRODUCT_LABELS, CaseProblem, Loan, Product
from extensions import db
from ledger.models import LegalRateCap
from ledger.operations import enter_rate_cap, set_penalty_terms
from notifications.models import Notification
from notifications.outbox import retry
from workflows import clock
from workflows.errors import InvalidData, WorkflowError

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
    "year_from_package": _l("%(year)s comes from the statutory calendar package."),
    "year_complete": _l("%(year)s is already complete."),
    "year_empty": _l("Enter the holidays and make-up working days of %(year)s first."),
    "year_not_complete": _l("This year was not declared complete."),
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


@bp.route("/calendar/<int:year>/complete", methods=["POST"])
@login_required
@roles_required("admin")
def calendar_complete(year):
    form = ActionForm()
    if not form.validate_on_submit() or year not in YEARS:
        abort(400)
    try:
        result = complete_year(year, "", current_user._get_current_object())
    except WorkflowError as exc:
        flash(_message(CALENDAR_ERRORS, exc), "error")
    else:
        flash(_("%(year)s is complete: its working days are counted from now on.", year=year),
              "success")
        if result.retry_error:
            flash(_("The reminders waiting for this calendar could not be rescheduled; see "
                    "the open problems and the log."), "error")
    return redirect(url_for("admin.calendar", year=year))


@bp.route("/calendar/<int:year>/reopen", methods=["POST"])
@login_required
@roles_required("admin")
def calendar_reopen(year):
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        reopen_year(year, current_user._get_current_object())
    except WorkflowError as exc:
        flash(_message(CALENDAR_ERRORS, exc), "error")
    else:
        flash(_("%(year)s reopened: its working days are not counted until it is complete "
                "again.", year=year), "success")
    return redirect(url_for("admin.calendar", year=year))


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


# ---------------------------------------------------------------- penalty interest
# Rates are stored as fractions (0.5, 0.03) and always shown and entered as percentages.

def _plain(number):
    """Decimal('50.0000') → '50', Decimal('4.50') → '4.5'."""
    return f"{Decimal(number).normalize():f}"


def _percent(fraction, places=2):
    """0.03 → '3.00%'; more places only when the value has them (0.034567 → '3.4567%')."""
    value = Decimal(fraction) * 100
    shown = value.quantize(Decimal(1).scaleb(-places))
    return f"{shown:f}%" if shown == value else f"{_plain(value)}%"


def _product_label(code):
    label = PRODUCT_LABELS.get(code)
    return str(label) if label is not None else code


def _terms_form(product):
    return PenaltyTermsForm(formdata=None, prefix=product.code, data={
        "markup": Decimal(_plain(product.penalty_markup * 100)),
        "compound": product.compound_interest})


def _render_penalty(posted_terms=None, cap_form=None, status=200):
    """The page; `posted_terms` is (code, form) of a product form that failed."""
    order = list(PRODUCT_LABELS)
    products = sorted(Product.query.all(), key=lambda p: (
        order.index(p.code) if p.code in order else len(order), p.code))
    rows = []
    for product in products:
        failed = posted_terms is not None and posted_terms[0] == product.code
        rows.append({"product": product, "label": _product_label(product.code),
                     "markup": f"+{_plain(product.penalty_markup * 100)}%",
                     "form": posted_terms[1] if failed else _terms_form(product),
                     "failed": failed})
    caps = LegalRateCap.query.order_by(LegalRateCap.effective_on.desc()).all()
    today = clock.today()
    in_force = next((c.effective_on for c in caps if c.effective_on <= today), None)
    ids = {c.entered_by_id for c in caps if c.entered_by_id is not None}
    users = {u.id: u for u in User.query.filter(User.id.in_(ids))} if ids else {}
    cap_rows = [{"cap": c, "lpr": _percent(c.lpr_one_year), "ceiling": _percent(c.annual_cap),
                 "multiple": f"{_plain(c.multiple)}×", "entered_by": users.get(c.entered_by_id),
                 "status": ("in_force" if c.effective_on == in_force else
                            "upcoming" if c.effective_on > today else "superseded")}
                for c in caps]
    current = next((r for r in cap_rows if r["status"] == "in_force"), None)
    return render_template("admin/penalty.html", products=rows, caps=cap_rows, current=current,
                           cap_form=cap_form or RateCapForm(formdata=None)), status


def _operation_errors(form, exc, fields):
    """The operation's field errors (`fields`: its names → the form's), translated, next to
    the fields; any other refusal as a message above the form."""
    shown = False
    for name, messages in (exc.field_errors or {}).items():
        target = fields.get(name)
        if target is not None:
            form[target].errors = list(form[target].errors) + [_(m) for m in messages]
            shown = True
    if not shown:
        flash(_("The request could not be completed."), "error")


@bp.route("/penalty")
@login_required
@roles_required("admin")
def penalty():
    return _render_penalty()


@bp.route("/penalty/products/<code>", methods=["POST"])
@login_required
@roles_required("admin")
def penalty_product(code):
    if db.session.get(Product, code) is None:
        abort(404)
    form = PenaltyTermsForm(prefix=code)
    if form.validate_on_submit():
        try:
            product = set_penalty_terms(code, form.markup.data / 100, form.compound.data,
                                        current_user._get_current_object())
        except InvalidData as exc:
            _operation_errors(form, exc, {"penalty_markup": "markup"})
        else:
            flash(_("Penalty interest of %(product)s saved: contract rate %(markup)s, "
                    "compound interest %(compound)s.", product=_product_label(code),
                    markup=f"+{_plain(product.penalty_markup * 100)}%",
                    compound=_("yes") if product.compound_interest else _("no")), "success")
            return redirect(url_for("admin.penalty", _anchor="products"))
    flash(_("Please correct the errors below."), "error")
    return _render_penalty(posted_terms=(code, form), status=400)


@bp.route("/penalty/caps", methods=["POST"])
@login_required
@roles_required("admin")
def penalty_cap():
    form = RateCapForm()
    if form.validate_on_submit():
        replaced = db.session.get(LegalRateCap, form.effective_on.data) is not None
        try:
            row = enter_rate_cap(form.effective_on.data, form.lpr.data / 100,
                                 form.multiple.data, current_user._get_current_object())
        except InvalidData as exc:
            _operation_errors(form, exc, {"lpr_one_year": "lpr", "multiple": "multiple"})
        else:
            values = {"day": row.effective_on.isoformat(), "cap": _percent(row.annual_cap)}
            if replaced:
                flash(_("The legal ceiling from %(day)s was replaced: %(cap)s a year.",
                        **values), "success")
            else:
                flash(_("Legal ceiling from %(day)s entered: %(cap)s a year.", **values),
                      "success")
            return redirect(url_for("admin.penalty", _anchor="caps"))
    flash(_("Please correct the errors below."), "error")
    return _render_penalty(cap_form=form, status=400)
