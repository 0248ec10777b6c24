"""Authentication glue for Flask-Login and the bearer-token API."""
import functools

from flask import abort, g, request
from flask_login import current_user

from accounts.models import User
from accounts.operations import user_for_token
from audit.operations import record
from extensions import db, login_manager


@login_manager.user_loader
def load_user(user_id):
    user = db.session.get(User, int(user_id))
    return user if user and user.active else None


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
