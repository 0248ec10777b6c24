"""Many rows into one table, fast on both databases (issue 12's bulk paths).

`insert_rows(table, rows, ids=False)` writes the rows (dicts of column values) in the
current transaction. On SQLite, and for a few rows anywhere, it is one multi-row INSERT (with
`ids`, RETURNING them in the rows' order). On PostgreSQL, from COPY_FROM rows on, it is one
COPY: a multi-row INSERT of a thousand rows sends tens of thousands of placeholders, which the
driver splits in Python on every call (the statement is too long for its cache) and the
server plans; COPY streams the rows instead, 5–10 times faster. With `ids` the ids are taken
from the table's sequence first (one statement), as the INSERT would have taken them.

Each row's missing columns get their Python-side defaults, as the INSERT gives them; server
defaults and triggers apply as for an INSERT. The engine's cursor events see the COPY like
any statement (the statement counts of the tests and benchmarks include it).
"""
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from extensions import db

COPY_FROM = 50  # rows: below this, one INSERT costs less than a sequence read and a COPY
_STATEMENTS = {}  # (table, ids) -> INSERT, built once: SQLAlchemy caches its compilation
_COPY = {}  # table -> (sequence, {column: (default, bind processor)})


def insert_rows(table, rows, ids=False, connection=None):
    """INSERT `rows` into `table`; with `ids`, set each row's "id". All rows have the same
    keys. Returns nothing; the caller commits."""
    if not rows:
        return
    connection = connection or db.session.connection()
    if connection.dialect.name == "postgresql" and len(rows) >= COPY_FROM \
            and _columns(connection, table) is not None:
        _copy(connection, table, rows, ids)
        return
    if (table, ids) not in _STATEMENTS:
        _STATEMENTS[table, ids] = insert(table).returning(
            table.c.id, sort_by_parameter_order=True) if ids else insert(table)
    result = connection.execute(_STATEMENTS[table, ids], rows)
    if ids:
        for row, new_id in zip(rows, result.scalars().all()):
            row["id"] = new_id


def _columns(connection, table):
    """(sequence of the id, {column: (default, bind processor)}); None when a default is SQL
    (only the INSERT can evaluate it)."""
    if table not in _COPY:
        dialect = connection.dialect
        if any(c.default is not None and c.default.is_clause_element for c in table.columns):
            _COPY[table] = None
            return None
        sequence = connection.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"),
                                     {"t": table.name}) if "id" in table.c else None
        _COPY[table] = (sequence, {
            column.key: (column.default, column.type.dialect_impl(dialect).bind_processor(
                dialect)) for column in table.columns})
    return _COPY[table]


def _copy(connection, table, rows, ids):
    sequence, columns = _columns(connection, table)
    if ids:
        new = sorted(connection.scalars(text("SELECT nextval(:s) FROM generate_series(1, :n)"),
                                        {"s": sequence, "n": len(rows)}))
        for row, new_id in zip(rows, new):
            row["id"] = new_id
    names = list(rows[0])
    defaults = [(name, default) for name, (default, _p) in columns.items()
                if name not in rows[0] and default is not None]
    names += [name for name, _default in defaults]
    processors = [columns[name][1] for name in names]
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    dispatch, dbapi = connection.dispatch, connection.dialect.loaded_dbapi
    with connection.connection.driver_connection.cursor() as cursor:
        dispatch.before_cursor_execute(connection, cursor, statement, rows, None, True)
        try:
            with cursor.copy(statement) as copy:
                for row in rows:
                    values = [row[name] for name in rows[0]] + [
                        default.arg if default.is_scalar else default.arg(None)
                        for _name, default in defaults]
                    copy.write_row([value if value is None or process is None
                                    else process(value)
                                    for value, process in zip(values, processors)])
        except dbapi.Error as exc:
            # As SQLAlchemy raises them for an INSERT (callers catch IntegrityError).
            raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
        dispatch.after_cursor_execute(connection, cursor, statement, rows, None, True)
