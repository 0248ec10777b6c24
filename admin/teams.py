"""Administrators manage teams (issue 14): create, rename, set the leader (an active
department head) and the members. The operations are accounts.teams (audited)."""
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField, SelectMultipleField, StringField, validators
from wtforms.widgets import CheckboxInput, ListWidget

from accounts.auth import roles_required
from accounts.models import Team, User, UserRole
from accounts.teams import (LEADER_ROLE, NAME_MAX, create_team, rename_team, set_leader,
                            set_members)
from extensions import db
from workflows.errors import WorkflowError

bp = Blueprint("admin_teams", __name__, url_prefix="/admin/teams")

_REQUIRED = _l("This field is required.")
ERRORS = {
    "bad_team_name": _l("A team name has 1 to 120 characters."),
    "team_exists": _l("A team of this name exists."),
    "leader_not_head": _l("The leader must be an active department head."),
}


class _MultiCheckbox(SelectMultipleField):
    """Checkboxes; the name is the one templates/_macros.html renders as a fieldset."""
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class TeamNameForm(FlaskForm):
    name = StringField(_l("Team name"), [validators.InputRequired(_REQUIRED),
                                         validators.Length(max=NAME_MAX)])


class TeamCreateForm(TeamNameForm):
    leader = SelectField(_l("Leader"), coerce=int,
                         description=_l("A department head; they join the team when they are in "
                                        "none."))


class LeaderForm(FlaskForm):
    leader = SelectField(_l("Leader"), coerce=int)


class MembersForm(FlaskForm):
    members = _MultiCheckbox(_l("Members"), coerce=int,
                             description=_l("A person is in one team at most: ticking someone "
                                            "of another team moves them here."))


@bp.before_request
@login_required
@roles_required("admin")
def _administrators_only():
    """Every page here is for administrators."""


def _me():
    return current_user._get_current_object()


def _team(team_id):
    team = db.session.get(Team, team_id)
    if team is None:
        abort(404)
    return team


def _leader_choices():
    heads = db.session.scalars(
        select(User).join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == LEADER_ROLE, User.active.is_(True)).order_by(User.username))
    return [(0, _("— nobody —"))] + [(u.id, f"{u.label} ({u.username})") for u in heads]


def _users():
    return db.session.scalars(select(User).where(User.active.is_(True))
                              .order_by(User.username)).all()


def _teams_by_id():
    return {t.id: t for t in db.session.scalars(select(Team))}


def _member_choices(team):
    teams = _teams_by_id()
    choices = []
    for user in _users():
        other = teams.get(user.team_id) if user.team_id not in (None, team.id) else None
        text = f"{user.label} ({user.username})"
        choices.append((user.id, _("%(user)s — now in %(team)s", user=text, team=other.name)
                        if other else text))
    return choices


def _show_error(exc, form, field):
    message = ERRORS.get(exc.code)
    text = str(message) if message is not None else _("The request could not be completed.")
    form[field].errors = list(form[field].errors) + [text]


@bp.route("")
def index():
    teams = db.session.scalars(select(Team).order_by(Team.name)).all()
    counts = {}
    for team_id in db.session.scalars(select(User.team_id).where(User.team_id.is_not(None))):
        counts[team_id] = counts.get(team_id, 0) + 1
    form = TeamCreateForm(formdata=None)
    form.leader.choices = _leader_choices()
    return render_template("admin/teams.html", teams=teams, counts=counts, form=form)


@bp.route("", methods=["POST"])
def create():
    form = TeamCreateForm()
    form.leader.choices = _leader_choices()
    if form.validate_on_submit():
        leader = db.session.get(User, form.leader.data) if form.leader.data else None
        try:
            team = create_team(form.name.data, leader, _me())
        except WorkflowError as exc:
            _show_error(exc, form, "leader" if exc.code == "leader_not_head" else "name")
        else:
            flash(_("Team %(name)s created.", name=team.name), "success")
            return redirect(url_for("admin_teams.show", team_id=team.id))
    flash(_("Please correct the errors below."), "error")
    teams = db.session.scalars(select(Team).order_by(Team.name)).all()
    return render_template("admin/teams.html", teams=teams, counts={}, form=form), 400


def _render_team(team, name_form=None, leader_form=None, members_form=None, status=200):
    if name_form is None:
        name_form = TeamNameForm(formdata=None, data={"name": team.name})
    if leader_form is None:
        leader_form = LeaderForm(formdata=None, data={"leader": team.leader_id or 0})
    leader_form.leader.choices = _leader_choices()
    if members_form is None:
        members_form = MembersForm(formdata=None, data={"members": [
            u.id for u in db.session.scalars(select(User).where(User.team_id == team.id))]})
    members_form.members.choices = _member_choices(team)
    members = db.session.scalars(select(User).where(User.team_id == team.id)
                                 .order_by(User.username)).all()
    return render_template("admin/teams_edit.html", team=team, members=members,
                           name_form=name_form, leader_form=leader_form,
                           members_form=members_form), status


@bp.route("/<int:team_id>")
def show(team_id):
    return _render_team(_team(team_id))


@bp.route("/<int:team_id>/name", methods=["POST"])
def rename(team_id):
    team = _team(team_id)
    form = TeamNameForm()
    if form.validate_on_submit():
        try:
            rename_team(team, form.name.data, _me())
        except WorkflowError as exc:
            db.session.rollback()
            _show_error(exc, form, "name")
        else:
            flash(_("The team was renamed."), "success")
            return redirect(url_for("admin_teams.show", team_id=team.id))
    flash(_("Please correct the errors below."), "error")
    return _render_team(_team(team_id), name_form=form, status=400)


@bp.route("/<int:team_id>/leader", methods=["POST"])
def leader(team_id):
    team = _team(team_id)
    form = LeaderForm()
    form.leader.choices = _leader_choices()
    if form.validate_on_submit():
        chosen = db.session.get(User, form.leader.data) if form.leader.data else None
        try:
            set_leader(team, chosen, _me())
        except WorkflowError as exc:
            _show_error(exc, form, "leader")
        else:
            flash(_("The leader was saved."), "success")
            return redirect(url_for("admin_teams.show", team_id=team.id))
    flash(_("Please correct the errors below."), "error")
    return _render_team(team, leader_form=form, status=400)


@bp.route("/<int:team_id>/members", methods=["POST"])
def members(team_id):
    team = _team(team_id)
    form = MembersForm()
    form.members.choices = _member_choices(team)
    if form.validate_on_submit():
        chosen = db.session.scalars(select(User).where(User.id.in_(form.members.data or [])))
        set_members(team, list(chosen), _me())
        flash(_("The members were saved."), "success")
        return redirect(url_for("admin_teams.show", team_id=team.id))
    flash(_("Please correct the errors below."), "error")
    return _render_team(team, members_form=form, status=400)
