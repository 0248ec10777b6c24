"""Account operations: every change is one transaction and audited.

Operations never read the request; the views and the CLI authorise, then call them. An
`AccountError` carries a stable `code` (the views translate it) and an English message (the CLI
prints it).
"""
import datetime as dt
import hashlib
import secrets

from flask import current_app
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from accounts.models import AdminGrant, ApiToken, User, UserRole, utc  # noqa: F401 (CLI)
from accounts.passwords import policy_problem
from accounts.roles import ROLES
from audit.operations import record
from extensions import db
from workflows.clock import now

TOKEN_DAYS = 90
TOKEN_MAX_DAYS = 365
LOCK_AFTER = 5
LOCK_MINUTES = 15

POLICY_TEXT = {
    "password_too_short": "the password must have at least {min} characters",
    "password_too_long": "the password may have at most {max} characters",
    "password_common": "this password is too common",
    "password_has_username": "the password must not contain the user name",
}


class AccountError(ValueError):
    def __init__(self, code, message, **params):
        super().__init__(message)
        self.code = code
        self.params = params


def _config(name, default):
    return current_app.config.get(name, default)


def check_policy(password, username):
    problem = policy_problem(password, username)
    if problem:
        code, params = problem
        raise AccountError(code, POLICY_TEXT[code].format(**params), **params)


def _check_roles(roles):
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise AccountError("unknown_role", f"unknown role(s): {', '.join(sorted(unknown))}",
                           roles=", ".join(sorted(unknown)))


def active_admins():
    return (User.query.join(UserRole).filter(UserRole.role == "admin", User.active.is_(True))
            .all())


def user_named(username):
    user = User.query.filter_by(username=username).first()
    if user is None:
        raise AccountError("no_user", f"no user {username}", username=username)
    return user


# ---------------------------------------------------------------- users

def create_user(username, password, roles, display_name="", actor=None, *, four_eyes=False):
    """Create a user; the password policy applies. With `four_eyes` (the CLI and the web
    pages) the admin role can be given here only while there is no active administrator (the
    first one); after that it is granted with four eyes (`request_admin_grant`, then
    `approve_admin_grant` by another administrator). Code that sets up data (demo, tests)
    creates users directly."""
    username = (username or "").strip()
    _check_roles(roles)
    if not username or len(username) > 80:
        raise AccountError("bad_username", "the user name must have 1 to 80 characters")
    if User.query.filter_by(username=username).first():
        raise AccountError("user_exists", f"user {username} already exists", username=username)
    if four_eyes and "admin" in roles and active_admins():
        raise AccountError(
            "admin_needs_approval",
            "the admin role is granted with four eyes once an administrator exists: "
            "create the user without it, then `users grant-admin NAME --by ADMIN` and "
            "`users approve-admin NAME --by ANOTHER_ADMIN`")
    check_policy(password, username)
    user = User(username=username, display_name=(display_name or username).strip()[:120],
                failed_logins=0, session_version=1)
    user.set_password(password)
    user.password_changed_at = now()
    user.role_rows = [UserRole(role=r) for r in sorted(set(roles))]
    db.session.add(user)
    db.session.flush()
    record("user.created", actor=actor, data={"username": username, "roles": sorted(set(roles))})
    db.session.commit()
    return user


def update_user(user, display_name, roles, actor=None):
    """Set the display name and the roles. Adding admin becomes a grant request that another
    administrator approves; it is returned (else None). Removing admin from the last active
    administrator is refused."""
    _check_roles(roles)
    wanted = set(roles)
    current = user.roles
    if "admin" in current and "admin" not in wanted and user.active and \
            len(active_admins()) <= 1:
        raise AccountError("last_admin", "this is the last active administrator")
    grant = None
    if "admin" in wanted and "admin" not in current:
        grant = request_admin_grant(user, actor, commit=False)
        wanted.discard("admin")  # added when a second administrator approves
    added, removed = sorted(wanted - current), sorted(current - wanted)
    user.role_rows = [r for r in user.role_rows if r.role in wanted] + \
        [UserRole(role=r) for r in added]
    display_name = (display_name or "").strip()[:120]
    renamed = bool(display_name) and display_name != user.display_name
    if renamed:
        record("user.renamed", actor=actor, data={"username": user.username,
                                                  "from": user.display_name,
                                                  "to": display_name})
        user.display_name = display_name
    if added or removed:
        record("user.roles_changed", actor=actor, data={"username": user.username,
                                                        "added": added, "removed": removed})
    db.session.commit()
    return grant


def deactivate_user(user, actor=None):
    """The user can no longer log in or use a token; every session of theirs ends."""
    if actor is not None and getattr(actor, "id", None) == user.id:
        raise AccountError("self", "administrators cannot deactivate themselves")
    if not user.active:
        raise AccountError("already_inactive", f"{user.username} is already deactivated")
    if "admin" in user.roles and len(active_admins()) <= 1:
        raise AccountError("last_admin", "this is the last active administrator")
    user.active = False
    user.session_version += 1
    record("user.deactivated", actor=actor, data={"username": user.username})
    db.session.commit()


def activate_user(user, actor=None):
    if user.active:
        raise AccountError("already_active", f"{user.username} is already active")
    user.active = True
    user.failed_logins = 0
    user.locked_until = None
    record("user.activated", actor=actor, data={"username": user.username})
    db.session.commit()


def unlock_user(user, actor=None):
    user.failed_logins = 0
    user.locked_until = None
    record("user.unlocked", actor=actor, data={"username": user.username})
    db.session.commit()


# ---------------------------------------------------------------- admin grants (four eyes)

def pending_grant(user):
    return AdminGrant.query.filter_by(user_id=user.id, status="pending").first()


def _require_admin(actor, what):
    if actor is None or not actor.active or "admin" not in actor.roles:
        raise AccountError("not_admin", f"only an active administrator can {what}")


def request_admin_grant(user, actor, commit=True):
    """Ask for `user` to become an administrator; another administrator approves."""
    _require_admin(actor, "request the admin role for someone")
    if "admin" in user.roles:
        raise AccountError("already_admin", f"{user.username} is already an administrator")
    if not user.active:
        raise AccountError("inactive", f"{user.username} is deactivated")
    grant = pending_grant(user)
    if grant is None:
        grant = AdminGrant(user_id=user.id, requested_by_id=actor.id, requested_at=now(),
                           status="pending")
        db.session.add(grant)
        db.session.flush()
        record("user.admin_requested", actor=actor, data={"username": user.username,
                                                          "grant_id": grant.id})
    if commit:
        db.session.commit()
    return grant


def approve_admin_grant(grant, actor):
    _require_admin(actor, "approve the admin role")
    if grant.status != "pending":
        raise AccountError("grant_decided", "this request has already been decided")
    if actor.id in (grant.requested_by_id, grant.user_id):
        raise AccountError("four_eyes", "a second administrator, not the one who asked "
                                        "(nor the user concerned), must approve")
    user = grant.user
    if not user.active:
        raise AccountError("inactive", f"{user.username} is deactivated")
    grant.status, grant.decided_by_id, grant.decided_at = "approved", actor.id, now()
    if "admin" not in user.roles:
        user.role_rows.append(UserRole(role="admin"))
    record("user.admin_approved", actor=actor, data={
        "username": user.username, "grant_id": grant.id,
        "requested_by": grant.requested_by.username})
    db.session.commit()


def reject_admin_grant(grant, actor):
    """Refuse a request (any administrator, including the one who asked: a withdrawal)."""
    _require_admin(actor, "reject an admin role request")
    if grant.status != "pending":
        raise AccountError("grant_decided", "this request has already been decided")
    grant.status, grant.decided_by_id, grant.decided_at = "rejected", actor.id, now()
    record("user.admin_rejected", actor=actor, data={"username": grant.user.username,
                                                     "grant_id": grant.id})
    db.session.commit()


# ---------------------------------------------------------------- passwords

def change_password(user, current_password, new_password):
    """The user's own change; every other session of theirs ends (the caller logs the
    current one in again with the new session version)."""
    if not user.check_password(current_password or ""):
        record("password.change_failed", actor=user, data={"username": user.username})
        _count_failure(user, now())  # guessing through a borrowed session counts too
        db.session.commit()
        raise AccountError("wrong_password", "the current password is wrong")
    if current_password == new_password:
        raise AccountError("same_password", "the new password must differ from the current one")
    check_policy(new_password, user.username)
    _set_password(user)
    user.set_password(new_password)
    record("password.changed", actor=user, data={"username": user.username})
    db.session.commit()


def reset_password(user, new_password, actor=None):
    """An administrator's reset: also lifts a lock and ends every session of the user."""
    check_policy(new_password, user.username)
    _set_password(user)
    user.set_password(new_password)
    user.failed_logins = 0
    user.locked_until = None
    record("password.reset", actor=actor, data={"username": user.username})
    db.session.commit()


def _set_password(user):
    user.session_version += 1
    user.password_changed_at = now()


def end_sessions(user):
    """Logout: every session of the user ends, not only this browser's."""
    user.session_version += 1
    record("logout", actor=user, data={"username": user.username})
    db.session.commit()


# ---------------------------------------------------------------- login

_DUMMY_HASH = {}


def _spend_hash_time(password):
    """Check the password against a dummy hash so an unknown user name takes as long."""
    method = _config("PASSWORD_HASH_METHOD", "scrypt")
    if method not in _DUMMY_HASH:
        _DUMMY_HASH[method] = generate_password_hash(secrets.token_hex(8), method=method)
    check_password_hash(_DUMMY_HASH[method], password)


def authenticate(username, password):
    """(user, None) when the credentials match, else (None, reason) with reason "invalid" or
    "locked". Every outcome is audited; LOGIN_LOCK_AFTER consecutive failures lock the account
    for LOGIN_LOCK_MINUTES (on the user row, so across every web process), audited as
    `auth.locked`. While locked even the right password is refused."""
    user = User.query.filter_by(username=username).first()
    moment = now()
    if user is not None and user.is_locked(moment):
        record("login.failed", data={"username": username, "reason": "locked"})
        db.session.commit()
        return None, "locked"
    if user is None:
        _spend_hash_time(password)
    ok = user is not None and user.active and user.check_password(password)
    if ok:
        user.failed_logins = 0
        user.locked_until = None
        record("login", actor=user, data={"username": username})
        db.session.commit()
        return user, None
    record("login.failed", data={"username": username})
    if user is not None and _count_failure(user, moment):
        db.session.commit()
        return None, "locked"
    db.session.commit()
    return None, "invalid"


def _count_failure(user, moment):
    """Count a failed login in the database (atomically, whatever the number of processes);
    True when this failure locked the account."""
    limit = int(_config("LOGIN_LOCK_AFTER", LOCK_AFTER))
    minutes = int(_config("LOGIN_LOCK_MINUTES", LOCK_MINUTES))
    db.session.execute(update(User).where(User.id == user.id)
                       .values(failed_logins=User.failed_logins + 1))
    until = moment + dt.timedelta(minutes=minutes)
    locked = db.session.execute(
        update(User).where(User.id == user.id, User.failed_logins >= limit,
                           or_(User.locked_until.is_(None), User.locked_until <= moment))
        .values(locked_until=until, failed_logins=0)).rowcount
    if locked:
        record("auth.locked", actor=user, data={"username": user.username,
                                                "failures": limit, "minutes": minutes,
                                                "until": until.isoformat()})
    db.session.expire(user)
    return bool(locked)


def set_locale(user, locale):
    user.locale = locale
    db.session.commit()


# ---------------------------------------------------------------- API tokens

def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(username, name="", actor=None, days=None):
    """Create a bearer token valid for `days` (TOKEN_DAYS, 90, by default); only its hash is
    kept, the token is returned once."""
    user = user_named(username)
    if not user.active:
        raise AccountError("inactive", f"{username} is deactivated", username=username)
    days = int(days if days is not None else _config("TOKEN_DAYS", TOKEN_DAYS))
    maximum = int(_config("TOKEN_MAX_DAYS", TOKEN_MAX_DAYS))
    if not 1 <= days <= maximum:
        raise AccountError("token_days", f"a token is valid for 1 to {maximum} days",
                           max=maximum)
    name = (name or "").strip()[:80] or "token"
    token = "dh_" + secrets.token_urlsafe(32)
    created = now()
    row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), created_at=created,
                   expires_at=created + dt.timedelta(days=days))
    db.session.add(row)
    db.session.flush()
    record("token.created", actor=actor, data={"username": username, "name": name,
                                               "token_id": row.id, "days": days})
    db.session.commit()
    return token


def tokens_of(user=None):
    query = ApiToken.query.order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if user is not None:
        query = query.filter_by(user_id=user.id)
    return query.all()


def revoke_token(row, actor=None):
    if row.revoked_at is not None:
        raise AccountError("token_revoked", f"token {row.id} is already revoked")
    row.revoked_at = now()
    record("token.revoked", actor=actor, data={"username": row.user.username, "name": row.name,
                                               "token_id": row.id})
    db.session.commit()


# Built once: constructing this statement and its cache key cost more than running it
# (every API call starts here).
_USER_FOR_TOKEN = (
    select(User).join(ApiToken, ApiToken.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None),
           ApiToken.expires_at > bindparam("now"), User.active.is_(True))
    .options(joinedload(User.role_rows)).limit(1))


def user_for_token(token):
    """The active user of an unrevoked, unexpired token, else None: one query, roles
    included."""
    return db.session.scalars(_USER_FOR_TOKEN, {"token_hash": hash_token(token),
                                                "now": now()}).unique().first()
