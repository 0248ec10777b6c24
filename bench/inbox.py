"""Inbox and task-completion benchmark.

    python -m bench.inbox [--loans N] [--complete M] [--queries Q] [--seed S] [--no-analyze]

Uses DATABASE_URL when it is set (it must name an empty database, e.g. the one
scripts/with-postgres.sh creates), else a fresh SQLite file in a temporary directory.
Migrates from empty, deploys bpmn/, then measures, in this order:

1. creating N loans with cases.operations.register_loan (each starts a handover);
2. completing M `handover_file` tasks with workflows.service.complete_task (this also
   fills the post-loan officers' inbox with M `check_file` tasks);
3. claiming a few tasks per user, then timing workflows.inbox.inbox_page for both scopes,
   with and without a loan_no filter, for account managers and post-loan officers:
   8 rows of Q calls each (default Q=100, so 800 calls).

On PostgreSQL the bench runs ANALYZE after loading the loans and again before the inbox
phase, as autovacuum would on a server where it is on; without statistics the planner
treats every table as nearly empty (use --no-analyze to see that case). SQLite gets no
ANALYZE because the application never runs one.

Each timed call starts from a new session (as a web request does), so every call hits the
database; loading the user happens outside the timed region, like Flask-Login's loader.
Figures are printed only: there are no assertions on timing.
"""
import argparse
import datetime as dt
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PASSWORD = "bench-password"
# A Monday in a year the working-day calendar knows; the bench clock starts here and moves
# forward with every loan so that due dates spread over several weeks.
START = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.timezone.utc)
LOAN_STEP = dt.timedelta(minutes=15)
ACCOUNT_MANAGERS = [f"bench_am{i}" for i in range(1, 5)]
OFFICERS = [f"bench_plo{i}" for i in range(1, 5)]
ADMIN = "bench_admin"
CLAIMS_PER_USER = 10
HANDOVER_DATA = {"documents": ["contract", "iou"], "purpose": "working capital",
                 "repayment_source": "sales receipts", "risk_points": "single customer"}
BORROWERS = ["杭州明远贸易有限公司", "宁波海通机械制造有限公司", "温州瑞丰鞋业有限公司",
             "绍兴华纺印染有限公司", "嘉兴禾润农业科技有限公司"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.inbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, default=2000, metavar="N",
                        help="loans to register (default 2000)")
    parser.add_argument("--complete", type=int, default=300, metavar="M",
                        help="handover_file tasks to complete (default 300, at most N)")
    parser.add_argument("--queries", type=int, default=100, metavar="Q",
                        help="inbox_page calls per inbox row of the table (default 100)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--no-analyze", dest="analyze", action="store_false",
                        help="PostgreSQL: do not refresh planner statistics (see below)")
    args = parser.parse_args(argv)
    if args.loans < 1 or args.complete < 0 or args.queries < 1:
        parser.error("--loans and --queries must be positive, --complete not negative")
    args.complete = min(args.complete, args.loans)
    return args


# ---------------------------------------------------------------- measuring

def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100)
    return ordered[int(rank) - 1]


def drift(durations):
    """p50 of the first and the last tenth of a run: does the cost grow with the data?"""
    tenth = max(1, len(durations) // 10)
    return (f"p50 first 10% {percentile(durations[:tenth], 50) * 1000:.1f} ms, "
            f"last 10% {percentile(durations[-tenth:], 50) * 1000:.1f} ms")


class StatementCounter:
    """Counts SQL statements sent through the engine (to spot N+1 patterns)."""

    def __init__(self):
        self.count = 0

    def __call__(self, *_args, **_kwargs):
        self.count += 1


class Row:
    """One line of the result table."""

    def __init__(self, label, durations, statements, extra=""):
        self.label, self.durations, self.statements, self.extra = (
            label, durations, statements, extra)

    @property
    def n(self):
        return len(self.durations)

    @property
    def rate(self):
        total = sum(self.durations)
        return self.n / total if total else float("inf")

    def ms(self, p):
        return percentile(self.durations, p) * 1000 if self.durations else float("nan")

    def format(self):
        per_op = self.statements / self.n if self.n else float("nan")
        return (f"{self.label:<46} {self.n:>6} {self.rate:>9.1f} {self.ms(50):>8.2f} "
                f"{self.ms(95):>8.2f} {self.ms(100):>8.2f} {per_op:>7.1f}  {self.extra}")


HEADER = (f"{'operation':<46} {'count':>6} {'ops/s':>9} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'max ms':>8} {'sql/op':>7}  notes")


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
    version = ".".join(str(part) for part in (dialect.server_version_info or ()))
    return dialect.name, version


# ---------------------------------------------------------------- phases

def setup(db):
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from cases.models import Loan
    from workflows.definitions import deploy_paths

    upgrade()  # every migration, from an empty database
    if db.session.scalar(select(func.count()).select_from(Loan)):
        sys.exit("bench: the database is not empty; point DATABASE_URL at a fresh one")
    deploy_paths(sorted((ROOT / "bpmn").glob("*.bpmn")), ROOT / "bpmn" / "forms",
                 comment="bench")


def refresh_statistics(db, enabled):
    """Refresh PostgreSQL planner statistics; returns a note for the report."""
    from sqlalchemy import text

    if db.engine.dialect.name != "postgresql":
        return "none (SQLite: the application never runs ANALYZE)"
    autovacuum = db.session.scalar(text("SHOW autovacuum"))
    if not enabled:
        db.session.rollback()
        return f"not refreshed (--no-analyze; server autovacuum={autovacuum})"
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    return f"ANALYZE after loading and before the inbox (server autovacuum={autovacuum})"


def create_users():
    from accounts.operations import create_user

    ids = {}
    for name in ACCOUNT_MANAGERS:
        ids[name] = create_user(name, PASSWORD, ["account_manager"]).id
    for name in OFFICERS:
        ids[name] = create_user(name, PASSWORD, ["post_loan_officer"]).id
    ids[ADMIN] = create_user(ADMIN, PASSWORD, ["admin"]).id
    return ids


def load_user(db, user_id):
    """A fresh session and the user in it, as Flask-Login would provide (not timed)."""
    from accounts.models import User

    db.session.remove()
    user = db.session.get(User, user_id)
    user.roles  # noqa: B018 - role rows are loaded with the user
    return user


def loan_payload(i):
    disbursed = (START + i * LOAN_STEP).date()
    return {"loan_no": f"BENCH-{i:06d}", "borrower_name": BORROWERS[i % len(BORROWERS)],
            "principal": f"{100000 + (i % 50) * 10000}.00", "interest_rate": "0.0435",
            "disbursed_on": disbursed.isoformat(),
            "maturity_on": (disbursed + dt.timedelta(days=365)).isoformat(),
            "account_manager": ACCOUNT_MANAGERS[i % len(ACCOUNT_MANAGERS)]}


def create_loans(db, clock, counter, ids, n):
    from cases.operations import register_loan

    durations = []
    statements = 0
    for i in range(n):
        clock.set_now(START + i * LOAN_STEP)
        admin = load_user(db, ids[ADMIN])
        before = counter.count
        started = time.perf_counter()
        register_loan(loan_payload(i), admin)
        durations.append(time.perf_counter() - started)
        statements += counter.count - before
    db.session.remove()
    return Row("create loan (register_loan)", durations, statements,
               "one commit per loan; " + drift(durations))


def open_tasks(db, bpmn_id, limit=None):
    """(task id, candidate user id) of open tasks of one step, oldest first."""
    from sqlalchemy import select

    from workflows.models import HumanTask

    query = (select(HumanTask.id, HumanTask.candidate_user_id)
             .where(HumanTask.bpmn_id == bpmn_id, HumanTask.state == "ready",
                    HumanTask.claimed_by_id.is_(None))
             .order_by(HumanTask.id))
    if limit is not None:
        query = query.limit(limit)
    return db.session.execute(query).all()


def complete_handovers(db, clock, counter, m, after):
    from workflows.service import complete_task

    durations = []
    statements = 0
    targets = open_tasks(db, "handover_file", m)
    for k, (task_id, candidate_id) in enumerate(targets):
        clock.set_now(after + k * dt.timedelta(minutes=1))
        user = load_user(db, candidate_id)
        before = counter.count
        started = time.perf_counter()
        complete_task(task_id, user, data=HANDOVER_DATA)
        durations.append(time.perf_counter() - started)
        statements += counter.count - before
    db.session.remove()
    return Row("complete handover_file (complete_task)", durations, statements,
               "one commit per task; " + drift(durations))


def claim_some(db, ids):
    """Each account manager claims some of their own tasks, each officer some check_file."""
    from workflows.service import claim_task

    handovers = open_tasks(db, "handover_file")
    checks = [task_id for task_id, _ in open_tasks(db, "check_file")]
    claimed = 0
    for name in ACCOUNT_MANAGERS:
        own = [task_id for task_id, candidate in handovers if candidate == ids[name]]
        for task_id in own[-CLAIMS_PER_USER:]:  # the newest, so not first in due order
            claim_task(task_id, load_user(db, ids[name]))
            claimed += 1
    for j, name in enumerate(OFFICERS):
        for task_id in checks[j::len(OFFICERS)][:CLAIMS_PER_USER]:
            claim_task(task_id, load_user(db, ids[name]))
            claimed += 1
    db.session.remove()
    return claimed


def visible_loan_nos(db, user_id, scope):
    """Loan numbers a user sees in a scope, to filter on numbers that match."""
    from workflows.inbox import inbox_query

    user = load_user(db, user_id)
    return [loan_no for _task, loan_no in db.session.execute(inbox_query(user, scope)).all()
            if loan_no]


def measure_inbox(db, counter, ids, queries, rng):
    from workflows.inbox import inbox_page

    groups = {"account_manager": ACCOUNT_MANAGERS, "post_loan_officer": OFFICERS}
    rows = []
    for scope in ("available", "mine"):
        for filtered in (False, True):
            for role, names in groups.items():
                # Filter on loan numbers the user can see; if there are none, on one they
                # cannot, so the row still measures a filtered query.
                candidates = {name: visible_loan_nos(db, ids[name], scope)
                              or [loan_payload(0)["loan_no"]] for name in names}
                durations, totals, statements = [], [], 0
                for q in range(queries):
                    name = names[q % len(names)]
                    loan_no = None
                    if filtered:
                        loan_no = rng.choice(candidates[name])
                    user = load_user(db, ids[name])
                    before = counter.count
                    started = time.perf_counter()
                    page, total = inbox_page(user, scope, loan_no=loan_no, page=1, per_page=20)
                    durations.append(time.perf_counter() - started)
                    statements += counter.count - before
                    totals.append(total)
                label = f"inbox {scope}{' +loan_no' if filtered else ''} [{role}]"
                rows.append(Row(label, durations, statements,
                                f"total p50={percentile(totals, 50)} max={max(totals)}"))
    db.session.remove()
    return rows


def render_cost(db, counter, ids):
    """Statements needed to turn one inbox page into API summaries (N+1 check)."""
    from workflows.inbox import inbox_page, task_summary

    worst = 0
    for name in ACCOUNT_MANAGERS + OFFICERS:
        for scope in ("available", "mine"):
            user = load_user(db, ids[name])
            page, _total = inbox_page(user, scope)
            before = counter.count
            for task, loan_no in page:
                task_summary(task, loan_no)
            worst = max(worst, counter.count - before)
    db.session.remove()
    return worst


def progress(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def summary_line(engine, args, rows):
    by_label = {row.label: row for row in rows}
    parts = [f"engine={engine}", f"loans={args.loans}", f"tasks={args.complete}",
             f"create={by_label['create loan (register_loan)'].rate:.1f}/s"]
    if args.complete:
        done = by_label["complete handover_file (complete_task)"]
        parts.append(f"complete={done.rate:.1f}/s (p50={done.ms(50):.1f}ms "
                     f"p95={done.ms(95):.1f}ms)")
    for scope in ("available", "mine"):
        for suffix in ("", " +loan_no"):
            merged = [d for row in rows if row.label.startswith(f"inbox {scope}{suffix} [")
                      for d in row.durations]
            parts.append(f"inbox {scope}{suffix.replace(' +', '+')} "
                         f"p50={percentile(merged, 50) * 1000:.2f}ms "
                         f"p95={percentile(merged, 95) * 1000:.2f}ms")
    return " ".join(parts)


def main(argv=None):
    args = parse_args(argv)
    rng = random.Random(args.seed)
    with temporary_database():
        from sqlalchemy import event

        from app import create_app
        from extensions import db
        from workflows import clock

        app = create_app({"PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000", "SECRET_KEY": "bench"})
        with app.app_context():
            setup(db)
            engine, version = engine_label(db)
            counter = StatementCounter()
            event.listen(db.engine, "before_cursor_execute", counter)
            wall = time.perf_counter()
            try:
                clock.set_now(START)
                ids = create_users()
                progress(f"{engine}: registering {args.loans} loans")
                rows = [create_loans(db, clock, counter, ids, args.loans)]
                refresh_statistics(db, args.analyze)
                after = START + args.loans * LOAN_STEP
                if args.complete:
                    progress(f"{engine}: completing {args.complete} handover_file tasks")
                    rows.append(complete_handovers(db, clock, counter, args.complete, after))
                clock.set_now(after + dt.timedelta(days=1))
                claimed = claim_some(db, ids)
                statistics = refresh_statistics(db, args.analyze)
                progress(f"{engine}: {8 * args.queries} inbox queries")
                rows += measure_inbox(db, counter, ids, args.queries, rng)
                summary_statements = render_cost(db, counter, ids)
            finally:
                clock.set_now(None)
                event.remove(db.engine, "before_cursor_execute", counter)
                db.session.remove()
                db.engine.dispose()
            wall = time.perf_counter() - wall

    print()
    print(f"Daihou inbox benchmark: engine={engine} {version}  loans={args.loans}  "
          f"complete={args.complete}  queries/row={args.queries}  claimed={claimed}  "
          f"python={platform.python_version()}  cpus={os.cpu_count()}")
    print(HEADER)
    print("-" * len(HEADER))
    for row in rows:
        print(row.format())
    print("-" * len(HEADER))
    print(f"extra SQL to build API summaries of one inbox page (worst case): "
          f"{summary_statements}")
    print(f"planner statistics: {statistics}")
    print(f"measured phases took {wall:.1f}s")
    print(summary_line(engine, args, rows))


if __name__ == "__main__":
    main()
