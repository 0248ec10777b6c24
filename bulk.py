"""Many rows into one table, and many rows of one table changed, fast on both databases
(issue 12's bulk paths).

`insert_rows(table, rows, ids=False)` writes the rows (dicts of column values) in the
current transaction. On SQLite, and for a few rows anywhere, it is one multi-row INSERT (with
`ids`, RETURNING them; each row gets its own). On PostgreSQL, from COPY_FROM rows on, it is one
COPY: a multi-row INSERT of a thousand rows sends tens of thousands of placeholders, which the
driver splits in Python on every call (the statement is too long for its cache) and the
server plans; COPY streams the rows instead, 5–10 times faster. With `ids` the ids are taken
from the table's sequence first (one statement), as the INSERT would have taken them.

Each row's missing columns get their Python-side defaults, as the INSERT gives them; server
defaults and triggers apply as for an INSERT. The engine's cursor events see the COPY like
any statement (the statement counts of the tests and benchmarks include it).

`sparing_collector()` wraps a bulk job so that Python's cyclic garbage collector leaves the
objects that were alive before it alone while it runs.
"""
import gc
import threading
from contextlib import contextmanager
from types import SimpleNamespace

from sqlalchemy import Integer, bindparam, func, insert, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError

from extensions import db

COPY_FROM = 50  # rows: below this, one INSERT costs less than a sequence read and a COPY
_STATEMENTS = {}  # (table, ids, ordered) -> INSERT, built once (SQLAlchemy caches its compiling)
_COPY = {}  # table -> _columns(table)


def insert_rows(table, rows, ids=False, connection=None):
    """INSERT `rows` into `table`; with `ids`, set each row's "id". All rows have the same
    keys. Returns nothing; the caller commits."""
    if not rows:
        return
    connection = connection or db.session.connection()
    if _copies(connection, table, len(rows), ids):
        _copy(connection, table, rows, ids)
        return
    # SQLite: a RETURNING in the rows' order is one INSERT per row (SQLAlchemy has no
    # sentinel for it); without the order it is one INSERT per page of rows, and the order is
    # known anyway: SQLite stores a multi-row VALUES in its order, each new row under a rowid
    # above every other, so the ids sorted are the rows' ids (only RETURNING's order is
    # arbitrary).
    ordered = ids and connection.dialect.name != "sqlite"
    if (table, ids, ordered) not in _STATEMENTS:
        _STATEMENTS[table, ids, ordered] = insert(table).returning(
            table.c.id, sort_by_parameter_order=ordered) if ids else insert(table)
    result = connection.execute(_STATEMENTS[table, ids, ordered], rows)
    if ids:
        new_ids = result.scalars().all()
        for row, new_id in zip(rows, new_ids if ordered else sorted(new_ids)):
            row["id"] = new_id


def refresh_statistics(tables):
    """PostgreSQL: ANALYZE `tables` (names) after a bulk write filled them, and commit.
    Until the next ANALYZE the planner works from the statistics of the smaller tables, and
    connections keep the plans made on them (prepared statements, trigger functions):
    autovacuum only analyzes on its next round, and on a young database just loaded by an
    import the API's loans got slower by the thousand meanwhile (8.5 -> 12.9 ms each after
    20,000 imported loans). SQLite: nothing to do (its planner keeps no statistics here)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    db.session.execute(text("ANALYZE " + ", ".join(tables)))
    db.session.commit()


def _copies(connection, table, n, ids):
    """Whether n rows go by COPY: PostgreSQL, enough of them, no SQL default to evaluate,
    and a sequence to take the ids from when they are wanted."""
    if connection.dialect.name != "postgresql" or n < COPY_FROM:
        return False
    columns = _columns(connection, table)
    return columns is not None and (not ids or columns[0] is not None)


def _columns(connection, table):
    """(sequence of the id, {column key: (quoted name, default, bind processor)}); None when
    a default is SQL (only the INSERT can evaluate it)."""
    if table not in _COPY:
        dialect, quote = connection.dialect, connection.dialect.identifier_preparer.quote
        if any(c.default is not None and c.default.is_clause_element for c in table.columns):
            _COPY[table] = None
            return None
        sequence = connection.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"),
                                     {"t": table.name}) if "id" in table.c else None
        _COPY[table] = (sequence, {
            column.key: (quote(column.name), column.default,
                         column.type.dialect_impl(dialect).bind_processor(dialect))
            for column in table.columns})
    return _COPY[table]


def _copy(connection, table, rows, ids):
    sequence, columns = _columns(connection, table)
    if ids:
        new = sorted(connection.scalars(text("SELECT nextval(:s) FROM generate_series(1, :n)"),
                                        {"s": sequence, "n": len(rows)}))
        for row, new_id in zip(rows, new):
            row["id"] = new_id
    given = list(rows[0])
    defaults = [(key, default) for key, (_name, default, _p) in columns.items()
                if key not in rows[0] and default is not None]
    keys = given + [key for key, _default in defaults]
    processors = [columns[key][2] for key in keys]
    statement = (f"COPY {connection.dialect.identifier_preparer.format_table(table)} "
                 f"({', '.join(columns[key][0] for key in keys)}) FROM STDIN")
    dispatch, dbapi = connection.dispatch, connection.dialect.loaded_dbapi
    with connection.connection.driver_connection.cursor() as cursor:
        dispatch.before_cursor_execute(connection, cursor, statement, rows, None, True)
        try:
            with cursor.copy(statement) as copy:
                for row in rows:
                    values = [row[key] for key in given] + [
                        default.arg if default.is_scalar else default.arg(None)
                        for _key, default in defaults]
                    copy.write_row([value if value is None or process is None
                                    else process(value)
                                    for value, process in zip(values, processors)])
        except dbapi.Error as exc:
            # As SQLAlchemy raises them for an INSERT (callers catch IntegrityError).
            raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
        dispatch.after_cursor_execute(connection, cursor, statement, rows, None, True)


def update_rows(table, rows, types, assignments):
    """Change many rows of `table` (with an integer `id`), each as its dict in `rows` says:
    `types` {key: SQL type} are the keys of each row besides "id", and `assignments(new)`
    gives {column: expression} over the table's columns (their values before the change) and
    `new.<key>` (the row's value). On PostgreSQL one UPDATE … FROM unnest(arrays): an
    executemany there is a statement per row (about 60 µs each); elsewhere an executemany,
    which costs SQLite little."""
    if not rows:
        return
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        arrays = [bindparam(f"new_{key}", [row[key] for row in rows], type_=ARRAY(type_))
                  for key, type_ in {"id": Integer, **types}.items()]
        new = func.unnest(*arrays).table_valued("id", *types).render_derived(name="new")
        connection.execute(update(table).where(table.c.id == new.c.id)
                           .values(assignments(new.c)))
        return
    new = SimpleNamespace(**{key: bindparam(f"new_{key}", type_=type_)
                             for key, type_ in types.items()})
    connection.execute(update(table).where(table.c.id == bindparam("new_id"))
                       .values(assignments(new)),
                       [{f"new_{key}": value for key, value in row.items()} for row in rows])


_SPARING = {"depth": 0, "ours": False, "lock": threading.Lock()}


@contextmanager
def sparing_collector():
    """Run a bulk job with the objects alive before it (the app's modules, mappers, process
    specs: some 200,000) set aside from the cyclic collector, and give them back after it.
    The job's rows live long enough to set off full collections, and each one scanned all
    of those objects again: 13 % of the time of three imports of 1,000 loans on SQLite. Nothing is lost meanwhile:
    refcounting frees as ever, and a cycle that dies among the set-aside objects is
    collected once they are back. Nested and concurrent jobs (threads) share one setting
    aside: the last to finish gives the objects back. Objects someone else froze (a server
    may at start) stay as they were: then this does nothing."""
    with _SPARING["lock"]:
        if _SPARING["depth"] == 0:
            _SPARING["ours"] = gc.get_freeze_count() == 0
            if _SPARING["ours"]:
                gc.freeze()
        _SPARING["depth"] += 1
    try:
        yield
    finally:
        with _SPARING["lock"]:
            _SPARING["depth"] -= 1
            if _SPARING["depth"] == 0 and _SPARING["ours"]:
                gc.unfreeze()
