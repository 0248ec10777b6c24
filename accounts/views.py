"""Login, logout, the language switch and the user's own account (password, API tokens)."""
import re
from urllib.parse import unquote, urlsplit

from flask import (Blueprint, abort, current_app, flash, g, redirect, render_template, request,
                   session, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_required, login_user, logout_user

import accounts.auth  # noqa: F401  (registers the user loader)
from accounts import throttle
from accounts.forms import ChangePasswordForm, LoginForm, TokenForm
from accounts.models import ApiToken
from accounts.operations import (AccountError, authenticate, change_password, create_token,
                                 end_sessions, revoke_token, set_locale, tokens_of)
from audit.operations import record
from extensions import db
from i18n import LANGUAGES

bp = Blueprint("accounts", __name__)

# Messages of accounts.operations.AccountError codes, shown on the account and admin pages.
ACCOUNT_ERRORS = {
    "password_too_short": _l("The password must have at least %(min)d characters."),
    "password_too_long": _l("The password may have at most %(max)d characters."),
    "password_common": _l("This password is too common; choose another one."),
    "password_has_username": _l("The password must not contain the user name."),
    "wrong_password": _l("The current password is wrong."),
    "same_password": _l("The new password must differ from the current one."),
    "unknown_role": _l("Unknown role: %(roles)s."),
    "user_exists": _l("A user with this name already exists."),
    "bad_username": _l("The user name must have 1 to 80 characters."),
    "admin_needs_approval": _l("The administrator role needs the approval of a second "
                               "administrator."),
    "last_admin": _l("This is the last active administrator: appoint another one first."),
    "self": _l("You cannot deactivate your own account."),
    "already_inactive": _l("This user is already deactivated."),
    "already_active": _l("This user is already active."),
    "not_admin": _l("Only an active administrator can do this."),
    "already_admin": _l("This user is already an administrator."),
    "inactive": _l("This user is deactivated."),
    "grant_decided": _l("This request has already been decided."),
    "four_eyes": _l("Four eyes: a second administrator, not the one who asked, must approve."),
    "token_days": _l("A token is valid for 1 to %(max)d days."),
    "token_revoked": _l("This token is already revoked."),
    "no_user": _l("No such user."),
}

# Characters a browser drops from or reads as a separator in a URL: /\t/evil.com is //evil.com.
_UNSAFE_IN_NEXT = re.compile(r"[\x00-\x20\x7f\\]")
_UNSAFE_DECODED = re.compile(r"[\x00-\x1f\x7f\\]")


def account_error(exc):
    message = ACCOUNT_ERRORS.get(exc.code)
    if message is None:
        return _("The request could not be completed.")
    return str(message) % exc.params if exc.params else str(message)


def safe_next(target):
    """`target` when it is a path on this site ("/cases/1?x=y"), else None: no scheme, no
    host, no "//" or "/\\" (both read as another host), no control characters or spaces
    (browsers strip tabs and new lines: "/%09/evil.com" arrives as "/\\t/evil.com"). The
    path is also checked percent-decoded once more, to be safe against double encoding."""
    if not target or not isinstance(target, str) or len(target) > 2000:
        return None
    if _UNSAFE_IN_NEXT.search(target):
        return None
    decoded_path = unquote(re.split(r"[?#]", target, maxsplit=1)[0])
    if _UNSAFE_DECODED.search(decoded_path):
        return None
    for candidate in (target, decoded_path):
        if not candidate.startswith("/") or candidate.startswith("//"):
            return None
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@throttle.login_limits
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user, reason = authenticate(form.username.data.strip(), form.password.data)
        if user:
            login_user(user)
            return redirect(safe_next(request.args.get("next")) or url_for("home.index"))
        g.login_failed = True  # counted by the throttle
        if reason == "locked":
            flash(_("Too many failed logins: this account is locked for %(minutes)d minutes. "
                    "Try again later or ask an administrator to unlock it.",
                    minutes=current_app.config["LOGIN_LOCK_MINUTES"]), "error")
        else:
            flash(_("Wrong user name or password."), "error")
    return render_template("accounts/login.html", form=form)


@bp.errorhandler(RateLimitExceeded)
def login_throttled(exc):
    if throttle.first_breach_in_window(exc):
        db.session.rollback()
        record("auth.throttled",
               data={"limit": str(exc.limit.limit), **throttle.throttled_key(exc)})
        db.session.commit()
    flash(_("Too many failed logins from here or for this user. Wait a few minutes before "
            "trying again."), "error")
    response = current_app.make_response(
        (render_template("accounts/login.html", form=LoginForm(formdata=None)), 429))
    response.headers["Retry-After"] = str(throttle.retry_after_seconds())
    return response


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Ends every session of the user (each browser's cookie carries the old version)."""
    end_sessions(current_user._get_current_object())
    logout_user()
    flash(_("You have been logged out."), "info")
    return redirect(url_for("accounts.login"))


@bp.route("/language/<code>", methods=["POST"])
def language(code):
    if code in LANGUAGES:
        session["locale"] = code
        if current_user.is_authenticated:
            set_locale(current_user, code)
    return redirect(safe_next(request.form.get("next")) or url_for("workflows.inbox"))


# ---------------------------------------------------------------- own account

def _render_account(password_form=None, token_form=None, new_token=None, status=200):
    user = current_user._get_current_object()
    return render_template("accounts/account.html", user=user,
                           password_form=password_form or ChangePasswordForm(formdata=None),
                           token_form=token_form or TokenForm(formdata=None),
                           tokens=tokens_of(user), new_token=new_token), status


@bp.route("/account")
@login_required
def account():
    return _render_account()


@bp.route("/account/password", methods=["POST"])
@login_required
def password():
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return _render_account(password_form=form, status=400)
    user = current_user._get_current_object()
    try:
        change_password(user, form.current_password.data, form.new_password.data)
    except AccountError as exc:
        field = form.current_password if exc.code == "wrong_password" else form.new_password
        field.errors = [account_error(exc)]
        return _render_account(password_form=form, status=400)
    login_user(user)  # this session goes on with the new version; every other one ends
    flash(_("Your password has been changed; your other sessions have been logged out."), "info")
    return redirect(url_for("accounts.account"))


@bp.route("/account/tokens", methods=["POST"])
@login_required
def token_create():
    form = TokenForm()
    if not form.validate_on_submit():
        return _render_account(token_form=form, status=400)
    user = current_user._get_current_object()
    try:
        token = create_token(user.username, form.name.data, actor=user, days=form.days.data)
    except AccountError as exc:
        form.days.errors = [account_error(exc)]
        return _render_account(token_form=form, status=400)
    # Shown once, on this response only; never stored in the session or the database.
    response = current_app.make_response(_render_account(new_token=token))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def token_revoke(token_id):
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != current_user.id:
        abort(404)
    try:
        revoke_token(row, actor=current_user._get_current_object())
    except AccountError as exc:
        flash(account_error(exc), "error")
    else:
        flash(_("The token “%(name)s” has been revoked.", name=row.name), "info")
    return redirect(url_for("accounts.account"))
