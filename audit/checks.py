"""Walk the audit log: every event's hash, the chain in the rows, the chain of links.

Three parts make one sequence (see audit/operations.py and audit/chaining.py):

1. events chained in the row (nonce NULL), in id order: each hash recomputed — plain SHA-256
   up to the legacy seal of migration 0006, HMAC after it — and each prev_hash compared
   with the hash of the event before;
2. events with their own MAC (from migration 0013): the MAC recomputed; one that holds but
   is not linked yet is pending, or stalled when queued longer than AUDIT_CHAIN_LAG seconds
   (default 600) or not queued at all;
3. the links of `audit_chain` in position order: positions without gaps, each prev_hash the
   hash of the link before (the first: the hash of the last event of part 1), each hash
   recomputed over the event's current MAC, and the event still there.

Two events with the same MAC (a copy under a new id) are reported too.
"""
import datetime as dt
import os
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import func, select

from audit.chaining import link_hash
from audit.keys import mac, subkeys
from audit.models import AuditChainLink, AuditChainQueue, AuditEvent, AuditLegacySeal
from audit.operations import GENESIS, _payload, event_mac, legacy_match, seal_payload, to_utc
from extensions import db

DEFAULT_LAG = 600
SHOWN = 20  # ids kept per kind of problem


@dataclass
class ChainCheck:
    """The result of the walk; ids are event ids."""
    events: int = 0                  # events read
    intact: int = 0                  # events before the first problem
    first_problem_id: int | None = None
    bad_ids: list = field(default_factory=list)      # stored hash ≠ recomputed (first 20)
    bad_count: int = 0
    broken_ids: list = field(default_factory=list)   # a link that does not hold (first 20)
    broken_count: int = 0
    missing_ids: list = field(default_factory=list)  # linked or queued, and gone
    missing_count: int = 0
    duplicate_ids: list = field(default_factory=list)  # a MAC carried by two events
    legacy: int = 0                  # events checked as plain SHA-256 (before 0006)
    legacy_offset: int = 0           # … of which hashed with a non-UTC offset
    in_row: int = 0                  # events chained in the row (before 0013)
    links: int = 0                   # links in audit_chain
    pending: int = 0                 # events with a valid MAC, queued, not linked yet
    stalled_ids: list = field(default_factory=list)  # … queued too long ago, or not queued
    stalled_count: int = 0
    seal_problems: list = field(default_factory=list)
    last_id: int | None = None       # the head of the sequence: event id and hash
    last_hash: str | None = None

    @property
    def ok(self):
        return not (self.bad_count or self.broken_count or self.missing_count
                    or self.duplicate_ids or self.seal_problems)

    def _problem(self, kind, ev_id):
        count = f"{kind}_count"
        if hasattr(self, count):
            setattr(self, count, getattr(self, count) + 1)
        ids = getattr(self, f"{kind}_ids")
        if len(ids) < SHOWN and ev_id not in ids:
            ids.append(ev_id)
        if kind != "stalled" and (self.first_problem_id is None
                                  or ev_id < self.first_problem_id):
            self.first_problem_id = ev_id


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


def chain_lag():
    value = current_app.config.get("AUDIT_CHAIN_LAG")
    if value in (None, ""):
        value = os.environ.get("AUDIT_CHAIN_LAG") or DEFAULT_LAG
    return float(value)


_COLUMNS = (AuditEvent.id, AuditEvent.at, AuditEvent.actor_id, AuditEvent.action,
            AuditEvent.case_id, AuditEvent.instance_id, AuditEvent.task_id, AuditEvent.data,
            AuditEvent.prev_hash, AuditEvent.hash, AuditEvent.nonce, AuditChainLink.position)


def _walk_events(check, keys, seal, queue, cutoff):
    """Parts 1 and 2; returns (the hash of the last event chained in the row, bad ids)."""
    sealed_id = seal.last_event_id if seal else 0
    seen_seal_hash = None
    previous = GENESIS
    bad = set()  # every bad id: their links are not reported a second time
    rows = db.session.execute(
        select(*_COLUMNS).outerjoin(AuditChainLink, AuditChainLink.event_id == AuditEvent.id)
        .order_by(AuditEvent.id).execution_options(yield_per=1000))
    for ev_id, at, actor_id, action, case_id, instance_id, task_id, data, prev_hash, digest, \
            nonce, position in rows:
        check.events += 1
        fields = (actor_id, action, case_id, instance_id, task_id, data)
        queued_at = queue.pop(ev_id, None)
        if nonce is not None:  # its own MAC; its link is checked with the links
            good = event_mac(nonce, at, *fields, key=keys["event"]) == digest
            if good and position is None:
                if queued_at is not None and to_utc(queued_at) >= cutoff:
                    check.pending += 1
                else:
                    check._problem("stalled", ev_id)
        else:
            check.in_row += 1
            if prev_hash != previous:
                check._problem("broken", ev_id)
            if ev_id <= sealed_id:
                check.legacy += 1
                matched = legacy_match(prev_hash, at, digest, fields)
                check.legacy_offset += matched == "offset"
                good = matched is not None
                if ev_id == sealed_id:
                    seen_seal_hash = digest
            else:
                good = mac(keys["event"], _payload(prev_hash, to_utc(at).isoformat(),
                                                   *fields)) == digest
            previous = digest
            check.last_id, check.last_hash = ev_id, digest
        if not good:
            check._problem("bad", ev_id)
            bad.add(ev_id)
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
    return previous, bad


def _walk_links(check, keys, previous, bad):
    """Part 3, from `previous`, the hash of the last event chained in the row."""
    expected = 1
    rows = db.session.execute(
        select(AuditChainLink.position, AuditChainLink.event_id, AuditChainLink.prev_hash,
               AuditChainLink.hash, AuditEvent.hash)
        .outerjoin(AuditEvent, AuditEvent.id == AuditChainLink.event_id)
        .order_by(AuditChainLink.position).execution_options(yield_per=1000))
    for position, ev_id, prev_hash, stored, event_digest in rows:
        check.links += 1
        if event_digest is None:
            check._problem("missing", ev_id)
        if prev_hash != previous or position != expected:
            check._problem("broken", ev_id)  # a link removed, inserted or moved before it
        elif event_digest is not None and ev_id not in bad and \
                link_hash(prev_hash, position, ev_id, event_digest, keys["chain"]) != stored:
            check._problem("broken", ev_id)  # the link, or the event under it, was changed
        previous, expected = stored, position + 1
        check.last_id, check.last_hash = ev_id, stored


def check_chain(keys=None):
    """Walk everything (see the module docstring) and return a ChainCheck."""
    keys = keys or subkeys()
    check = ChainCheck()
    seal = legacy_seal(keys, check)
    queue = dict(db.session.execute(select(AuditChainQueue.event_id,
                                           AuditChainQueue.queued_at)).all())
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=chain_lag())
    previous, bad = _walk_events(check, keys, seal, queue, cutoff)
    for ev_id in sorted(queue):  # queued, never linked, and gone
        check._problem("missing", ev_id)
    _walk_links(check, keys, previous, bad)
    duplicated = select(AuditEvent.hash).group_by(AuditEvent.hash) \
        .having(func.count(AuditEvent.id) > 1)
    for ev_id in db.session.scalars(select(AuditEvent.id).where(AuditEvent.hash.in_(duplicated))
                                    .order_by(AuditEvent.id).limit(SHOWN)):
        check._problem("duplicate", ev_id)
    if check.first_problem_id is None:
        check.intact = check.events
    else:
        check.intact = db.session.scalar(select(func.count(AuditEvent.id))
                                         .where(AuditEvent.id < check.first_problem_id))
    return check


def first_problem(check):
    """(events before the first problem, that event — an unsaved stand-in when it is gone —
    or None)."""
    if check.first_problem_id is None:
        return check.intact, None
    found = db.session.get(AuditEvent, check.first_problem_id)
    if found is None:
        found = AuditEvent(id=check.first_problem_id, action="(missing)")
    return check.intact, found
