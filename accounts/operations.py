"""Account operations: every change is one transaction and audited."""
import hashlib
import secrets

from accounts.models import ApiToken, User, UserRole
from accounts.roles import ROLES
from audit.operations import record
from extensions import db


class AccountError(ValueError):
    pass


def create_user(username, password, roles, display_name="", actor=None):
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise AccountError(f"unknown role(s): {', '.join(sorted(unknown))}")
    if User.query.filter_by(username=username).first():
        raise AccountError(f"user {username} already exists")
    if len(password) < 8:
        raise AccountError("password must have at least 8 characters")
    user = User(username=username, display_name=display_name or username)
    user.set_password(password)
    user.role_rows = [UserRole(role=r) for r in sorted(set(roles))]
    db.session.add(user)
    db.session.flush()
    record("user.created", actor=actor, data={"username": username, "roles": sorted(set(roles))})
    db.session.commit()
    return user


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(username, name="", actor=None):
    """Create a bearer token; only its hash is kept, the token is returned once."""
    user = User.query.filter_by(username=username).first()
    if user is None:
        raise AccountError(f"no user {username}")
    token = "dh_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, name=name, token_hash=hash_token(token)))
    record("token.created", actor=actor, data={"username": username, "name": name})
    db.session.commit()
    return token


def user_for_token(token):
    row = ApiToken.query.filter_by(token_hash=hash_token(token), revoked_at=None).first()
    if row is None or not row.user.active:
        return None
    return row.user


def authenticate(username, password):
    """The user when the credentials match, else None; both outcomes are audited."""
    user = User.query.filter_by(username=username).first()
    ok = user is not None and user.active and user.check_password(password)
    record("login" if ok else "login.failed", actor=user if ok else None,
           data={"username": username})
    db.session.commit()
    return user if ok else None


def set_locale(user, locale):
    user.locale = locale
    db.session.commit()
