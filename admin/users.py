"""Administrators manage users: list, create, roles, deactivate and reactivate, unlock, reset a
password, revoke tokens; granting the admin role is a request a second administrator approves."""
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from accounts.auth import roles_required
from accounts.forms import ResetPasswordForm, UserCreateForm, UserEditForm
from accounts.models import AdminGrant, ApiToken, User
from accounts.operations import (AccountError, activate_user, approve_admin_grant, create_user,
                                 deactivate_user, pending_grant, reject_admin_grant,
                                 request_admin_grant, reset_password, revoke_token, tokens_of,
                                 unlock_user, update_user)
from accounts.views import account_error
from extensions import db

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")


@bp.before_request
@login_required
@roles_required("admin")
def _administrators_only():
    """Every page here is for administrators."""


def _me():
    return current_user._get_current_object()


def _user(user_id):
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.route("")
def index():
    users = User.query.order_by(User.username).all()
    pending = {g.user_id: g for g in AdminGrant.query.filter_by(status="pending")}
    return render_template("admin/users.html", users=users, pending=pending)


@bp.route("/new", methods=["GET", "POST"])
def new():
    form = UserCreateForm()
    status = 200
    if form.is_submitted():
        status = 400
    if form.validate_on_submit():
        roles = set(form.roles.data or [])
        try:
            user = create_user(form.username.data.strip(), form.new_password.data,
                               roles - {"admin"}, form.display_name.data, actor=_me(),
                               four_eyes=True)
        except AccountError as exc:
            target = {"user_exists": form.username, "bad_username": form.username}.get(
                exc.code, form.new_password if exc.code.startswith("password") else form.roles)
            target.errors = [account_error(exc)]
        else:
            flash(_("User %(name)s created.", name=user.username), "info")
            if "admin" in roles:
                _request_admin(user)
            return redirect(url_for("admin_users.show", user_id=user.id))
    return render_template("admin/users_new.html", form=form), status


def _request_admin(user):
    try:
        request_admin_grant(user, _me())
    except AccountError as exc:
        flash(account_error(exc), "error")
    else:
        flash(_("The administrator role for %(name)s awaits the approval of a second "
                "administrator.", name=user.username), "info")


def _render_user(user, edit_form=None, password_form=None, status=200):
    if edit_form is None:
        edit_form = UserEditForm(formdata=None, display_name=user.display_name,
                                 roles=sorted(user.roles))
    return render_template(
        "admin/users_edit.html", user=user, edit_form=edit_form,
        password_form=password_form or ResetPasswordForm(formdata=None),
        grant=pending_grant(user), tokens=tokens_of(user),
        grants=AdminGrant.query.filter_by(user_id=user.id).order_by(AdminGrant.id.desc())
        .limit(10).all()), status


@bp.route("/<int:user_id>")
def show(user_id):
    return _render_user(_user(user_id))


@bp.route("/<int:user_id>/edit", methods=["POST"])
def edit(user_id):
    user = _user(user_id)
    form = UserEditForm()
    if not form.validate_on_submit():
        return _render_user(user, edit_form=form, status=400)
    try:
        grant = update_user(user, form.display_name.data, form.roles.data or [], actor=_me())
    except AccountError as exc:
        form.roles.errors = [account_error(exc)]
        return _render_user(user, edit_form=form, status=400)
    flash(_("Saved."), "info")
    if grant is not None:
        flash(_("The administrator role for %(name)s awaits the approval of a second "
                "administrator.", name=user.username), "info")
    return redirect(url_for("admin_users.show", user_id=user.id))


def _act(user, operation, done_message):
    try:
        operation(user, actor=_me())
    except AccountError as exc:
        flash(account_error(exc), "error")
    else:
        flash(done_message, "info")
    return redirect(url_for("admin_users.show", user_id=user.id))


@bp.route("/<int:user_id>/deactivate", methods=["POST"])
def deactivate(user_id):
    return _act(_user(user_id), deactivate_user,
                _("Deactivated: the user is logged out everywhere and can no longer log in "
                  "or use API tokens."))


@bp.route("/<int:user_id>/activate", methods=["POST"])
def activate(user_id):
    return _act(_user(user_id), activate_user, _("Reactivated."))


@bp.route("/<int:user_id>/unlock", methods=["POST"])
def unlock(user_id):
    return _act(_user(user_id), unlock_user, _("Unlocked."))


@bp.route("/<int:user_id>/password", methods=["POST"])
def password(user_id):
    user = _user(user_id)
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        return _render_user(user, password_form=form, status=400)
    try:
        reset_password(user, form.new_password.data, actor=_me())
    except AccountError as exc:
        form.new_password.errors = [account_error(exc)]
        return _render_user(user, password_form=form, status=400)
    flash(_("Password reset; every session of %(name)s has been logged out.",
            name=user.username), "info")
    return redirect(url_for("admin_users.show", user_id=user.id))


@bp.route("/<int:user_id>/admin-grant", methods=["POST"])
def grant_request(user_id):
    user = _user(user_id)
    _request_admin(user)
    return redirect(url_for("admin_users.show", user_id=user.id))


def _grant(user_id, grant_id):
    grant = db.session.get(AdminGrant, grant_id)
    if grant is None or grant.user_id != user_id:
        abort(404)
    return grant


@bp.route("/<int:user_id>/admin-grant/<int:grant_id>/approve", methods=["POST"])
def grant_approve(user_id, grant_id):
    grant = _grant(user_id, grant_id)
    try:
        approve_admin_grant(grant, _me())
    except AccountError as exc:
        flash(account_error(exc), "error")
    else:
        flash(_("Approved: %(name)s is now an administrator.", name=grant.user.username), "info")
    return redirect(url_for("admin_users.show", user_id=user_id))


@bp.route("/<int:user_id>/admin-grant/<int:grant_id>/reject", methods=["POST"])
def grant_reject(user_id, grant_id):
    grant = _grant(user_id, grant_id)
    try:
        reject_admin_grant(grant, _me())
    except AccountError as exc:
        flash(account_error(exc), "error")
    else:
        flash(_("Request rejected."), "info")
    return redirect(url_for("admin_users.show", user_id=user_id))


@bp.route("/<int:user_id>/tokens/<int:token_id>/revoke", methods=["POST"])
def token_revoke(user_id, token_id):
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != user_id:
        abort(404)
    try:
        revoke_token(row, actor=_me())
    except AccountError as exc:
        flash(account_error(exc), "error")
    else:
        flash(_("The token “%(name)s” has been revoked.", name=row.name), "info")
    return redirect(url_for("admin_users.show", user_id=user_id))


@bp.route("/tokens")
def tokens():
    return render_template("admin/users_tokens.html", tokens=tokens_of())
