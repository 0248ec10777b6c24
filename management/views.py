"""The managers' view (/manage): approvals first, the team's open tasks, reassignment,
delinquency and workload counts, late follow-ups. Thin: parse, authorise, call, render.

Also the command `flask --app app tasks overdue` (this blueprint's CLI group)."""
import math

import click
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from accounts.auth import roles_required
from accounts.models import User, utc
from accounts.teams import check_may_assign, managed_user_ids, teams_led_by
from cases.models import STAGE_LABELS, LateFollowUp, Loan
from cli import parse_as_of
from extensions import db
from management import queries
from management.forms import ReassignForm, WaiveForm
from management.points import period_of, points_by_user
from management.sla import LEADER_ROLE, check_overdue_tasks, impose_fine, waive_late_followup
from web import translate_error
from workflows import clock
from workflows.errors import WorkflowError
from workflows.inbox import is_overdue, task_loan_no
from workflows.tasks import check_can_take, get_task, reassign_task

bp = Blueprint("management", __name__, url_prefix="/manage", cli_group="tasks")

PER_PAGE = 50
ERRORS = {
    "wrong_role": _l("This user does not hold the role of this task."),
    "assigned_other": _l("This task is assigned to another user by the process."),
    "four_eyes": _l("Four eyes: this user completed an earlier step of this case and may not "
                    "take this one."),
    "inactive_user": _l("This user is not active."),
    "same_holder": _l("This user already holds the task."),
    "reason_required": _l("A reason is required."),
    "already_waived": _l("This late follow-up was already waived."),
    "late_followup_missing": _l("This late follow-up does not exist."),
    "already_decided": _l("This late follow-up was already decided."),
    "own_followup": _l("A leader does not decide on their own late follow-up."),
    "outside_team": _l("This user is not in your team: a team leader gives tasks only to the "
                       "people of their team."),
}


def _error(exc):
    message = ERRORS.get(exc.code)
    return str(message) if message is not None else translate_error(exc)


def _local(url):
    """A same-site path to go back to, or None (never an open redirect)."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return None


def _me():
    return current_user._get_current_object()


def age(row):
    """How long a task has been open, as days and hours."""
    delta = clock.now() - utc(row.created_at)
    days, hours = delta.days, delta.seconds // 3600
    if days:
        return _("%(days)d d %(hours)d h", days=days, hours=hours)
    return _("%(hours)d h", hours=hours)


def holder_of(row):
    """(user, how): the claimant, else the candidate user, else (None, None)."""
    if row.claimed_by is not None:
        return row.claimed_by, "claimed"
    if row.candidate_user is not None:
        return row.candidate_user, "assigned"
    return None, None


def _helpers():
    return {"age": age, "holder_of": holder_of, "is_overdue": is_overdue,
            "STAGE_LABELS": STAGE_LABELS, "can_waive": LEADER_ROLE in current_user.roles}


@bp.route("")
@login_required
@roles_required(*queries.MANAGER_ROLES)
def index():
    role = request.args.get("role") or None
    user_id = request.args.get("user", type=int) or None
    page = max(1, request.args.get("page", 1, type=int))
    # "My team": a dept_head who leads a team sees its people's tasks (accounts.teams).
    scope = managed_user_ids(current_user)
    rows, total = queries.team_tasks(role, user_id, page, PER_PAGE, user_ids=scope)
    points = points_by_user(period_of(clock.today()))
    return render_template(
        "management/index.html", approvals=queries.approvals_for(current_user),
        rows=rows, total=total, page=page, pages=max(1, math.ceil(total / PER_PAGE)),
        role=role, user_id=user_id, users=queries.active_users(user_ids=scope),
        my_teams=teams_led_by(current_user) if scope is not None else [],
        stage_counts=queries.stage_counts(), task_counts=queries.open_task_counts(),
        late_totals=queries.late_followup_totals(user_ids=scope),
        late_rows=queries.late_followups(outstanding_only=True, limit=PER_PAGE,
                                         user_ids=scope),
        points=[p for p in points if scope is None or p[0].id in scope], **_helpers())


@bp.route("/late-followups")
@login_required
@roles_required(*queries.MANAGER_ROLES)
def late_followups():
    user_id = request.args.get("user", type=int) or None
    user = db.session.get(User, user_id) if user_id else None
    scope = managed_user_ids(current_user)
    return render_template("management/late_followups.html", user=user,
                           late_rows=queries.late_followups(user_id=user_id, user_ids=scope),
                           late_totals=queries.late_followup_totals(user_ids=scope),
                           **_helpers())


# ---------------------------------------------------------------- reassignment

def _eligible(row):
    """Active holders of the task's role who may take it, except its current holder; for a
    team leader, only the people of their team."""
    eligible = []
    for user in queries.active_users(row.lane, user_ids=managed_user_ids(current_user)):
        if user.id == row.claimed_by_id:
            continue
        try:
            check_can_take(row, user)
        except WorkflowError:
            continue
        eligible.append(user)
    return eligible


def _render_reassign(row, form, status=200):
    return render_template("management/reassign.html", task=row, form=form,
                           loan_no=task_loan_no(row), **_helpers()), status


@bp.route("/tasks/<int:task_id>/reassign", methods=["GET", "POST"])
@login_required
@roles_required(*queries.MANAGER_ROLES)
def reassign(task_id):
    row = get_task(task_id)
    if row.state != "ready":
        flash(_("This task is no longer open."), "error")
        return redirect(url_for("management.index"))
    form = ReassignForm()
    form.user.choices = [(u.id, f"{u.label} ({u.username})") for u in _eligible(row)]
    if request.method == "GET":
        return _render_reassign(row, form)
    outsider = db.session.get(User, form.user.data) if form.user.data else None
    if outsider is not None and form.user.data not in dict(form.user.choices):
        try:  # someone outside a leader's team: say so, not just "not a valid choice"
            check_may_assign(_me(), outsider)
        except WorkflowError as exc:
            flash(_error(exc), "error")
            return _render_reassign(row, form, 403)
    if not form.validate_on_submit():
        flash(_("Please correct the errors below."), "error")
        return _render_reassign(row, form, 400)
    new_user = db.session.get(User, form.user.data)
    try:
        check_may_assign(_me(), new_user)
        reassign_task(row.id, new_user, form.reason.data, _me())
    except WorkflowError as exc:
        flash(_error(exc), "error")
        return _render_reassign(get_task(task_id), form, 400)
    flash(_("The task was given to %(user)s.", user=new_user.label), "success")
    return redirect(url_for("management.index"))


# ---------------------------------------------------------------- late follow-ups

@bp.route("/late-followups/<int:late_id>/waive", methods=["GET", "POST"])
@login_required
@roles_required(LEADER_ROLE)
def waive(late_id):
    late = db.session.get(LateFollowUp, late_id)
    if late is None:
        abort(404)
    form = WaiveForm()
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                waive_late_followup(late.id, form.reason.data, _me())
            except WorkflowError as exc:
                flash(_error(exc), "error")
            else:
                flash(_("The late follow-up was waived."), "success")
                return redirect(_local(request.args.get("next")) or url_for("management.index"))
        else:
            flash(_("Please correct the errors below."), "error")
        status = 400
    else:
        status = 200
    late = db.session.get(LateFollowUp, late_id)
    task = get_task(late.task_id)
    loan_no = db.session.scalar(db.select(Loan.loan_no).where(Loan.id == late.loan_id)) \
        if late.loan_id else None
    return render_template("management/waive.html", late=late, task=task, loan_no=loan_no,
                           user=db.session.get(User, late.user_id) if late.user_id else None,
                           form=form), status


@bp.route("/late-followups/<int:late_id>/fine", methods=["POST"])
@login_required
@roles_required(LEADER_ROLE)
def fine(late_id):
    form = WaiveForm()
    if not form.validate_on_submit():
        flash(_("Please give a reason."), "error")
    else:
        try:
            impose_fine(late_id, form.reason.data, _me())
        except WorkflowError as exc:
            flash(_error(exc), "error")
        else:
            flash(_("The fine was recorded."), "success")
    return redirect(_local(request.args.get("next")) or url_for("management.index"))


# ---------------------------------------------------------------- command line

@bp.cli.command("overdue")
@click.option("--as-of", "as_of", help="The moment to treat as now (ISO 8601; Beijing time "
              "unless it has an offset).")
def overdue_command(as_of):
    """Notify the holders and leaders of open tasks newly past their due date."""
    with clock.frozen_at(parse_as_of(as_of) or clock.now()):
        count = check_overdue_tasks()
    click.echo(f"{count} overdue task(s) notified")
