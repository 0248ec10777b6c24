"""The audit key: the secret behind the keyed (HMAC-SHA256) audit chain and the anchors.

It lives outside the database so that someone who can write to the database cannot recompute
the chain after changing or removing events. Where it comes from, first match wins:

1. app config `AUDIT_KEY`,
2. environment variable `AUDIT_KEY`,
3. the file `instance/audit_key` (or config/env `AUDIT_KEY_FILE`), generated once with mode
   0600 when it does not exist yet — but never while the database already holds keyed events:
   a lost key must be restored from the backup, not silently replaced.

Every use derives a sub-key per purpose ("event", "chain", "anchor", "seal"), so an anchor's
MAC can never be replayed as an event hash or a chain link, or the other way round.
"""
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from flask import current_app

KEY_FILE = "audit_key"
MIN_KEY_LENGTH = 16


class AuditKeyError(RuntimeError):
    """The audit key is missing, too short or cannot be created."""


def key_path(app):
    configured = app.config.get("AUDIT_KEY_FILE") or os.environ.get("AUDIT_KEY_FILE")
    return Path(configured) if configured else Path(app.instance_path) / KEY_FILE


def _configured_key(app):
    return app.config.get("AUDIT_KEY") or os.environ.get("AUDIT_KEY") or None


def _check(key, origin):
    if len(key) < MIN_KEY_LENGTH:
        raise AuditKeyError(f"the audit key from {origin} is shorter than {MIN_KEY_LENGTH} "
                            "characters")
    return key


def _create_file(path):
    """Write a new random key to `path` atomically (0600); if another process won the race,
    keep theirs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)  # fails when the file appeared meanwhile
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)


def load_key(app, create=False):
    """The key as bytes. With `create`, a missing key file is generated (the caller has made
    sure no keyed event exists); otherwise a missing key raises AuditKeyError."""
    configured = _configured_key(app)
    if configured:
        return _check(configured.strip(), "AUDIT_KEY").encode()
    path = key_path(app)
    if not path.exists():
        if not create:
            raise AuditKeyError(f"the audit key file {path} is missing; restore it from the "
                                "backup (or set AUDIT_KEY)")
        _create_file(path)
    return _check(path.read_text().strip(), str(path)).encode()


def _keyed_events_exist(session):
    """True when the database holds an event after the legacy seal (or any event and no
    seal): those were chained with a key that must not be replaced."""
    from sqlalchemy import func, select

    from audit.models import AuditEvent, AuditLegacySeal
    last_id = session.execute(select(func.max(AuditEvent.id))).scalar()
    if last_id is None:
        return False
    sealed = session.execute(select(func.max(AuditLegacySeal.last_event_id))).scalar() or 0
    return last_id > sealed


def subkeys(session=None, app=None):
    """{"event": …, "chain": …, "anchor": …, "seal": …}, loaded once per app and cached."""
    app = app or current_app._get_current_object()
    cached = app.extensions.get("audit_subkeys")
    if cached is not None:
        return cached
    try:
        key = load_key(app)
    except AuditKeyError:
        if _configured_key(app) or key_path(app).exists():
            raise
        if session is None:
            from extensions import db
            session = db.session
        if _keyed_events_exist(session):
            raise
        key = load_key(app, create=True)
    cached = derive(key)
    app.extensions["audit_subkeys"] = cached
    return cached


def derive(key):
    return {purpose: hmac.new(key, b"daihou-audit/" + purpose.encode(), hashlib.sha256).digest()
            for purpose in ("event", "chain", "anchor", "seal")}


def forget(app=None):
    """Drop the cached key (tests, or after the key source changed)."""
    (app or current_app).extensions.pop("audit_subkeys", None)


def mac(subkey, payload: bytes):
    return hmac.new(subkey, payload, hashlib.sha256).hexdigest()
