"""Users, their roles and their API tokens."""
import datetime as dt

from flask import current_app
from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from extensions import db
from workflows.clock import now


class User(UserMixin, db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(80), unique=True, nullable=False)
    display_name = db.Column(db.String(120), nullable=False, default="")
    password_hash = db.Column(db.String(255), nullable=False)
    active = db.Column(db.Boolean, nullable=False, default=True)
    locale = db.Column(db.String(10))
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    # Consecutive failed logins and the temporary lock they lead to; on the row, so the lock
    # holds across every web process.
    failed_logins = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    locked_until = db.Column(db.DateTime(timezone=True))
    # Stored in the session cookie at login and compared on every request: raising it (logout,
    # deactivation, a password change or reset) ends every session of the user.
    session_version = db.Column(db.Integer, nullable=False, default=1, server_default="1")
    password_changed_at = db.Column(db.DateTime(timezone=True))
    # The team the user works in (issue 14): "my team" in the managers' view, the dashboards
    # and the scorecards means the users of the leader's team.
    team_id = db.Column(db.Integer, db.ForeignKey("teams.id", use_alter=True), index=True)
    role_rows = db.relationship("UserRole", cascade="all, delete-orphan", lazy="selectin")

    @property
    def roles(self):
        return {r.role for r in self.role_rows}

    def has_role(self, *roles):
        return bool(self.roles.intersection(roles))

    @property
    def sees_cases(self):
        """Whether any case is the user's to see (a process owner's work is the processes)."""
        from accounts.roles import CASE_READERS
        return bool(self.roles & CASE_READERS) or "account_manager" in self.roles

    @property
    def is_active(self):
        return self.active

    def get_id(self):
        """What Flask-Login keeps in the session: the id and the session version."""
        return f"{self.id}:{self.session_version}"

    def is_locked(self, at=None):
        return self.locked_until is not None and utc(self.locked_until) > (at or now())

    def set_password(self, password):
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password):
        return check_password_hash(self.password_hash, password)

    @property
    def label(self):
        return self.display_name or self.username


class Team(db.Model):
    """A team of staff (a branch's post-loan team, a collection team) and its leader, a
    dept_head; its members are the users whose team_id is this team."""
    __tablename__ = "teams"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(120), unique=True, nullable=False)
    leader_id = db.Column(db.Integer, db.ForeignKey("users.id"), index=True)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    leader = db.relationship("User", foreign_keys=[leader_id])


class UserRole(db.Model):
    __tablename__ = "user_roles"
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"), primary_key=True)
    role = db.Column(db.String(40), primary_key=True)


class ApiToken(db.Model):
    __tablename__ = "api_tokens"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False, index=True)
    name = db.Column(db.String(80), nullable=False, default="")
    token_hash = db.Column(db.String(64), unique=True, nullable=False)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    expires_at = db.Column(db.DateTime(timezone=True), nullable=False)
    revoked_at = db.Column(db.DateTime(timezone=True))
    user = db.relationship("User")

    def state(self, at=None):
        """"revoked", "expired" or "active"."""
        if self.revoked_at is not None:
            return "revoked"
        if utc(self.expires_at) <= (at or now()):
            return "expired"
        return "active"


class AdminGrant(db.Model):
    """A request to grant the admin role; a second administrator approves it (four eyes)."""
    __tablename__ = "admin_grants"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False, index=True)
    requested_by_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False)
    requested_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    # pending, approved, rejected
    status = db.Column(db.String(20), nullable=False, default="pending")
    decided_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    decided_at = db.Column(db.DateTime(timezone=True))
    user = db.relationship("User", foreign_keys=[user_id])
    requested_by = db.relationship("User", foreign_keys=[requested_by_id])
    decided_by = db.relationship("User", foreign_keys=[decided_by_id])


def utc(value: dt.datetime | None):
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value
