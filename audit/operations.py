"""Append audit events, each chained to the hash of the one before it."""
import hashlib
import json

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from accounts.models import utc
from audit.models import AuditEvent
from extensions import db
from workflows.clock import now

GENESIS = "0" * 64


def event_hash(prev_hash, at, actor_id, action, case_id, instance_id, task_id, data):
    payload = json.dumps(
        [prev_hash, utc(at).isoformat(), actor_id, action, case_id, instance_id, task_id, data],
        sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def record(action, actor=None, case_id=None, instance_id=None, task_id=None, data=None):
    """Queue an audit event in the current transaction; it is chained and written at commit.

    Chaining at commit keeps the chain lock held for a moment, not for the whole
    transaction, so writers elsewhere in the application are not serialised by the audit.
    """
    actor_id = getattr(actor, "id", actor)
    _pending(db.session).append(dict(
        at=now(), actor_id=actor_id, action=action, case_id=case_id, instance_id=instance_id,
        task_id=task_id, data=json.loads(json.dumps(data or {}, default=str))))


def _pending(session):
    return session.info.setdefault("audit_pending", [])


@event.listens_for(Session, "before_commit")
def _write_pending(session):
    pending = session.info.pop("audit_pending", None)
    if not pending:
        return
    # Serialise appenders so two transactions never chain onto the same predecessor.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7461)"))
    else:
        # SQLite takes its write lock at the first write; this one inserts nothing.
        session.execute(text("INSERT INTO audit_events SELECT * FROM audit_events WHERE 0"))
    prev = session.query(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1).scalar() \
        or GENESIS
    for values in pending:
        digest = event_hash(prev, **values)
        session.add(AuditEvent(prev_hash=prev, hash=digest, **values))
        prev = digest
    session.flush()


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session, _previous_transaction):
    session.info.pop("audit_pending", None)


def verify_chain():
    """Return (checked_count, first_bad_event_or_None)."""
    prev = GENESIS
    count = 0
    for ev in AuditEvent.query.order_by(AuditEvent.id).yield_per(1000):
        expected = event_hash(prev, at=ev.at, actor_id=ev.actor_id, action=ev.action,
                              case_id=ev.case_id, instance_id=ev.instance_id,
                              task_id=ev.task_id, data=ev.data)
        if ev.prev_hash != prev or ev.hash != expected:
            return count, ev
        prev = ev.hash
        count += 1
    return count, None
