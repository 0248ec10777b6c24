"""Authentication glue for Flask-Login and the bearer-token API."""
import functools

from flask import abort, g, request
from flask_login import current_user
from sqlalchemy.orm import joinedload

from accounts.models import User
from accounts.operations import user_for_token
from audit.operations import record
from extensions import db, login_manager


@login_manager.user_loader
def load_user(user_id):
    """The session holds "id:session_version" (User.get_id); a session from before a logout,
    deactivation or password change carries an older version and is refused here, on every
    request, whichever process serves it."""
    user_pk, _, version = str(user_id).partition(":")
    if not (user_pk.isdigit() and version.isdigit()):
        return None
    # One query, roles included: every page starts here.
    user = db.session.get(User, int(user_pk), options=[joinedload(User.role_rows)])
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def bearer_user():
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    return user_for_token(header[len("Bearer "):].strip())


def record_denial(user, reason):
    db.session.rollback()
    record("permission.denied", actor=user if user and user.is_authenticated else None,
           data={"path": request.path, "method": request.method, "reason": reason})
    db.session.commit()


def deny(user, reason):
    """Record a permission denial, then 403."""
    record_denial(user, reason)
    abort(403, description=reason)


def roles_required(*roles):
    """The current (web or API) user must hold one of `roles`."""
    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = g.get("api_user") or current_user
            if not user.has_role(*roles):
                deny(user, "role")
            return view(*args, **kwargs)
        return wrapper
    return decorate
