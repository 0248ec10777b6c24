"""`flask audit verify`: the chain (every event's MAC, every link, the legacy seal; see
audit/checks.py) and the anchors (the newest links still there, the chain not emptied, the
anchor file intact)."""
from dataclasses import dataclass, field

from sqlalchemy import func, select

from audit.anchors import anchor_path, read_file_anchors, read_table_anchors
from audit.chaining import link_hash
from audit.checks import ChainCheck, check_chain
from audit.keys import subkeys
from audit.models import AuditChainLink, AuditEvent
from extensions import db


@dataclass
class Finding:
    code: str
    message: str
    event_id: int | None = None


@dataclass
class Report:
    check: ChainCheck
    anchors: int = 0                  # valid anchors (file and table, without duplicates)
    last_anchor: object = None
    findings: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.findings

    def codes(self):
        return [f.code for f in self.findings]


def _ids(ids, total):
    shown = ", ".join(str(i) for i in ids)
    return shown + (f", … ({total} in all)" if total > len(ids) else "")


def verify():
    keys = subkeys()
    check = check_chain(keys)
    report = Report(check)
    findings = report.findings
    if check.bad_count:
        findings.append(Finding(
            "hash_mismatch",
            f"{check.bad_count} event(s) whose hash does not match their content (edited, or "
            f"re-hashed without the audit key), first at event {check.bad_ids[0]}: "
            f"{_ids(check.bad_ids, check.bad_count)}", check.bad_ids[0]))
    if check.broken_count:
        findings.append(Finding(
            "chain_broken",
            f"the chain is broken before event {check.broken_ids[0]} (an event or link before "
            f"it was removed, inserted, moved or re-hashed, or its own link edited): "
            f"{_ids(check.broken_ids, check.broken_count)}", check.broken_ids[0]))
    if check.missing_count:
        findings.append(Finding(
            "events_missing",
            f"{check.missing_count} event(s) linked in the chain or queued for it are gone: "
            f"{_ids(check.missing_ids, check.missing_count)}", check.missing_ids[0]))
    if check.duplicate_ids:
        findings.append(Finding(
            "event_replayed",
            f"events carrying the same MAC (a copy of an event under another id): "
            f"{_ids(check.duplicate_ids, len(check.duplicate_ids))}", check.duplicate_ids[0]))
    if check.stalled_count:
        findings.append(Finding(
            "chain_stalled",
            f"{check.stalled_count} event(s) not linked in the chain long after they were "
            "written (is the worker running? `flask audit chain` links them), or never queued: "
            f"{_ids(check.stalled_ids, check.stalled_count)}", check.stalled_ids[0]))
    for problem in check.seal_problems:
        findings.append(Finding("legacy_seal", problem))

    file_anchors, bad_lines = read_file_anchors(keys["anchor"])
    table_anchors, bad_rows = read_table_anchors(keys["anchor"])
    path = anchor_path()
    if bad_lines:
        findings.append(Finding(
            "anchor_file_corrupt",
            f"{path}: line(s) {_ids(bad_lines[:20], len(bad_lines))} are garbled or do not "
            "match their MAC"))
    if bad_rows:
        findings.append(Finding(
            "anchor_row_corrupt",
            f"audit_anchors row(s) {_ids(bad_rows[:20], len(bad_rows))} do not match their MAC"))
    # Anchors the database has and the file lacks, newer than the file's newest: the file
    # was truncated, lost or replaced. (Older ones are not: after restoring a database backup
    # the administrator starts a new file, see the README.)
    def order(anchor):
        return anchor.time, anchor.count
    newest_in_file = max(map(order, file_anchors), default=None)
    only_in_table = [a for a in table_anchors
                     if newest_in_file is None or order(a) > newest_in_file]
    if only_in_table:
        latest = max(only_in_table, key=order)
        findings.append(Finding(
            "anchor_file_behind",
            f"{path} lacks {len(only_in_table)} anchor(s) recorded in the database, the "
            f"latest of {latest.time.isoformat()}: was the file truncated, lost or replaced?"))
    anchors = file_anchors + only_in_table
    report.anchors = len(anchors)
    if not anchors:
        return report
    last = report.last_anchor = max(anchors, key=order)
    when = last.time.isoformat()
    if check.events == 0 and any(a.count for a in anchors):
        findings.append(Finding(
            "chain_emptied",
            f"the audit chain is empty but {len(anchors)} anchor(s) exist; the last anchor of "
            f"{when} recorded {last.count} event(s) up to event {last.last_id}"))
        return report
    if last.last_id is None:
        return report
    present, anchored_hash = _anchored(keys, last.last_id)
    if present < last.count:
        findings.append(Finding(
            "events_missing",
            f"{last.count - present} event(s) missing after the last anchor of {when} (it "
            f"recorded {last.count} event(s) up to event {last.last_id}; {present} remain)",
            last.last_id))
    elif present > last.count:
        findings.append(Finding(
            "events_inserted",
            f"{present - last.count} event(s) more up to event {last.last_id} than the last "
            f"anchor of {when} recorded ({last.count})", last.last_id))
    if anchored_hash is None:
        if present >= last.count:
            findings.append(Finding(
                "events_missing",
                f"event {last.last_id}, the last one anchored at {when}, is missing",
                last.last_id))
    elif anchored_hash != last.last_hash:
        findings.append(Finding(
            "anchor_mismatch",
            f"event {last.last_id} no longer has the hash anchored at {when}: the chain was "
            "cut and rewritten from there", last.last_id))
    return report


def _anchored(keys, last_id):
    """(length of the sequence up to the anchored event, the hash it has there now — None
    when it is gone, or a marker when its link no longer holds over the event)."""
    in_row = select(func.count(AuditEvent.id)).where(AuditEvent.nonce.is_(None))
    link = db.session.execute(
        select(AuditChainLink.position, AuditChainLink.prev_hash, AuditChainLink.hash,
               AuditEvent.hash)
        .outerjoin(AuditEvent, AuditEvent.id == AuditChainLink.event_id)
        .where(AuditChainLink.event_id == last_id)).first()
    if link is not None:
        position, prev_hash, stored, event_digest = link
        present = db.session.scalar(in_row) + db.session.scalar(
            select(func.count()).select_from(AuditChainLink)
            .where(AuditChainLink.position <= position))
        if event_digest is None or \
                link_hash(prev_hash, position, last_id, event_digest, keys["chain"]) != stored:
            return present, "(the link no longer holds over the event)"
        return present, stored
    # Anchored before the first link (an event chained in the row), or its link is gone.
    anchored = db.session.execute(select(AuditEvent.hash).where(
        AuditEvent.id == last_id, AuditEvent.nonce.is_(None))).scalar()
    if anchored is not None:
        return db.session.scalar(in_row.where(AuditEvent.id <= last_id)), anchored
    return db.session.scalar(in_row) + db.session.scalar(
        select(func.count()).select_from(AuditChainLink)), None
