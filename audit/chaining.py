"""Link committed audit events into the chain, in commit order, in one background step.

A business transaction only inserts its events, each with its own MAC (audit/operations.py);
a trigger on audit_events queues their ids in `audit_chain_queue` in the same transaction.
`chain_pending()` then, under the chain lock (PostgreSQL advisory lock 7461, SQLite's write
lock), takes the queued events in id order, checks each one's own MAC, and appends a link per
event to `audit_chain`:

    position = the previous position + 1
    hash     = HMAC(chain sub-key, [prev_hash, position, event_id, event MAC])

continuing from the last link, or, for the very first link, from the hash of the last event
chained in the row before migration 0013 (GENESIS on a new database). An event whose MAC does
not hold (inserted or edited without the key) is taken off the queue and never linked:
`audit verify` reports it. Positions follow commit order, not ids: on PostgreSQL an event with
a smaller id may commit later, and gets a later position.

It runs in the worker's sweep, before every anchor, and on `flask audit chain`. Two chainers
at once queue on the lock; the second finds the queue emptied by the first.

What it does not stop: the chainer links whatever valid event is queued, so someone who can
bypass the append-only triggers could delete the newest links and an event among them, queue
the others again and let the chainer re-link them. Links made before the last anchor are
protected by it (`audit verify` finds the anchored link moved or gone); after it, as for the
newest events before, the anchor interval is the window.
"""
import json

from sqlalchemy import delete, func, insert, select, text

from audit.keys import mac, subkeys
from audit.models import AuditChainLink, AuditChainQueue, AuditEvent
from audit.operations import GENESIS, event_mac
from extensions import db

BATCH = 5000  # events per transaction: the lock is held for one batch at a time
LOCK = 7461


def link_hash(prev_hash, position, event_id, event_digest, key=None):
    return mac(key or subkeys()["chain"], json.dumps(
        [prev_hash, position, event_id, event_digest], separators=(",", ":")).encode())


def _lock(session):
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT pg_advisory_xact_lock({LOCK})"))
    else:
        # SQLite takes its write lock at the first write; this one inserts nothing.
        session.execute(text("INSERT INTO audit_chain SELECT * FROM audit_chain WHERE 0"))


def row_chain_tail(session):
    """The hash of the last event chained in the row (before 0013), GENESIS when none."""
    return session.execute(select(AuditEvent.hash).where(AuditEvent.nonce.is_(None))
                           .order_by(AuditEvent.id.desc()).limit(1)).scalar() or GENESIS


_QUEUED = (AuditEvent.id, AuditEvent.nonce, AuditEvent.at, AuditEvent.actor_id,
           AuditEvent.action, AuditEvent.case_id, AuditEvent.instance_id, AuditEvent.task_id,
           AuditEvent.data, AuditEvent.hash)


def _chain_batch(session, keys, batch):
    """Link up to `batch` queued events; returns (events taken off the queue, links made)."""
    _lock(session)  # first statement of the transaction: what follows sees every commit
    head = session.execute(select(AuditChainLink.position, AuditChainLink.hash)
                           .order_by(AuditChainLink.position.desc()).limit(1)).first()
    position, prev = head if head else (0, row_chain_tail(session))
    # A queued id whose event is gone is not joined, so it stays queued: verify reports it.
    queued = session.execute(
        select(*_QUEUED, AuditChainLink.position)
        .join(AuditChainQueue, AuditChainQueue.event_id == AuditEvent.id)
        .outerjoin(AuditChainLink, AuditChainLink.event_id == AuditEvent.id)
        .order_by(AuditEvent.id).limit(batch)).all()
    links = []
    for ev_id, nonce, at, actor_id, action, case_id, instance_id, task_id, data, digest, \
            linked in queued:
        if linked is not None:
            continue  # queued again by hand: an event is linked once
        if nonce is None or event_mac(nonce, at, actor_id, action, case_id, instance_id,
                                      task_id, data, key=keys["event"]) != digest:
            continue  # forged or edited: not linked, left for `audit verify` to report
        position += 1
        link = link_hash(prev, position, ev_id, digest, keys["chain"])
        links.append({"position": position, "event_id": ev_id, "prev_hash": prev,
                      "hash": link})
        prev = link
    if links:
        session.execute(insert(AuditChainLink), links)
    if queued:
        # By id, not by range: an event with a smaller id may have committed meanwhile.
        session.execute(delete(AuditChainQueue).where(
            AuditChainQueue.event_id.in_([row[0] for row in queued])))
    session.commit()
    return len(queued), len(links)


def chain_pending(batch=BATCH):
    """Link every queued event; returns the number of links made. Commits: call it with no
    work of the caller's in the session."""
    session = db.session
    session.commit()  # a fresh transaction, so that SQLite's lock comes before any read
    keys = subkeys(session)
    made = 0
    while True:
        taken, linked = _chain_batch(session, keys, batch)
        made += linked
        if taken < batch:
            return made


def chain_head():
    """(count, last event id, last hash) of the whole sequence — the events chained in the
    row, then the links — read in one statement, so the three agree."""
    in_row = select(func.count(AuditEvent.id)).where(AuditEvent.nonce.is_(None)) \
        .scalar_subquery()
    row = db.session.execute(select(AuditChainLink.position, AuditChainLink.event_id,
                                    AuditChainLink.hash, in_row)
                             .order_by(AuditChainLink.position.desc()).limit(1)).first()
    if row:
        return row[3] + row[0], row[1], row[2]
    count = select(func.count(AuditEvent.id)).where(AuditEvent.nonce.is_(None)) \
        .scalar_subquery()
    row = db.session.execute(select(AuditEvent.id, AuditEvent.hash, count)
                             .where(AuditEvent.nonce.is_(None))
                             .order_by(AuditEvent.id.desc()).limit(1)).first()
    return (row[2], row[0], row[1]) if row else (0, None, None)
