"""Inbox benchmark at a lender's scale: keyset pages, bounded counts, the plans behind them.

    python -m bench.inbox [--quick] [--loans N] [--queries Q] [--explain]

Uses DATABASE_URL when it is set (it must name an empty database, e.g. the one
scripts/with-postgres.sh creates, or a copy of the one bench.run migrated and deployed bpmn/
to), else a fresh SQLite file in a temporary directory. Migrates from empty, deploys bpmn/,
builds the data set of bench/inbox_fixture.py (full: 100k loans, 50k open tasks; --quick: 5k
and 2.5k): loans through the bulk import, the inbox reshaped with Core updates (or, with
--core-fixture, everything by Core inserts), then times workflows.inbox.inbox_page for the
"available" and "mine" inboxes of account managers, post-loan officers, collectors and a user
with two lanes: page 1, a deep page (page 50, reached by following 49 `next` tokens; page 10
in --quick) and a loan-number filter. Each timed call starts from a new session, as a web
request does; loading the user is not timed (Flask-Login's loader). The legacy OFFSET page
(page=50) is timed for comparison.

On PostgreSQL the bench runs VACUUM ANALYZE after loading, as autovacuum would; SQLite gets
no ANALYZE because the application never runs one.

--explain writes bench/explain_inbox_<engine>.txt: every statement one inbox page runs
(page 1, a token page forwards and backwards, the loan filter, the bounded count), for a
one-lane and a two-lane user, with EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL and EXPLAIN
QUERY PLAN on SQLite. Figures are printed only: there are no assertions on timing.
"""
import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench import inbox_fixture as fixture

ROOT = Path(__file__).resolve().parent.parent
SCALES = {"quick": {"loans": 5_000, "queries": 16, "deep": 10},
          "full": {"loans": 100_000, "queries": 100, "deep": 50}}
TARGET_MS = 50.0  # issue 12: inbox p95 at any page
GROUPS = {"account managers": fixture.ACCOUNT_MANAGERS, "officers": fixture.OFFICERS,
          "collectors": fixture.COLLECTORS, "two lanes": [fixture.DUAL]}


def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100)
    return ordered[int(rank) - 1]


class StatementCounter:
    """Counts SQL statements sent through the engine (to spot N+1 patterns)."""

    def __init__(self):
        self.count = 0
        self.recording = None

    def __call__(self, _conn, _cursor, statement, parameters, _context, _many):
        self.count += 1
        if self.recording is not None:
            self.recording.append((statement, parameters))


@contextmanager
def temporary_database():
    """Yield the database URL to use; a SQLite file in a temporary directory if unset."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with tempfile.TemporaryDirectory(prefix="daihou-bench-") as tmp:
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'bench.db'}"
        try:
            yield os.environ["DATABASE_URL"]
        finally:
            del os.environ["DATABASE_URL"]


def engine_label(db):
    dialect = db.engine.dialect
    if dialect.name == "sqlite":
        return "sqlite", sqlite3.sqlite_version
    return dialect.name, ".".join(str(part) for part in (dialect.server_version_info or ()))


def progress(message):
    print(f"bench.inbox: {message}", file=sys.stderr, flush=True)


def setup(db, loans, core_fixture=False):
    from sqlalchemy import func, select

    from bench.common import prepare_database
    from cases.models import Loan

    prepare_database()  # every migration from an empty database, bpmn/ deployed
    if db.session.scalar(select(func.count()).select_from(Loan)):
        sys.exit("bench: the database is not empty; point DATABASE_URL at a fresh one")
    ids = fixture.create_users()
    started = time.perf_counter()
    shape = (fixture.build_core if core_fixture else fixture.build)(db, ids, loans)
    shape["seconds"] = time.perf_counter() - started
    if db.engine.dialect.name == "postgresql":
        # What autovacuum leaves on a server: statistics and a visibility map (index-only
        # scans of the exclusions skip the heap).
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    db.session.remove()
    return ids, shape


def load_user(db, user_id):
    """A fresh session and the user in it, as Flask-Login would provide (not timed)."""
    from accounts.models import User

    db.session.remove()
    user = db.session.get(User, user_id)
    user.roles  # noqa: B018 - role rows are loaded with the user
    return user


def deep_token(db, user_id, scope, deep):
    """The `after` token of page `deep` (following deep-1 next tokens), or None."""
    from workflows.inbox import inbox_page

    token = None
    for _ in range(deep - 1):
        token = inbox_page(load_user(db, user_id), scope, after=token).next
        if token is None:
            return None
    return token


def some_loan_no(db, user_id, scope):
    from workflows.inbox import inbox_page

    rows = inbox_page(load_user(db, user_id), scope, per_page=100).rows
    return rows[len(rows) // 2][1] if rows else "BENCH-000000"


def time_calls(db, counter, calls, queries):
    """Run calls (user_id, kwargs) round-robin `queries` times; durations, statements/call."""
    from workflows.inbox import inbox_page

    durations, statements, totals = [], 0, []
    for q in range(queries):
        user_id, kwargs = calls[q % len(calls)]
        user = load_user(db, user_id)
        before = counter.count
        started = time.perf_counter()
        result = inbox_page(user, **kwargs)
        durations.append(time.perf_counter() - started)
        statements += counter.count - before
        totals.append(result.total)
    return durations, statements / queries, totals


def measure(db, counter, ids, queries, deep):
    """Result lines: (label, durations, statements per call, note)."""
    lines = []
    for scope in ("available", "mine"):
        for group, names in GROUPS.items():
            users = [ids[name] for name in names]
            tokens = [(u, deep_token(db, u, scope, deep)) for u in users]
            cases = {"page 1": [(u, {"scope": scope}) for u in users],
                     f"page {deep}": [(u, {"scope": scope, "after": t}) for u, t in tokens
                                      if t],
                     "+loan_no": [(u, {"scope": scope, "loan_no": some_loan_no(db, u, scope)})
                                  for u in users]}
            if scope == "available":
                cases[f"page {deep} by OFFSET"] = [(u, {"scope": scope, "page": deep})
                                                   for u in users]
            for case, calls in cases.items():
                if not calls:
                    continue
                durations, per_call, totals = time_calls(db, counter, calls, queries)
                lines.append((f"{scope} {case} [{group}]", durations, per_call,
                              f"total {min(totals)}..{max(totals)}"))
    db.session.remove()
    return lines


def merged(lines, prefix):
    """Durations of every line whose label starts with prefix + ' ['."""
    return [d for label, durations, _s, _n in lines if label.startswith(prefix + " [")
            for d in durations]


def report(engine, version, shape, lines, scale, deep):
    print()
    print(f"Daihou inbox benchmark: engine={engine} {version} scale={scale} "
          f"loans={shape['loans']} open tasks={shape['open']} claimed={shape['claimed']} "
          f"exclusions={shape['exclusions']} (built by {shape['via']} in "
          f"{shape['seconds']:.1f}s) "
          f"python={platform.python_version()} cpus={os.cpu_count()}")
    header = f"{'inbox call':<46} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'sql':>5}"
    print(header + "  notes")
    print("-" * (len(header) + 20))
    for label, durations, per_call, note in lines:
        print(f"{label:<46} {len(durations):>5} {percentile(durations, 50) * 1000:>8.2f} "
              f"{percentile(durations, 95) * 1000:>8.2f} {max(durations) * 1000:>8.2f} "
              f"{per_call:>5.1f}  {note}")
    rows = []
    for scope in ("available", "mine"):
        for case in ("page 1", f"page {deep}", "+loan_no"):
            values = merged(lines, f"{scope} {case}")
            if not values:
                continue
            label = f"inbox {scope} {case} [{engine}]"
            rows.append((f"{label} p50", percentile(values, 50) * 1000, "ms", None))
            rows.append((f"{label} p95", percentile(values, 95) * 1000, "ms",
                         f"<= {TARGET_MS:g}" if scope == "available" else None))
    worst = max(per_call for label, _d, per_call, _n in lines if "OFFSET" not in label)
    rows.append((f"inbox statements per page [{engine}]", worst, "statements", "<= 3"))  # rows, forms, count
    print("-" * (len(header) + 20))
    for label, value, unit, target in rows:
        print(f"{label:<52} {value:>9.2f} {unit:<10} {'target ' + target if target else ''}")
    return rows


# ---------------------------------------------------------------- plans

def explain(db, counter, ids, engine):
    """Write bench/explain_inbox_<engine>.txt with the plan of every inbox statement."""
    from workflows.inbox import inbox_page

    officer, dual = ids[fixture.OFFICERS[0]], ids[fixture.DUAL]
    loan_no = some_loan_no(db, officer, "available")
    cases = []
    for who, user_id in (("officer (one lane)", officer), ("two lanes", dual)):
        token = deep_token(db, user_id, "available", 50)
        cases += [(f"available page 1, {who}", user_id, {"scope": "available"}),
                  (f"available page 50 (after=token), {who}", user_id,
                   {"scope": "available", "after": token}),
                  (f"available page 49 (before=token), {who}", user_id,
                   {"scope": "available", "before": token})]
    token = deep_token(db, officer, "mine", 50)
    cases += [("mine page 1, officer", officer, {"scope": "mine"}),
              ("mine page 50 (after=token), officer", officer, {"scope": "mine", "after": token}),
              ("available +loan_no, officer", officer,
               {"scope": "available", "loan_no": loan_no}),
              ("available +process, officer", officer,
               {"scope": "available", "process": "handover"})]
    prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " if engine == "postgresql" else \
        "EXPLAIN QUERY PLAN "
    out = [f"# Plans of the inbox statements, {engine}, 100k loans / 50k open tasks "
           f"(bench/inbox_fixture.py).", "# Generated by: python -m bench.inbox --explain", ""]
    for title, user_id, kwargs in cases:
        user = load_user(db, user_id)
        counter.recording = []
        inbox_page(user, **kwargs)
        statements, counter.recording = counter.recording, None
        for n, (statement, parameters) in enumerate(statements, 1):
            with db.engine.connect() as connection:
                plan = connection.exec_driver_sql(prefix + statement, parameters).all()
            lines = [" | ".join(str(c) for c in row[-1:]) if engine == "postgresql" else
                     f"{'  ' * _depth(row, plan)}{row[-1]}" for row in plan]
            out += [f"## {title} — statement {n} of {len(statements)}", "",
                    statement.strip(), f"-- parameters: {parameters!r}", "", *lines, ""]
    path = ROOT / "bench" / f"explain_inbox_{engine}.txt"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    db.session.remove()
    return path


def _depth(row, plan):
    """Indentation of an EXPLAIN QUERY PLAN row (id, parent, notused, detail)."""
    parents = {r[0]: r[1] for r in plan}
    depth, parent = 0, row[1]
    while parent:
        depth, parent = depth + 1, parents.get(parent, 0)
    return depth


# ---------------------------------------------------------------- entry points

def run(scale="full", loans=None, queries=None, explain_plans=False, core_fixture=False):
    """Build the data set, measure, print; returns [(label, value, unit, target)]."""
    settings = dict(SCALES[scale])
    settings["loans"] = loans or settings["loans"]
    settings["queries"] = queries or settings["queries"]
    with temporary_database():
        from sqlalchemy import event

        from app import create_app
        from extensions import db

        app = create_app({"PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000", "SECRET_KEY": "bench"})
        with app.app_context():
            engine, version = engine_label(db)
            progress(f"{engine}: loading {settings['loans']} loans")
            ids, shape = setup(db, settings["loans"], core_fixture)
            counter = StatementCounter()
            event.listen(db.engine, "before_cursor_execute", counter)
            try:
                if explain_plans:
                    progress(f"{engine}: writing plans")
                    progress(f"wrote {explain(db, counter, ids, engine)}")
                progress(f"{engine}: timing inbox pages")
                lines = measure(db, counter, ids, settings["queries"], settings["deep"])
            finally:
                event.remove(db.engine, "before_cursor_execute", counter)
                db.session.remove()
                db.engine.dispose()
    return report(engine, version, shape, lines, scale, settings["deep"])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.inbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5k loans, page 10")
    parser.add_argument("--loans", type=int, metavar="N", help="loans (default by scale)")
    parser.add_argument("--queries", type=int, metavar="Q", help="calls per result line")
    parser.add_argument("--explain", action="store_true",
                        help="also write bench/explain_inbox_<engine>.txt")
    parser.add_argument("--core-fixture", action="store_true",
                        help="write the data set with Core inserts instead of the bulk import "
                             "(seconds instead of minutes; for trying plans)")
    args = parser.parse_args(argv)
    run("quick" if args.quick else "full", args.loans, args.queries, args.explain,
        args.core_fixture)


if __name__ == "__main__":
    main()
