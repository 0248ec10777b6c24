"""The keyed audit chain: times normalised to UTC, HMAC with a key outside the database, the
seal over events hashed before it, anchors of the head outside the database — and every way
of tampering a database writer has (edit, re-chain, truncate, empty) detected. Both databases.

Since migration 0013 an event carries its own MAC and is linked in `audit_chain` by the
chainer (the worker, or before every anchor); `chained()` below does what the worker does.
Attacks on linked events go through `delete_events()`, which removes the links too (the
foreign key requires it)."""
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import event as sa_event
from sqlalchemy import text

from audit import keys as audit_keys
from audit.anchors import anchor_if_due, anchor_path, read_file_anchors, write_anchor
from audit.chaining import chain_head, chain_pending
from audit.models import AuditAnchor, AuditChainLink, AuditEvent, AuditLegacySeal
from audit.operations import (GENESIS, event_hash, event_mac, legacy_hash, record, to_utc,
                              verify_chain)
from audit.verification import verify
from extensions import db
from tests.conftest import is_postgres
from workflows import clock
from workflows.clock import BEIJING

UTC = dt.timezone.utc
BAKER = dt.timezone(dt.timedelta(hours=-12))
NEPAL = dt.timezone(dt.timedelta(hours=5, minutes=45))


def events(n, action="test.event", **data):
    for i in range(n):
        record(action, data={"i": i, **data})
    db.session.commit()


def chained(n, action="test.event", **data):
    """n events, linked in the chain as the worker's next sweep would."""
    events(n, action, **data)
    chain_pending()


def tamper(app, *statements, tables=("audit_events", "audit_chain")):
    """Run SQL the application never runs; on PostgreSQL the append-only triggers must be
    disabled first (as a superuser), as tests/test_setup.py does."""
    if is_postgres(app):
        for table in tables:
            db.session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
    for statement, params in statements:
        db.session.execute(text(statement), params)
    if is_postgres(app):
        for table in tables:
            db.session.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
    db.session.commit()
    db.session.expire_all()


def as_json(app):
    """SQL for a JSON parameter :d (PostgreSQL will not take text for a json column)."""
    return "CAST(:d AS json)" if is_postgres(app) else ":d"


def delete_events(app, where, params, tables=("audit_events", "audit_chain")):
    """Delete events and their links, as a database writer hiding them would."""
    tamper(app, (f"DELETE FROM audit_chain WHERE event_id IN (SELECT id FROM audit_events "
                 f"WHERE {where})", params),
           (f"DELETE FROM audit_events WHERE {where}", params), tables=tables)


def cli_verify(app):
    return app.test_cli_runner().invoke(args=["audit", "verify"])


def last_ids(n):
    return [e.id for e in AuditEvent.query.order_by(AuditEvent.id.desc()).limit(n)]


# --- UTC normalisation ----------------------------------------------------------------------

@pytest.mark.parametrize("moment", [
    dt.datetime(2026, 12, 3, 9, 30, tzinfo=BEIJING),
    dt.datetime(2026, 12, 3, 9, 30, tzinfo=BAKER),
    dt.datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=NEPAL),
    dt.datetime(2026, 12, 3, 9, 30),          # naive: taken as UTC
    dt.datetime(2026, 12, 3, 9, 30, tzinfo=UTC),
])
def test_every_offset_is_stored_and_hashed_as_utc(app, moment):
    instant = to_utc(moment)
    with clock.frozen_at(moment):
        record("test.offset", data={"given": moment.isoformat()})
    db.session.commit()
    db.session.expire_all()
    stored = AuditEvent.query.one()
    # Read back, the stored time is the same instant, and its hash agrees with it.
    assert to_utc(stored.at) == instant
    assert stored.hash == event_mac(stored.nonce, instant, None, "test.offset", None, None,
                                    None, {"given": moment.isoformat()})
    if not is_postgres(app):  # SQLite keeps the UTC digits, not the caller's wall clock
        raw = db.session.execute(text("SELECT at FROM audit_events")).scalar()
        assert raw.startswith(instant.strftime("%Y-%m-%d %H:%M:%S"))
    assert verify_chain() == (1, None)


def test_the_same_instant_hashes_the_same_whatever_the_offset():
    fields = (None, "x", None, None, None, {})
    instant = dt.datetime(2026, 12, 3, 1, 30, tzinfo=UTC)
    key = b"k" * 32
    for digest in (lambda at: event_hash(GENESIS, at, *fields, key=key),
                   lambda at: event_mac("n" * 32, at, *fields, key=key)):
        hashes = {digest(at) for at in (
            instant, instant.replace(tzinfo=None), instant.astimezone(BEIJING),
            instant.astimezone(BAKER))}
        assert len(hashes) == 1


def test_events_with_mixed_offsets_verify(app):
    for moment in (dt.datetime(2026, 12, 3, 9, 30, tzinfo=BEIJING),
                   dt.datetime(2026, 12, 2, 9, 30, tzinfo=BAKER),
                   dt.datetime(2026, 12, 3, 2, 0),
                   dt.datetime(2026, 12, 3, 3, 0, tzinfo=NEPAL)):
        with clock.frozen_at(moment):
            events(2, given=moment.isoformat())
    db.session.expire_all()
    result = cli_verify(app)
    assert result.exit_code == 0, result.output
    assert "audit chain intact: 8 events" in result.output


def test_timers_run_as_of_with_an_offset_then_daily_and_worker_verify(app, deployed):
    """The README's own commands, the one the chain used to break on among them."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    fired = runner.invoke(args=["timers", "run", "--as-of", "2026-12-03T09:30:00+08:00"])
    assert fired.exit_code == 0 and "0 timer(s)" not in fired.output, fired.output
    again = runner.invoke(args=["timers", "run", "--as-of", "2026-12-20T09:30:00-12:00"])
    assert again.exit_code == 0, again.output
    assert runner.invoke(args=["daily", "--as-of", "2026-12-04"]).exit_code == 0
    worker = runner.invoke(args=["worker", "--once"])
    assert worker.exit_code == 0 and "audit anchored" in worker.output, worker.output
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    result = cli_verify(app)
    assert result.exit_code == 0, result.output
    assert "audit chain intact" in result.output
    fired_at = [to_utc(e.at) for e in AuditEvent.query.filter_by(action="timer.fired")]
    assert dt.datetime(2026, 12, 3, 1, 30, tzinfo=UTC) in fired_at


# --- keyed chain: edits and re-chaining -----------------------------------------------------

@pytest.mark.parametrize("link_first", [True, False], ids=["linked", "not-linked-yet"])
def test_an_edited_event_is_reported_with_its_id(app, link_first):
    (chained if link_first else events)(10)
    victim = AuditEvent.query.order_by(AuditEvent.id).offset(4).first()
    tamper(app, (f"UPDATE audit_events SET data = {as_json(app)} WHERE id = :i",
                 {"d": json.dumps({"i": 999}), "i": victim.id}))
    report = verify()
    assert report.codes() == ["hash_mismatch"]
    assert report.findings[0].event_id == victim.id
    result = cli_verify(app)
    assert result.exit_code == 1 and f"first at event {victim.id}" in result.output


def _rechain_plain(app, edit_id, new_data):
    """What a database writer without the key can do: edit an event and recompute every
    hash from there on the old way (plain SHA-256), links included."""
    rows = AuditEvent.query.order_by(AuditEvent.id).all()
    prev, statements = GENESIS, []
    for ev in rows:
        data = new_data if ev.id == edit_id else ev.data
        if ev.id >= edit_id:
            digest = legacy_hash(prev, to_utc(ev.at).isoformat(), ev.actor_id, ev.action,
                                 ev.case_id, ev.instance_id, ev.task_id, data)
            statements.append((f"UPDATE audit_events SET data = {as_json(app)}, "
                               "prev_hash = :p, hash = :h WHERE id = :i",
                               {"d": json.dumps(data), "p": prev, "h": digest, "i": ev.id}))
            prev = digest
        else:
            prev = ev.hash
    tamper(app, *statements)


def test_re_chaining_with_plain_sha256_is_detected(app, new_loan):
    new_loan()
    chained(5)
    victim = AuditEvent.query.filter_by(action="case.created").one()
    _rechain_plain(app, victim.id, {"loan_no": "forged"})
    # The links hold (they were recomputed), but without the key no hash is right.
    report = verify()
    assert "chain_broken" not in report.codes()
    assert report.codes() == ["hash_mismatch"] and report.findings[0].event_id == victim.id
    count, bad = verify_chain()
    assert bad is not None and bad.id == victim.id
    assert cli_verify(app).exit_code == 1


def test_re_chaining_before_the_last_anchor_also_contradicts_it(app):
    events(20)
    write_anchor()
    victim_id = last_ids(10)[-1]
    _rechain_plain(app, victim_id, {"i": "forged"})
    # The anchored link no longer holds over the anchored event's new hash.
    assert set(verify().codes()) == {"hash_mismatch", "anchor_mismatch"}


def test_a_removed_event_in_the_middle_breaks_the_links(app):
    chained(10)
    victim = last_ids(5)[-1]
    delete_events(app, "id = :i", {"i": victim})
    report = verify()
    assert report.codes() == ["chain_broken"]
    assert report.findings[0].event_id == victim + 1
    count, bad = verify_chain()
    assert (count, bad.id) == (5, victim + 1)


def test_a_removed_event_whose_link_stays_is_reported_missing(app):
    chained(10)
    victim = last_ids(5)[-1]
    if is_postgres(app):  # the foreign key refuses; only a superuser can go around it
        tamper(app, ("SET session_replication_role = replica", {}),
               ("DELETE FROM audit_events WHERE id = :i", {"i": victim}),
               ("SET session_replication_role = DEFAULT", {}))
    else:
        tamper(app, ("PRAGMA foreign_keys = OFF", {}),
               ("DELETE FROM audit_events WHERE id = :i", {"i": victim}))
        db.session.execute(text("PRAGMA foreign_keys = ON"))
    report = verify()
    assert report.codes() == ["events_missing"] and report.findings[0].event_id == victim
    count, bad = verify_chain()
    assert (count, bad.id, bad.action) == (5, victim, "(missing)")
    result = cli_verify(app)
    assert result.exit_code == 1 and f"broken at event {victim}" in result.output


# --- anchors: truncation and emptying -------------------------------------------------------

def test_deleting_the_last_50_events_is_detected_against_the_anchor(app):
    events(80)
    anchor = write_anchor()
    assert (anchor.count, anchor.last_id) == (80, last_ids(1)[0])
    assert verify().ok
    doomed = last_ids(50)
    delete_events(app, "id >= :i", {"i": min(doomed)})
    # What is left is a perfectly linked, correctly keyed chain: only the anchor knows.
    check = verify().check
    assert check.ok and check.events == 30
    report = verify()
    assert report.codes() == ["events_missing"]
    result = cli_verify(app)
    assert result.exit_code == 1
    assert f"50 event(s) missing after the last anchor of {anchor.time.isoformat()}" \
        in result.output


def test_a_truncated_tail_stays_detected_after_new_events(app):
    """SQLite reuses the ids of deleted rows; new events then chain on the cut head."""
    events(60)
    write_anchor()
    delete_events(app, "id > :i", {"i": last_ids(60)[-1] + 9})
    events(55, action="test.after")
    report = verify()
    assert report.check.ok and report.check.pending == 55
    assert set(report.codes()) & {"events_missing", "anchor_mismatch"}, report.findings
    assert cli_verify(app).exit_code == 1
    chain_pending()  # linked on the cut head: still contradicts the anchor
    report = verify()
    assert report.check.ok and report.check.pending == 0
    assert set(report.codes()) & {"events_missing", "anchor_mismatch"}, report.findings


def test_an_emptied_chain_is_detected_even_without_the_anchor_table(app):
    events(30)
    anchor = write_anchor()
    tamper(app, ("DELETE FROM audit_chain", {}), ("DELETE FROM audit_events", {}),
           ("DELETE FROM audit_anchors", {}),
           tables=("audit_events", "audit_chain", "audit_anchors"))
    assert AuditAnchor.query.count() == 0
    report = verify()
    assert report.codes() == ["chain_emptied"]
    result = cli_verify(app)
    assert result.exit_code == 1 and "the audit chain is empty" in result.output
    assert anchor.time.isoformat() in result.output


def test_an_empty_chain_without_anchors_is_fine(app):
    assert verify().ok and cli_verify(app).exit_code == 0


def test_anchor_file_format_and_permissions(app):
    events(3)
    result = app.test_cli_runner().invoke(args=["audit", "anchor"])
    assert result.exit_code == 0 and "anchored 3 event(s)" in result.output
    path = anchor_path()
    assert path == Path(app.config["AUDIT_ANCHOR_FILE"])
    assert path.stat().st_mode & 0o077 == 0
    (line,) = path.read_text().splitlines()
    fields = json.loads(line)
    assert set(fields) == {"time", "count", "last_id", "last_hash", "mac"}
    # The head of the chain: its last link, over the newest event (linked before anchoring).
    head = AuditChainLink.query.order_by(AuditChainLink.position.desc()).first()
    assert head.position == 3 and head.event_id == last_ids(1)[0]
    assert (fields["count"], fields["last_id"], fields["last_hash"]) == (3, head.event_id,
                                                                         head.hash)
    assert chain_head() == (3, head.event_id, head.hash)
    row = AuditAnchor.query.one()
    assert (row.event_count, row.last_event_id, row.mac) == (3, head.event_id, fields["mac"])
    # Anchoring adds no audit event, so the head it records stays the head.
    assert AuditEvent.query.count() == 3


def test_an_edited_or_lost_anchor_file_is_reported(app):
    events(5)
    write_anchor()
    events(5)
    write_anchor()
    path = anchor_path()
    lines = path.read_text().splitlines()
    forged = json.loads(lines[1])
    forged["count"] = 7  # someone with the file but not the key
    path.write_text(lines[0] + "\n" + json.dumps(forged) + "\n")
    anchors, bad = read_file_anchors()
    assert len(anchors) == 1 and bad == [2]
    assert set(verify().codes()) == {"anchor_file_corrupt", "anchor_file_behind"}
    path.unlink()  # the file lost: the copies in the database say so
    assert verify().codes() == ["anchor_file_behind"]


def test_after_restoring_a_backup_the_administrator_starts_a_new_anchor_file(app):
    events(10)
    write_anchor()
    events(5)
    write_anchor()
    tamper(app, ("DELETE FROM audit_chain WHERE position > 10", {}),
           ("DELETE FROM audit_events WHERE id > :i", {"i": last_ids(5)[-1] - 1}),
           ("DELETE FROM audit_anchors WHERE event_count > 10", {}),
           tables=("audit_events", "audit_chain", "audit_anchors"))  # as the backup had it
    assert verify().codes() == ["events_missing"]
    path = anchor_path()
    path.rename(path.with_name("anchors.before-restore.log"))  # kept with the incident record
    assert app.test_cli_runner().invoke(args=["audit", "anchor"]).exit_code == 0
    assert verify().ok


def test_the_worker_anchors_at_most_every_period(app, monkeypatch):
    events(2)
    monkeypatch.setitem(app.config, "AUDIT_ANCHOR_EVERY", 3600)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["worker", "--once"])
    second = runner.invoke(args=["worker", "--once"])
    assert "audit anchored" in first.output and "audit anchored" not in second.output
    assert len(anchor_path().read_text().splitlines()) == 1
    # An anchor older than the period: the next sweep writes another.
    path = anchor_path()
    old = json.loads(path.read_text())
    old["time"] = "2020-01-01T00:00:00+00:00"
    path.write_text(json.dumps(old) + "\n")
    assert anchor_if_due() is not None
    monkeypatch.setitem(app.config, "AUDIT_ANCHOR_EVERY", 0)  # 0 turns it off
    path.unlink()
    assert anchor_if_due() is None and not path.exists()


def test_a_failing_anchor_never_stops_the_worker(app, monkeypatch, tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    monkeypatch.setitem(app.config, "AUDIT_ANCHOR_FILE", str(blocked / "anchors.log"))
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output


class _Hook(BaseHTTPRequestHandler):
    received = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_anchors_go_to_the_webhook_and_a_dead_one_does_not_block(app, monkeypatch):
    events(4)
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setitem(app.config, "AUDIT_ANCHOR_WEBHOOK",
                            f"http://127.0.0.1:{server.server_port}/anchor")
        anchor = write_anchor(wait_for_webhook=True)
    finally:
        server.shutdown()
        server.server_close()
    ((content_type, body),) = _Hook.received
    assert content_type == "application/json"
    assert body == json.loads(anchor.line())
    monkeypatch.setitem(app.config, "AUDIT_ANCHOR_WEBHOOK",
                        f"http://127.0.0.1:{server.server_port}/gone")
    result = app.test_cli_runner().invoke(args=["audit", "anchor"])
    assert result.exit_code == 0, result.output
    assert len(anchor_path().read_text().splitlines()) == 2 and verify().ok


# --- the append path: one insert, no lock, no read --------------------------------------------

def test_appending_costs_no_extra_round_trip(app):
    events(1)  # the key is loaded and cached
    statements = []

    def count(_conn, _cursor, statement, _params, _context, _executemany):
        statements.append(statement)

    sa_event.listen(db.engine, "before_cursor_execute", count)
    try:
        for i in range(5):
            record("test.batch", data={"i": i})
        db.session.commit()
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", count)
    # No chain lock, no read of the head: the inserts only (one batched statement or one
    # per row), the trigger queueing them for the chainer inside the database.
    assert statements and all(s.startswith("INSERT INTO audit_events") for s in statements), \
        statements
    assert len(statements) <= 5, statements
    assert db.session.scalar(text("SELECT count(*) FROM audit_chain_queue")) == 6


# --- the key ---------------------------------------------------------------------------------

@pytest.fixture
def key_file(app, monkeypatch, tmp_path):
    """The key from a file in an empty folder instead of the test configuration."""
    monkeypatch.delitem(app.config, "AUDIT_KEY")
    monkeypatch.delenv("AUDIT_KEY", raising=False)
    monkeypatch.setitem(app.config, "AUDIT_KEY_FILE", str(tmp_path / "audit_key"))
    audit_keys.forget(app)
    yield tmp_path / "audit_key"
    audit_keys.forget(app)


def test_the_key_file_is_generated_once_private_and_outside_the_database(app, key_file):
    events(2)
    assert key_file.stat().st_mode & 0o077 == 0
    key = key_file.read_text().strip()
    assert len(key) == 64
    audit_keys.forget(app)
    events(1)
    assert key_file.read_text().strip() == key and verify().ok


def test_a_lost_key_is_not_silently_replaced(app, key_file):
    events(2)
    key_file.unlink()
    audit_keys.forget(app)
    with pytest.raises(audit_keys.AuditKeyError, match="restore it from the backup"):
        events(1)
    db.session.rollback()
    assert not key_file.exists()


def test_another_key_fails_every_keyed_event(app, monkeypatch):
    events(3)
    monkeypatch.setitem(app.config, "AUDIT_KEY", "another-key-of-enough-length-0123")
    audit_keys.forget(app)
    try:
        report = verify()
    finally:
        audit_keys.forget(app)
    assert report.codes() == ["hash_mismatch"] and report.check.bad_count == 3


# --- events from before the keyed chain -----------------------------------------------------

def _insert_legacy(count, offset_moment=None):
    """Events as the application wrote them before 0006: plain SHA-256 over the time as given
    (an offset time kept its offset in the hash; SQLite stored its wall-clock digits)."""
    prev = GENESIS
    base = dt.datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    for i in range(count):
        at = offset_moment if (offset_moment and i == count // 2) else \
            base + dt.timedelta(minutes=i)
        data = {"i": i}
        digest = legacy_hash(prev, at.isoformat(), None, "legacy.event", None, None, None,
                             data)
        db.session.execute(AuditEvent.__table__.insert().values(
            at=at, action="legacy.event", data=data, prev_hash=prev, hash=digest))
        prev = digest
    db.session.commit()


def test_events_from_before_the_keyed_chain_keep_verifying(app):
    db.session.remove()
    downgrade(revision="0005")
    try:
        _insert_legacy(12, offset_moment=dt.datetime(2026, 3, 1, 9, 30, tzinfo=BEIJING))
        db.session.remove()
    finally:
        upgrade()
    seal = AuditLegacySeal.query.one()
    legacy_ids = [e.id for e in AuditEvent.query.order_by(AuditEvent.id)]
    assert (seal.last_event_id, seal.event_count) == (legacy_ids[-1], 12)
    events(5)
    write_anchor()
    report = verify()
    assert report.ok, report.findings
    assert (report.check.legacy, report.check.legacy_offset) == (12, 1)
    result = cli_verify(app)
    assert result.exit_code == 0 and "12 from before the keyed chain" in result.output

    # Re-chaining the old part the old way: the seal and the first keyed event object, and
    # the first link, made over the old part's last hash.
    _rechain_plain(app, legacy_ids[3], {"i": "forged"})
    assert set(verify().codes()) == {"legacy_seal", "hash_mismatch", "anchor_mismatch",
                                     "chain_broken"}
    assert cli_verify(app).exit_code == 1


def test_a_downgrade_and_upgrade_seals_the_same_old_events(app):
    db.session.remove()
    downgrade(revision="0005")
    try:
        _insert_legacy(4)
        db.session.remove()
    finally:
        upgrade()
    events(3)
    first = AuditLegacySeal.query.one()
    boundary = (first.last_event_id, first.event_count)
    db.session.remove()
    downgrade(revision="0005")  # drops the seal; the keyed events stay
    upgrade()
    assert (AuditLegacySeal.query.one().last_event_id,
            AuditLegacySeal.query.one().event_count) == boundary
    assert verify().ok


def test_removing_or_forging_the_seal_is_detected(app):
    db.session.remove()
    downgrade(revision="0005")
    try:
        _insert_legacy(6)
        db.session.remove()
    finally:
        upgrade()
    events(2)
    assert verify().ok
    seal = AuditLegacySeal.query.one()
    # Moving the seal forward would let keyed events pass as plain SHA-256: its MAC says no.
    tamper(app, ("UPDATE audit_legacy_seals SET last_event_id = :i, event_count = 8",
                 {"i": seal.last_event_id + 2}), tables=("audit_legacy_seals",))
    assert "legacy_seal" in verify().codes()
    # Without a seal every event must be keyed: the old ones are reported.
    tamper(app, ("DELETE FROM audit_legacy_seals", {}), tables=("audit_legacy_seals",))
    report = verify()
    assert report.codes() == ["hash_mismatch"] and report.check.bad_count == 6


def test_appending_is_refused_by_the_database_on_postgresql(app):
    if not is_postgres(app):
        pytest.skip("the append-only triggers exist on PostgreSQL")
    from sqlalchemy.exc import DBAPIError
    events(2)
    write_anchor()
    for statement in ("UPDATE audit_anchors SET event_count = 0",
                      "DELETE FROM audit_anchors"):
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
