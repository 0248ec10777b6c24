"""Append audit events, each chained to the hash of the one before it.

An event's hash is an HMAC-SHA256, with a key kept outside the database (`audit/keys.py`),
over the previous event's hash and the event's fields; its time is normalised to UTC first,
whatever offset the caller's clock had. Events written before migration 0006 carry plain
SHA-256 hashes; the seal the migration wrote (`AuditLegacySeal`, itself an HMAC) says which
those are, and every later event must carry the HMAC. Without the key, nobody who can write
to the database can recompute the chain after editing or deleting an event; deleting the
newest events is caught by the anchors (`audit/anchors.py`).
"""
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from audit.keys import mac, subkeys
from audit.models import AuditEvent, AuditLegacySeal
from extensions import db
from workflows.clock import now

GENESIS = "0" * 64
UTC = dt.timezone.utc


def to_utc(value):
    """Aware → the same instant in UTC; naive → taken as UTC (SQLite returns naive values)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _payload(prev_hash, at_text, actor_id, action, case_id, instance_id, task_id, data):
    return json.dumps(
        [prev_hash, at_text, actor_id, action, case_id, instance_id, task_id, data],
        sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":")).encode()


def event_hash(prev_hash, at, actor_id, action, case_id, instance_id, task_id, data, key=None):
    """The keyed hash of an event: HMAC-SHA256 with the event sub-key of the audit key."""
    return mac(key or subkeys()["event"], _payload(
        prev_hash, to_utc(at).isoformat(), actor_id, action, case_id, instance_id, task_id,
        data))


def legacy_hash(prev_hash, at_text, actor_id, action, case_id, instance_id, task_id, data):
    """The plain SHA-256 of events written before migration 0006."""
    return hashlib.sha256(_payload(prev_hash, at_text, actor_id, action, case_id, instance_id,
                                   task_id, data)).hexdigest()


# Before 0006 an aware time with an offset (`timers run --as-of …+08:00`) was hashed with that
# offset, while SQLite kept its wall-clock digits and PostgreSQL the instant: such legacy
# events are recognised by trying every offset in use (-12:00 … +14:00, by quarter hours).
_OFFSETS = [dt.timezone(dt.timedelta(minutes=m)) for m in range(-12 * 60, 14 * 60 + 1, 15)]


def legacy_match(prev_hash, at, stored_hash, fields):
    """"utc" when the legacy hash matches with the time in UTC, "offset" when it matches only
    as it was hashed with another offset, None when it does not match."""
    moment = to_utc(at)
    if legacy_hash(prev_hash, moment.isoformat(), *fields) == stored_hash:
        return "utc"
    for zone in _OFFSETS:
        for candidate in (moment.replace(tzinfo=zone), moment.astimezone(zone)):
            if legacy_hash(prev_hash, candidate.isoformat(), *fields) == stored_hash:
                return "offset"
    return None


def record(action, actor=None, case_id=None, instance_id=None, task_id=None, data=None):
    """Queue an audit event in the current transaction; it is chained and written at commit.

    Chaining at commit keeps the chain lock held for a moment, not for the whole
    transaction, so writers elsewhere in the application are not serialised by the audit.
    """
    actor_id = getattr(actor, "id", actor)
    _pending(db.session).append(dict(
        at=to_utc(now()), actor_id=actor_id, action=action, case_id=case_id,
        instance_id=instance_id, task_id=task_id,
        data=json.loads(json.dumps(data or {}, default=str))))


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
    key = subkeys(session)["event"]  # cached after the first commit of the process
    prev = session.query(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1).scalar() \
        or GENESIS
    rows = []
    for values in pending:
        digest = event_hash(prev, key=key, **values)
        rows.append(dict(values, prev_hash=prev, hash=digest))
        prev = digest
    session.flush()
    session.execute(AuditEvent.__table__.insert(), rows)  # one statement per transaction


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session, _previous_transaction):
    session.info.pop("audit_pending", None)


def seal_payload(last_event_id, last_hash, event_count, sealed_at):
    return json.dumps({"last_event_id": last_event_id, "last_hash": last_hash,
                       "event_count": event_count, "sealed_at": to_utc(sealed_at).isoformat()},
                      sort_keys=True, separators=(",", ":")).encode()


@dataclass
class ChainCheck:
    """The result of walking the chain; ids are event ids."""
    events: int = 0                  # events read
    intact: int = 0                  # events before the first problem
    first_problem_id: int | None = None
    bad_ids: list = field(default_factory=list)      # stored hash ≠ recomputed (first 20)
    bad_count: int = 0
    broken_ids: list = field(default_factory=list)   # prev_hash ≠ the previous event's hash
    broken_count: int = 0
    legacy: int = 0                  # events checked as plain SHA-256 (before 0006)
    legacy_offset: int = 0           # … of which hashed with a non-UTC offset
    seal_problems: list = field(default_factory=list)
    last_id: int | None = None
    last_hash: str | None = None

    @property
    def ok(self):
        return not (self.bad_count or self.broken_count or self.seal_problems)


_COLUMNS = (AuditEvent.id, AuditEvent.at, AuditEvent.actor_id, AuditEvent.action,
            AuditEvent.case_id, AuditEvent.instance_id, AuditEvent.task_id, AuditEvent.data,
            AuditEvent.prev_hash, AuditEvent.hash)


def legacy_seal(keys, check=None):
    """The valid seal written by migration 0006, or None; bad seals go to check.seal_problems."""
    valid = None
    for seal in AuditLegacySeal.query.order_by(AuditLegacySeal.id):
        expected = mac(keys["seal"], seal_payload(seal.last_event_id, seal.last_hash,
                                                  seal.event_count, seal.sealed_at))
        if seal.mac != expected:
            if check is not None:
                check.seal_problems.append(
                    f"the legacy seal {seal.id} does not match its MAC (edited or forged); "
                    "every event is checked as keyed")
        elif valid is None or seal.last_event_id > valid.last_event_id:
            valid = seal
    return valid


def check_chain(keys=None):
    """Walk every event in id order: each keyed hash recomputed, each link to its predecessor
    checked, the events before 0006 against the legacy seal."""
    keys = keys or subkeys()
    check = ChainCheck()
    seal = legacy_seal(keys, check)
    sealed_id = seal.last_event_id if seal else 0
    seen_seal_hash = None
    previous = GENESIS
    rows = db.session.execute(select(*_COLUMNS).order_by(AuditEvent.id)
                              .execution_options(yield_per=1000))
    for ev_id, at, actor_id, action, case_id, instance_id, task_id, data, prev_hash, digest \
            in rows:
        check.events += 1
        fields = (actor_id, action, case_id, instance_id, task_id, data)
        problem = False
        if prev_hash != previous:
            check.broken_count += 1
            if len(check.broken_ids) < 20:
                check.broken_ids.append(ev_id)
            problem = True
        if ev_id <= sealed_id:
            check.legacy += 1
            matched = legacy_match(prev_hash, at, digest, fields)
            check.legacy_offset += matched == "offset"
            good = matched is not None
            if ev_id == sealed_id:
                seen_seal_hash = digest
        else:
            good = mac(keys["event"], _payload(prev_hash, to_utc(at).isoformat(), *fields)) \
                == digest
        if not good:
            check.bad_count += 1
            if len(check.bad_ids) < 20:
                check.bad_ids.append(ev_id)
            problem = True
        if problem and check.first_problem_id is None:
            check.first_problem_id = ev_id
        if check.first_problem_id is None:
            check.intact += 1
        previous = digest
        check.last_id, check.last_hash = ev_id, digest
    if seal is not None:
        if seen_seal_hash is None:
            check.seal_problems.append(
                f"event {seal.last_event_id}, the last one before the keyed chain, is missing")
        elif seen_seal_hash != seal.last_hash:
            check.seal_problems.append(
                f"event {seal.last_event_id}, the last one before the keyed chain, no longer "
                "has the hash sealed by the migration")
        if check.legacy != seal.event_count:
            check.seal_problems.append(
                f"{seal.event_count - check.legacy} event(s) missing before the keyed chain "
                f"(sealed {seal.event_count}, found {check.legacy})")
    return check


def verify_chain():
    """Return (checked_count, first_bad_event_or_None): the events before the first one whose
    hash or link to its predecessor does not hold. Anchors: `audit.verification.verify`."""
    check = check_chain()
    if check.first_problem_id is None:
        return check.intact, None
    return check.intact, db.session.get(AuditEvent, check.first_problem_id)
