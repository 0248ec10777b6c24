"""The chainer (audit/chaining.py): events sealed on their own at commit, linked later in
commit order — every attack on the links detected, two chainers at once linking each event
exactly once, and any interleaving of appends, commits and chaining leaving a chain that
verifies. Both databases."""
import datetime as dt
import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from audit.anchors import write_anchor
from audit.chaining import chain_pending
from audit.models import AuditChainLink, AuditChainQueue, AuditEvent
from audit.operations import _write_pending, record
from audit.verification import verify
from extensions import db
from tests.conftest import is_postgres
from tests.test_audit_chain import as_json, chained, cli_verify, events, tamper


T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.timezone.utc)


def tamper_raw(app, *statements):
    """tamper() with the foreign keys off too (a superuser on PostgreSQL)."""
    if is_postgres(app):
        tamper(app, ("SET session_replication_role = replica", {}), *statements,
               ("SET session_replication_role = DEFAULT", {}), tables=())
    else:
        tamper(app, ("PRAGMA foreign_keys = OFF", {}), *statements, tables=())
        db.session.execute(text("PRAGMA foreign_keys = ON"))


def late_event(session, n=None):
    """Queue an event in another session's transaction (record() uses the test's)."""
    session.info.setdefault("audit_pending", []).append(dict(
        at=T0, actor_id=None, action="test.late", case_id=None, instance_id=None,
        task_id=None, data={} if n is None else {"n": n}))


def links():
    return db.session.execute(select(AuditChainLink.position, AuditChainLink.event_id)
                              .order_by(AuditChainLink.position)).all()


def assert_linked_once(expected_count):
    rows = links()
    assert [p for p, _ in rows] == list(range(1, expected_count + 1))
    event_ids = [e for _, e in rows]
    assert len(set(event_ids)) == expected_count
    assert set(event_ids) == set(db.session.scalars(select(AuditEvent.id)))
    assert db.session.scalar(select(func.count()).select_from(AuditChainQueue)) == 0


# --- the append path and the chainer --------------------------------------------------------

def test_events_wait_in_the_queue_until_linked_and_verify_meanwhile(app):
    events(3)
    assert links() == [] and AuditChainQueue.query.count() == 3
    report = verify()
    assert report.ok and report.check.pending == 3 and report.check.events == 3
    assert "3 event(s) not linked in the chain yet" in cli_verify(app).output
    assert chain_pending() == 3 and chain_pending() == 0  # idempotent
    assert_linked_once(3)
    assert verify().ok and verify().check.pending == 0
    result = app.test_cli_runner().invoke(args=["audit", "chain"])
    assert result.exit_code == 0 and "chained 0 event(s)" in result.output


def test_two_identical_events_get_different_macs(app):
    record("test.same", data={"x": 1})
    record("test.same", data={"x": 1})
    db.session.commit()
    first, second = AuditEvent.query.order_by(AuditEvent.id).all()
    assert first.nonce != second.nonce and first.hash != second.hash
    assert first.prev_hash is None and second.prev_hash is None


def test_the_chainer_works_in_batches_and_the_worker_runs_it(app):
    events(23)
    assert chain_pending(batch=5) == 23
    assert_linked_once(23)
    events(4)
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0 and "audit chained: " in result.output  # with the daily run's
    assert_linked_once(AuditEvent.query.count())
    assert verify().ok


def test_a_rolled_back_transaction_leaves_nothing_to_link(app):
    record("test.gone")
    db.session.rollback()
    events(1)
    assert chain_pending() == 1 and verify().ok


# --- attacks on events and links ------------------------------------------------------------

def test_a_forged_event_is_not_linked_and_is_reported(app):
    chained(5)
    # Someone who can write to the database but has no key: a plausible nonce and MAC.
    db.session.execute(text(
        f"INSERT INTO audit_events (at, action, data, hash, nonce) VALUES "
        f"(CURRENT_TIMESTAMP, 'loan.written_off', {as_json(app)}, :h, :n)"),
        {"d": json.dumps({"loan_no": "L-9"}), "h": "ab" * 32, "n": "cd" * 16})
    db.session.commit()
    forged = AuditEvent.query.filter_by(action="loan.written_off").one()
    assert chain_pending() == 0  # checked, not linked, taken off the queue
    assert AuditChainQueue.query.count() == 0 and len(links()) == 5
    report = verify()
    assert report.codes() == ["hash_mismatch"] and report.findings[0].event_id == forged.id
    assert cli_verify(app).exit_code == 1


def test_an_edited_link_is_reported(app):
    chained(8)
    position, victim = links()[3]
    tamper(app, ("UPDATE audit_chain SET hash = :h WHERE position = :p",
                 {"h": "00" * 32, "p": position}))
    report = verify()
    assert report.codes() == ["chain_broken"]
    assert report.findings[0].event_id == victim  # its own hash, then the next prev_hash
    assert report.check.broken_ids == [victim, links()[4][1]]


def test_a_recomputed_link_without_the_key_is_reported(app):
    """The attacker rewrites a link so that the next link's prev_hash still matches."""
    chained(6)
    rows = AuditChainLink.query.order_by(AuditChainLink.position).all()
    victim = rows[2]
    tamper(app, ("UPDATE audit_chain SET prev_hash = :p WHERE position = :n",
                 {"p": "11" * 32, "n": victim.position}))
    report = verify()
    assert report.codes() == ["chain_broken"] and report.findings[0].event_id == victim.event_id


def test_reordered_links_are_reported(app):
    chained(6)
    (_, a), (_, b) = links()[1:3]
    tamper_raw(app, ("UPDATE audit_chain SET event_id = -1 WHERE event_id = :a", {"a": a}),
               ("UPDATE audit_chain SET event_id = :a WHERE event_id = :b", {"a": a, "b": b}),
               ("UPDATE audit_chain SET event_id = :b WHERE event_id = -1", {"b": b}))
    report = verify()
    assert report.codes() == ["chain_broken"]
    assert set(report.check.broken_ids) == {a, b}


def test_swapped_event_contents_are_reported(app):
    """Each event keeps a valid MAC, but no longer the one its link was made over."""
    chained(5)
    first, second = AuditEvent.query.order_by(AuditEvent.id).limit(2).all()
    swap = f"UPDATE audit_events SET data = {as_json(app)}, nonce = :n, hash = :h WHERE id = :i"
    tamper(app, ("UPDATE audit_events SET hash = 'x' WHERE id = :i", {"i": first.id}),
           *[(swap, {"d": json.dumps(src.data), "n": src.nonce, "h": src.hash, "i": dst.id})
             for dst, src in ((second, first), (first, second))])
    report = verify()
    assert report.codes() == ["chain_broken"]
    assert set(report.check.broken_ids) == {first.id, second.id}


def test_a_link_removed_in_the_middle_is_reported(app):
    chained(6)
    position, victim = links()[2]
    tamper(app, ("DELETE FROM audit_chain WHERE position = :p", {"p": position}))
    report = verify()
    # The next link no longer follows, and the event is no longer linked nor queued.
    assert report.codes() == ["chain_broken", "chain_stalled"]
    assert report.check.broken_ids == [links()[2][1]] and report.check.stalled_ids == [victim]


def test_a_renumbered_tail_is_reported(app):
    """Removing a link and moving the later ones up: positions and prev_hash both break."""
    chained(5)
    tamper(app, ("DELETE FROM audit_chain WHERE position = 2", {}),
           ("UPDATE audit_chain SET position = position - 1 WHERE position > 2", {}))
    assert "chain_broken" in verify().codes()


def test_deleting_the_newest_links_and_events_is_caught_by_the_anchor(app):
    chained(12)
    write_anchor()
    doomed = [e for _, e in links()[-3:]]
    tamper(app, ("DELETE FROM audit_chain WHERE position > 9", {}),
           ("DELETE FROM audit_events WHERE id >= :i", {"i": min(doomed)}))
    report = verify()
    assert report.check.ok and report.codes() == ["events_missing"]
    assert "3 event(s) missing after the last anchor" in report.findings[0].message


def test_re_linking_without_an_anchored_event_is_caught_by_the_anchor(app):
    """The chainer as an oracle: links cut from before an anchored event, one event deleted,
    the others queued again and re-linked with the key — the anchored link has moved."""
    chained(10)
    write_anchor()
    position, victim = links()[4]
    tamper(app, (f"DELETE FROM audit_chain WHERE position >= {position}", {}),
           ("DELETE FROM audit_events WHERE id = :i", {"i": victim}),
           ("INSERT INTO audit_chain_queue (event_id) SELECT id FROM audit_events "
            "WHERE id NOT IN (SELECT event_id FROM audit_chain)", {}))
    assert chain_pending() == 5
    report = verify()
    assert report.check.ok  # a chain that holds, re-made with the key…
    assert set(report.codes()) == {"events_missing", "anchor_mismatch"}  # …but not the anchored


def test_deleting_the_newest_links_only_is_caught_too(app):
    chained(12)
    write_anchor()
    tamper(app, ("DELETE FROM audit_chain WHERE position > 9", {}))
    report = verify()
    assert set(report.codes()) == {"events_missing", "chain_stalled"}


def test_an_unlinked_event_deleted_from_the_queue_list_only_is_reported(app):
    chained(3)
    events(2)
    gone = AuditEvent.query.order_by(AuditEvent.id.desc()).first().id
    tamper(app, ("DELETE FROM audit_events WHERE id = :i", {"i": gone}))
    report = verify()
    assert report.codes() == ["events_missing"] and report.findings[0].event_id == gone
    chain_pending()  # the stale queue entry stays: the evidence is kept
    assert "events_missing" in verify().codes()


def test_events_left_unlinked_too_long_are_reported(app, monkeypatch):
    events(2)
    assert verify().ok
    monkeypatch.setitem(app.config, "AUDIT_CHAIN_LAG", -1)  # every queued event is late
    report = verify()
    assert report.codes() == ["chain_stalled"] and report.check.stalled_count == 2
    assert report.check.ok  # nothing tampered: a worker to restart
    chain_pending()
    assert verify().ok
    # An event taken off the queue without being linked never will be: reported at once.
    monkeypatch.setitem(app.config, "AUDIT_CHAIN_LAG", 600)
    events(1)
    tamper(app, ("DELETE FROM audit_chain_queue", {}), tables=())
    assert verify().codes() == ["chain_stalled"]


def test_a_replayed_event_is_reported(app):
    if not is_postgres(app):
        pytest.skip("SQLite cannot drop the unique constraint on audit_events.hash in place")
    chained(3)
    original = AuditEvent.query.order_by(AuditEvent.id).first()
    tamper(app, ("ALTER TABLE audit_events DROP CONSTRAINT uq_audit_events_hash", {}),
           ("INSERT INTO audit_events (at, action, data, hash, nonce) "
            "SELECT at, action, data, hash, nonce FROM audit_events WHERE id = :i",
            {"i": original.id}), tables=())  # the queueing trigger stays on
    chain_pending()  # the copy's MAC holds: it is linked, and reported
    try:
        report = verify()
        assert report.codes() == ["event_replayed"]
        assert len(report.check.duplicate_ids) == 2
    finally:
        tamper(app, ("DELETE FROM audit_chain WHERE event_id = "
                     "(SELECT max(id) FROM audit_events)", {}),
               ("DELETE FROM audit_events WHERE id = (SELECT max(id) FROM audit_events)", {}),
               ("ALTER TABLE audit_events ADD CONSTRAINT uq_audit_events_hash UNIQUE (hash)",
                {}))


# --- commit order, concurrency --------------------------------------------------------------

def test_a_smaller_id_committed_later_gets_a_later_position(app):
    if not is_postgres(app):
        pytest.skip("SQLite has one writer at a time: ids follow commit order")
    late = Session(bind=db.engine)  # a second transaction, like another process
    try:
        late_event(late)
        _write_pending(late)  # its id is taken now; it commits after the others
        events(2)
        chain_pending()
        late.commit()
    finally:
        late.close()
    chain_pending()
    rows = links()
    late_id = AuditEvent.query.filter_by(action="test.late").one().id
    assert rows[-1][1] == late_id and late_id < rows[0][1]
    assert verify().ok


def _in_context(app, work):
    def run():
        with app.app_context():
            work()
    return run


def test_two_chainers_at_once_link_each_event_once(app):
    events(600)
    barrier = threading.Barrier(2)
    made, errors = [], []

    def chainer():
        try:
            barrier.wait()
            made.append(chain_pending(batch=50))
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=_in_context(app, chainer)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sum(made) == 600
    db.session.expire_all()
    assert_linked_once(600)
    assert verify().ok


def test_chainers_racing_writers_link_every_committed_event_once(app):
    writers_done = threading.Event()
    errors = []

    def writer(tag):
        try:
            for i in range(40):
                record("test.race", data={"w": tag, "i": i})
                record("test.race", data={"w": tag, "i": i, "second": True})
                db.session.commit()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    def chainer():
        try:
            while not writers_done.is_set():
                chain_pending(batch=7)
            chain_pending(batch=7)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    writers = [threading.Thread(target=_in_context(app, lambda t=t: writer(t)))
               for t in range(3)]
    chainers = [threading.Thread(target=_in_context(app, chainer)) for _ in range(2)]
    for thread in writers + chainers:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    for thread in chainers:
        thread.join()
    assert not errors, errors
    chain_pending()
    db.session.expire_all()
    assert_linked_once(3 * 40 * 2)
    report = verify()
    assert report.ok and report.check.links == 240


# --- any interleaving -----------------------------------------------------------------------

def _empty_audit(app):
    db.session.rollback()
    if is_postgres(app):
        db.session.execute(text("TRUNCATE audit_chain, audit_chain_queue, audit_events "
                                "RESTART IDENTITY"))
    else:
        for table in ("audit_chain", "audit_chain_queue", "audit_events"):
            db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


STEPS = st.lists(st.one_of(
    st.tuples(st.just("record"), st.integers(1, 4)),
    st.tuples(st.just("commit")), st.tuples(st.just("rollback")),
    st.tuples(st.just("chain"), st.integers(1, 5)),
    st.tuples(st.just("late_record"), st.integers(1, 3)),   # a second transaction
    st.tuples(st.just("late_insert")), st.tuples(st.just("late_commit")),
), max_size=25)


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(steps=STEPS)
def test_any_interleaving_leaves_a_chain_with_every_committed_event_once(app, steps):
    """record/commit/rollback/chain in the test's session; on PostgreSQL a second session
    whose events take their ids early and commit late, across chainer runs."""
    _empty_audit(app)
    postgres = is_postgres(app)
    late = Session(bind=db.engine) if postgres else None
    committed, pending, late_pending, late_inserted, counter = set(), [], [], [], [0]

    def next_n():
        counter[0] += 1
        return counter[0]

    try:
        for step in steps:
            kind = step[0]
            if kind == "record":
                for _ in range(step[1]):
                    n = next_n()
                    record("test.prop", data={"n": n})
                    pending.append(n)
            elif kind == "commit" or kind == "chain":
                db.session.commit()
                committed.update(pending)
                pending.clear()
                if kind == "chain":
                    chain_pending(batch=step[1])
            elif kind == "rollback":
                db.session.rollback()
                pending.clear()
            elif not postgres:
                continue
            elif kind == "late_record":
                for _ in range(step[1]):
                    n = next_n()
                    late_event(late, n)
                    late_pending.append(n)
            elif kind == "late_insert":
                _write_pending(late)
                late_inserted.extend(late_pending)
                late_pending.clear()
            elif kind == "late_commit":
                late.commit()
                committed.update(late_inserted + late_pending)
                late_inserted.clear()
                late_pending.clear()
        db.session.commit()
        committed.update(pending)
        if late is not None:
            late.commit()
            committed.update(late_inserted + late_pending)
    finally:
        if late is not None:
            late.close()
    chain_pending(batch=3)
    db.session.expire_all()
    linked = db.session.execute(
        select(AuditEvent.data).join(AuditChainLink, AuditChainLink.event_id == AuditEvent.id)
        .order_by(AuditChainLink.position)).scalars().all()
    assert sorted(d["n"] for d in linked) == sorted(committed)
    assert_linked_once(len(committed))
    report = verify()
    assert report.ok, report.findings
    assert report.check.links == len(committed) and report.check.pending == 0
