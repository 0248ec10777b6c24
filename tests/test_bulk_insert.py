"""bulk.insert_rows: a COPY (PostgreSQL, many rows) stores exactly what the INSERT stores —
text with tabs, newlines, backslashes and quotes, JSON, money, dates, times with their zone,
NULLs, Python-side defaults — and gives each row the id it was stored under; and
bulk.sparing_collector sets old objects aside from the collector only while a job runs."""
import datetime as dt
import gc
import weakref
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

import bulk
from audit.models import AuditEvent
from extensions import db
from search.models import SearchKey
from tests.conftest import is_postgres

# Any text a row may hold (PostgreSQL text holds no NUL).
TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
               max_size=30)
DATA = st.dictionaries(TEXT, st.one_of(TEXT, st.integers(-10**12, 10**12), st.booleans(),
                                       st.none(), st.lists(TEXT, max_size=3)), max_size=4)


def _event_rows(texts, datas, way):
    at = dt.datetime(2026, 11, 30, 23, 59, 59, 123456, tzinfo=dt.timezone.utc)
    return [dict(at=at + dt.timedelta(seconds=i), actor_id=None, action=text[:60] or "x",
                 case_id=None, instance_id=None, task_id=None, data=data,
                 prev_hash=None, hash=f"{way}{i:063x}", nonce=f"{i:032x}")
            for i, (text, data) in enumerate(zip(texts, datas))]


def _stored(ids):
    found = {e.id: e for e in db.session.scalars(select(AuditEvent).where(
        AuditEvent.id.in_(ids)))}
    return [(found[i].at, found[i].action, found[i].data, found[i].hash[1:], found[i].nonce)
            for i in ids]


def _both_ways(monkeypatch, table, rows_of):
    """Insert rows_of(0) by INSERT and rows_of(1) by COPY: the two lists of rows, ids set."""
    written = []
    for way, threshold in enumerate((10**9, 1)):
        monkeypatch.setattr(bulk, "COPY_FROM", threshold)
        rows = rows_of(way)
        bulk.insert_rows(table, rows, ids=True)
        written.append(rows)
    db.session.flush()
    return written


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(TEXT, DATA), min_size=1, max_size=60))
def test_copy_stores_what_the_insert_stores(app, monkeypatch, pairs):
    texts, datas = [t for t, _d in pairs], [d for _t, d in pairs]
    try:
        by_insert, by_copy = _both_ways(monkeypatch, AuditEvent.__table__,
                                        lambda way: _event_rows(texts, datas, way))
        inserted, copied = [r["id"] for r in by_insert], [r["id"] for r in by_copy]
        assert copied == sorted(copied) and len(set(copied)) == len(pairs)
        assert not set(inserted) & set(copied)
        assert _stored(copied) == _stored(inserted)
        assert [s[2] for s in _stored(copied)] == datas
    finally:
        db.session.rollback()


def test_copy_gives_the_defaults_and_keeps_numbers(app, monkeypatch, new_loan):
    from ledger.models import Charge, Installment
    loan = new_loan("L-BULK")
    installment = db.session.scalars(select(Installment).where(
        Installment.loan_id == loan.id)).first()

    def rows_of(way):  # created_at left to its default; one penalty period per day
        return [dict(loan_id=loan.id, installment_id=installment.id, kind="penalty",
                     source="penalty", amount=Decimal("1234.56") + i, base=Decimal("0.01"),
                     rate=Decimal("0.000500"), period_start=dt.date(2026, 1, 1),
                     period_end=dt.date(2026, 1, 2) + dt.timedelta(days=10 * way + i),
                     note="a\tb\\c\nd 'e'") for i in range(3)]
    by_insert, by_copy = _both_ways(monkeypatch, Charge.__table__, rows_of)
    found = {c.id: c for c in db.session.scalars(select(Charge).where(Charge.id.in_(
        [r["id"] for r in by_insert + by_copy])))}
    for a, b in zip(by_insert, by_copy):
        x, y = found[a["id"]], found[b["id"]]
        assert (x.amount, x.base, x.rate, x.period_start, x.note) == \
            (y.amount, y.base, y.rate, y.period_start, y.note) == \
            (a["amount"], a["base"], a["rate"], a["period_start"], a["note"])
        assert x.created_at is not None and y.created_at is not None
    db.session.rollback()


def test_copy_is_seen_as_a_statement_and_fails_as_an_insert(app, monkeypatch):
    if not is_postgres(app):
        pytest.skip("COPY: PostgreSQL")
    monkeypatch.setattr(bulk, "COPY_FROM", 1)
    seen = []

    def statement(_conn, _cursor, sql, *_args):
        seen.append(sql)
    event.listen(db.engine, "before_cursor_execute", statement)
    try:
        bulk.insert_rows(SearchKey.__table__, [{"key": "k", "loan_id": None, "kind": "name"}])
    except IntegrityError:
        pass  # the key needs a loan: a NOT NULL violation, raised as the INSERT raises it
    else:
        pytest.fail("a NULL loan_id was copied")
    finally:
        event.remove(db.engine, "before_cursor_execute", statement)
        db.session.rollback()
    assert any(sql.startswith("COPY search_keys") for sql in seen)


def test_events_copied_in_bulk_chain_and_verify(app, deployed, users, monkeypatch):
    """A batch of loans written by COPY (audit events included): the chainer links every
    event and the audit verification finds nothing wrong."""
    from audit.chaining import chain_pending
    from audit.verification import verify
    from cases.operations import import_loans
    from tests.test_bulk_intake import row
    monkeypatch.setattr(bulk, "COPY_FROM", 1)
    report = import_loans([(i + 2, row(f"C-{i:03d}")) for i in range(60)], users["admin"])
    assert len(report.imported) == 60 and not report.errors
    events = db.session.scalar(select(func.count()).select_from(AuditEvent))
    assert events >= 180
    assert chain_pending() == events
    result = verify()
    assert result.check.ok and not result.findings, result.findings


def test_update_rows_changes_each_row_as_its_dict_says(app, new_loan):
    """bulk.update_rows: each row gets its own values, expressions read the row's values
    before the change, NULLs are written as NULL, other rows stay as they were."""
    from sqlalchemy import Date, Numeric
    from ledger.models import Installment
    loans = [new_loan(f"L-U{i}") for i in range(3)]
    rows = db.session.scalars(select(Installment).where(Installment.loan_id.in_(
        [loan.id for loan in loans])).order_by(Installment.id)).all()
    before = {row.id: (row.penalty_due, row.paid_off_on) for row in rows}
    changed = rows[::2]
    day = dt.date(2026, 5, 4)
    table = Installment.__table__
    bulk.update_rows(table, [{"id": row.id, "added": Decimal(n) + Decimal("0.25"),
                              "paid_off": day if n % 2 else None}
                             for n, row in enumerate(changed)],
                     {"added": Numeric(18, 2), "paid_off": Date},
                     lambda new: {"penalty_due": table.c.penalty_due + new.added,
                                  "paid_off_on": new.paid_off})
    db.session.expire_all()
    after = {row.id: (row.penalty_due, row.paid_off_on) for row in db.session.scalars(
        select(Installment).where(Installment.id.in_(before)))}
    for n, row_id in enumerate(r.id for r in changed):
        assert after[row_id] == (before[row_id][0] + n + Decimal("0.25"),
                                 day if n % 2 else None)
    for row_id in set(before) - {r.id for r in changed}:
        assert after[row_id] == before[row_id]
    db.session.rollback()


def test_a_bulk_job_spares_the_old_objects_and_gives_them_back():
    class Node:
        pass
    assert gc.get_freeze_count() == 0
    old = Node()
    old.me = old  # a cycle from before the job
    with pytest.raises(RuntimeError):
        with bulk.sparing_collector():
            assert gc.get_freeze_count() > 0  # set aside
            with bulk.sparing_collector():  # nested: one setting aside
                pass
            assert gc.get_freeze_count() > 0
            new = Node()
            new.me = new  # a cycle of the job's, dropped: collected meanwhile
            gone = weakref.ref(new)
            del new
            gc.collect()
            assert gone() is None
            raise RuntimeError("the job fails")
    assert gc.get_freeze_count() == 0  # given back, even after a failure
    kept = weakref.ref(old)
    del old
    gc.collect()
    assert kept() is None  # and collected as ever once back


def test_objects_frozen_by_someone_else_stay_frozen():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with bulk.sparing_collector():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
