"""Append audit events, each sealed with its own keyed MAC; audit/chaining.py links them.

An event's hash is an HMAC-SHA256, with a key kept outside the database (`audit/keys.py`),
over a random nonce and the event's fields; its time is normalised to UTC first, whatever
offset the caller's clock had. Appending takes no lock and reads nothing: the transaction
inserts its events in one statement, and a database trigger queues them for the chainer
(`audit/chaining.py`), which links them in commit order in `audit_chain` in one background
step (the worker's sweep, `flask audit anchor`, `flask audit chain`).

Events written before migration 0013 are chained in the row itself (prev_hash, and a hash over
the previous hash and the fields); those written before migration 0006 carry plain SHA-256
hashes, and the seal the migration wrote (`AuditLegacySeal`, itself an HMAC) says which those
are. The chain of links continues from the last of them, so the whole history is one sequence.
Without the key nobody who can write to the database can forge an event, nor recompute the
chain after editing, removing or reordering events; deleting the newest events is caught by
the anchors (`audit/anchors.py`). `audit/checks.py` walks it all.
"""
import datetime as dt
import hashlib
import json
import secrets

from sqlalchemy import event
from sqlalchemy.orm import Session

from audit.keys import mac, subkeys
from audit.models import AuditEvent
from bulk import insert_rows
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


def event_mac(nonce, at, actor_id, action, case_id, instance_id, task_id, data, key=None):
    """An event's own MAC (from migration 0013): HMAC-SHA256 with the event sub-key over the
    nonce and the fields. The leading "event" and the nine elements keep it apart from the
    in-row chained hash below, whatever the fields."""
    payload = json.dumps(
        ["event", nonce, to_utc(at).isoformat(), actor_id, action, case_id, instance_id,
         task_id, data],
        sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":")).encode()
    return mac(key or subkeys()["event"], payload)


def event_hash(prev_hash, at, actor_id, action, case_id, instance_id, task_id, data, key=None):
    """The keyed hash of an event chained in the row (migrations 0006 to 0013): HMAC-SHA256
    with the event sub-key over the previous event's hash and the fields."""
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
    """Queue an audit event in the current transaction; it is written at commit."""
    actor_id = getattr(actor, "id", actor)
    session = db.session()
    if not session.in_transaction():
        # Begun now (no statement is sent), so that a rollback before any query drops the
        # event instead of leaving it for the next commit.
        session.begin()
    _pending(session).append(dict(
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
    # No lock and no read of the chain head: each event is sealed on its own, and the
    # chainer links it later. The nonce keeps two identical events apart.
    key = subkeys(session)["event"]  # cached after the first commit of the process
    rows = []
    for values in pending:
        nonce = secrets.token_hex(16)
        rows.append(dict(values, nonce=nonce, prev_hash=None,
                         hash=event_mac(nonce, key=key, **values)))
    session.flush()
    insert_rows(AuditEvent.__table__, rows, connection=session.connection())  # one statement


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session, _previous_transaction):
    session.info.pop("audit_pending", None)


def seal_payload(last_event_id, last_hash, event_count, sealed_at):
    return json.dumps({"last_event_id": last_event_id, "last_hash": last_hash,
                       "event_count": event_count, "sealed_at": to_utc(sealed_at).isoformat()},
                      sort_keys=True, separators=(",", ":")).encode()


def verify_chain():
    """Return (checked_count, first_bad_event_or_None): the events before the first one whose
    own MAC, or link in the chain, does not hold (a chained event since removed is returned
    as an unsaved AuditEvent with its id). Anchors: `audit.verification.verify`."""
    from audit.checks import check_chain, first_problem
    return first_problem(check_chain())
