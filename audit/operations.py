"""Append audit events, each chained to the hash of the one before it."""
import hashlib
import json

from sqlalchemy import text

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


def _lock_chain():
    # Serialise appenders so two transactions never chain onto the same predecessor.
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(7461)"))


def record(action, actor=None, case_id=None, instance_id=None, task_id=None, data=None):
    """Add an audit event to the current transaction (the caller commits)."""
    _lock_chain()
    last = db.session.query(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1).scalar()
    prev = last or GENESIS
    at = now()
    data = json.loads(json.dumps(data or {}, default=str))
    actor_id = getattr(actor, "id", actor)
    event = AuditEvent(at=at, actor_id=actor_id, action=action, case_id=case_id,
                       instance_id=instance_id, task_id=task_id, data=data, prev_hash=prev,
                       hash=event_hash(prev, at, actor_id, action, case_id, instance_id,
                                       task_id, data))
    db.session.add(event)
    db.session.flush()
    return event


def verify_chain():
    """Return (checked_count, first_bad_event_or_None)."""
    prev = GENESIS
    count = 0
    for ev in AuditEvent.query.order_by(AuditEvent.id).yield_per(1000):
        expected = event_hash(prev, ev.at, ev.actor_id, ev.action, ev.case_id,
                              ev.instance_id, ev.task_id, ev.data)
        if ev.prev_hash != prev or ev.hash != expected:
            return count, ev
        prev = ev.hash
        count += 1
    return count, None
