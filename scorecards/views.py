"""Staff scorecards, the daily collection report and the collectors' targets (issue 14 items 5
and 6). Thin: parse, authorise (scorecards.access), call, render.

Routes: /scorecards (the leader's team), /scorecards/<username>?month=YYYY-MM,
/scorecards/collection-report?day=YYYY-MM-DD&team=ID (and .csv), /scorecards/targets/<username>.
A user named "collection-report" or "targets" would be shadowed by the fixed routes (Werkzeug
matches fixed paths first); user names are chosen by administrators."""
import io

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from accounts.auth import deny, roles_required
from accounts.models import User
from accounts.teams import LEADER_ROLE, leads, team_member_ids
from audit.operations import record
from compliance.csv_export import safe_writer
from extensions import db
from scorecards import access
from scorecards.activity import ATTRIBUTION_DAYS
from scorecards.figures import month_card, month_cards, team_kpi
from scorecards.forms import TargetForm
from scorecards.kpi import NPL_CEILING, WEIGHTS
from scorecards.periods import month_first, next_month, parse_day, previous_month
from scorecards.report import AGAINST, collectors_of, daily_report, team_named
from scorecards.targets import history, set_target
from workflows import clock
from workflows.errors import WorkflowError

bp = Blueprint("scorecards", __name__, url_prefix="/scorecards")

KPI_LABELS = {"npl": _l("Non-performing loan ratio"), "collection": _l("Collection success rate"),
              "satisfaction": _l("Customer satisfaction"), "cost": _l("Cost control"),
              "compliance": _l("Compliance")}
POINT_LABELS = {"error_free_month": _l("A month without a fined late follow-up"),
                "recovered_on_time": _l("Overdue loans recovered on time")}
TARGET_ERRORS = {"not_a_count": _l("A whole number from 0 to 100000."),
                 "not_an_amount": _l("An amount of 0 or more."),
                 "target_in_past": _l("A target starts today or later."),
                 "required": _l("This field is required.")}


def _me():
    return current_user._get_current_object()


def _month():
    try:
        return month_first(request.args.get("month"), clock.today())
    except ValueError:
        abort(400)


def _day():
    try:
        return parse_day(request.args.get("day"), clock.today())
    except ValueError:
        abort(400)


def _person(username):
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        abort(404)
    return user


def _labels():
    return {"KPI_LABELS": KPI_LABELS, "POINT_LABELS": POINT_LABELS, "WEIGHTS": WEIGHTS,
            "NPL_CEILING": NPL_CEILING, "ATTRIBUTION_DAYS": ATTRIBUTION_DAYS}


@bp.route("")
@login_required
def index():
    """The people the viewer may see, with their month's headline figures; someone who sees
    only themself goes to their own scorecard."""
    month = _month()
    teams = access.teams_visible(_me())
    if not teams and not access.sees_everyone(_me()):
        return redirect(url_for("scorecards.card", username=current_user.username,
                                month=request.args.get("month") or None))
    team_id = request.args.get("team", type=int)
    team = next((t for t in teams if t.id == team_id), None) if team_id else None
    shown = [team] if team else teams
    ids = team_member_ids([t.id for t in shown])
    if not shown:  # a general manager before any team exists: every active user
        ids = list(db.session.scalars(select(User.id).where(User.active.is_(True))))
    people = db.session.scalars(select(User).where(User.id.in_(ids), User.active.is_(True))
                                .order_by(User.display_name, User.username)).all()
    cards = month_cards([p.id for p in people], month)
    team_score = team_kpi(team.id, month, list(cards.values())) if team else None
    return render_template("scorecards/index.html", month=month, teams=teams, team=team,
                           people=people, cards=cards, team_score=team_score,
                           previous=previous_month(month), following=next_month(month),
                           **_labels())


@bp.route("/collection-report")
@login_required
def collection_report():
    context = _report_context()
    return render_template("scorecards/report.html", **context, AGAINST=AGAINST)


@bp.route("/collection-report.csv")
@login_required
def collection_report_csv():
    context = _report_context()
    out = io.StringIO()
    writer = safe_writer(out)
    writer.writerow([_("Date"), _("Team"), _("Collector"), _("Calls made"), _("Calls target"),
                     _("Contacts reached"), _("Contacts target"), _("Promises"),
                     _("Promises target"), _("Promises kept"), _("Amount collected"),
                     _("Amount target")])
    team_name = context["team"].name if context["team"] else ""
    for row in context["rows"]:
        f = row.figures
        writer.writerow([context["day"].isoformat(), team_name,
                         row.user.label if row.user else _("Team total"),
                         f["calls"], _blank(row.target_of("calls")), f["contacts"],
                         _blank(row.target_of("contacts")), f["promises_made"],
                         _blank(row.target_of("promises")), f["promises_kept"],
                         f"{f['collected']:.2f}", _blank(row.target_of("amount"))])
    record("export.collection_report", actor=_me(), data={
        "day": context["day"].isoformat(), "team_id": context["team"].id
        if context["team"] else None, "rows": len(context["rows"])})
    db.session.commit()
    name = f"collection-report-{context['day'].isoformat()}.csv"
    return Response(out.getvalue().encode("utf-8-sig"), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}"})


def _blank(value):
    return "" if value is None else (f"{value:.2f}" if not isinstance(value, int) else value)


def _report_context():
    """Whose rows the viewer sees: a team they lead (or any, as general manager) in full with
    its total; otherwise their own row only. 403 for a team they may not see."""
    me, day = _me(), _day()
    teams = access.teams_visible(me)
    team_id = request.args.get("team", type=int)
    if team_id is not None:
        team = next((t for t in teams if t.id == team_id), None)
        if team is None:
            if team_id != me.team_id:
                deny(me, "not_their_team")
            team = team_named(team_id)
    else:
        team = teams[0] if teams else team_named(me.team_id)
    full = team is not None and team in teams
    people = collectors_of(team) if full else [me]
    rows = daily_report(people, day, with_total=full)
    return {"day": day, "team": team, "teams": teams, "rows": rows, "full": full,
            "may_set_targets": full and team.leader_id == me.id,
            "previous": day.fromordinal(day.toordinal() - 1),
            "following": day.fromordinal(day.toordinal() + 1), **_labels()}


@bp.route("/targets/<username>", methods=["GET", "POST"])
@login_required
@roles_required(LEADER_ROLE)
def targets(username):
    person = _person(username)
    if not leads(_me(), person):
        deny(_me(), "not_their_leader")
    form = TargetForm()
    status = 200
    if request.method == "GET" and not form.effective_from.data:
        form.effective_from.data = clock.today()
    if form.validate_on_submit():
        try:
            set_target(person, form.effective_from.data, form.calls.data, form.contacts.data,
                       form.promises.data, form.amount.data, _me())
        except WorkflowError as exc:
            db.session.rollback()
            for name, codes in (exc.field_errors or {}).items():
                form[name].errors = list(form[name].errors) + [
                    str(TARGET_ERRORS.get(c, c)) for c in codes]
            status = 400
        else:
            flash(_("The targets of %(user)s were saved.", user=person.label), "success")
            return redirect(url_for("scorecards.collection_report", team=person.team_id))
    elif request.method == "POST":
        status = 400
    if status == 400:
        flash(_("Please correct the errors below."), "error")
    return render_template("scorecards/targets.html", person=person, form=form,
                           rows=history(person.id)), status


@bp.route("/<username>")
@login_required
def card(username):
    person = _person(username)
    if not access.may_see(_me(), person):
        deny(_me(), "not_their_scorecard")
    month = _month()
    return render_template("scorecards/card.html", person=person, month=month,
                           card=month_card(person.id, month), previous=previous_month(month),
                           following=next_month(month), **_labels())
