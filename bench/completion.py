"""Claim + complete over HTTP against the engine alone (issue 12, first rows of the table).

    python -m bench.completion [--quick]

Uses DATABASE_URL when it is set (an empty database, e.g. the one scripts/with-postgres.sh
creates), else a fresh SQLite file. Migrates, deploys bpmn/ (bench.run hands over a copy of a
database where that was done), registers the loans by the bulk import (each opens a
`handover_file` task) and serves the app on 127.0.0.1 (werkzeug, threaded, one client).
Then, in alternated rounds (3; 5 at full scale):

- **app**: one client claims and completes the round's tasks through the API (two HTTP
  requests each);
- **engine alone**: the same handover process in SpiffWorkflow without the application:
  load the serialized state, complete the user task with the same data, run the engine,
  dump the state and commit the JSON to a table of its own in the same kind of database
  (one UPDATE and one commit), which is the floor any engine-backed application pays;
- **HTTP floor**: the same client sends two requests to a bench-only route that runs one
  UPDATE and one commit and answers `{}` (no authentication, no engine): what claim +
  complete as two requests with two commits costs before the application does anything.

Rows: the medians of milliseconds per task for both, their ratio, SQL statements and commits
per claim + complete (counted on the server's engine). Figures only, no assertions.
"""
import http.client
import time

from bench.common import HANDOVER, PASSWORD, Row, database_name, make_app, post, scale_arg, \
    show, median

SIZES = {"quick": (30, 3), "full": (100, 5)}  # tasks per round, rounds


class Counter:
    """SQL statements and commits seen on an engine."""

    def __init__(self, engine):
        from sqlalchemy import event
        self.statements = self.commits = 0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *_args):
        self.statements += 1

    def _commit(self, *_args):
        self.commits += 1


def app_round(address, headers, task_ids, counter):
    conn = http.client.HTTPConnection(*address, timeout=60)
    statements, commits = counter.statements, counter.commits
    start = time.perf_counter()
    for task_id in task_ids:
        post(conn, f"/api/v1/tasks/{task_id}/claim", headers)
        post(conn, f"/api/v1/tasks/{task_id}/complete", headers, {"data": HANDOVER})
    elapsed = time.perf_counter() - start
    conn.close()
    n = len(task_ids)
    return (elapsed / n * 1000, (counter.statements - statements) / n,
            (counter.commits - commits) / n)


def engine_round(engine, states):
    """Complete the first user task of each stored state with SpiffWorkflow alone."""
    from sqlalchemy import text
    from SpiffWorkflow.util.task import TaskState

    from workflows.definitions import latest_definition
    from workflows.engine import dump_state, load_state
    definition = latest_definition("handover")
    definition.spec_json  # noqa: B018 — loaded before timing, as the app's cache has it
    start = time.perf_counter()
    for row_id in states:
        with engine.connect() as conn:
            state = conn.execute(text("SELECT state FROM bench_engine_states WHERE id = :id"),
                                 {"id": row_id}).scalar_one()
            workflow = load_state(definition, state)
            task = workflow.get_next_task(state=TaskState.READY, manual=True)
            task.data.update(HANDOVER)
            task.run()
            workflow.do_engine_steps()
            conn.execute(text("UPDATE bench_engine_states SET state = :s WHERE id = :id"),
                         {"s": dump_state(workflow), "id": row_id})
            conn.commit()
    return (time.perf_counter() - start) / len(states) * 1000


def floor_round(address, n):
    conn = http.client.HTTPConnection(*address, timeout=60)
    start = time.perf_counter()
    for _ in range(n):
        post(conn, FLOOR_PATH, {})
        post(conn, FLOOR_PATH, {})
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / n * 1000


FLOOR_PATH = "/_bench/floor"


def add_floor_route(app):
    """One UPDATE and one commit behind a bare route (bench only, never in the product)."""
    from flask import jsonify
    from sqlalchemy import text

    from extensions import csrf, db

    def floor():
        db.session.execute(text("UPDATE bench_engine_states SET state = state WHERE id = 0"))
        db.session.commit()
        return jsonify({})
    app.add_url_rule(FLOOR_PATH, "bench_floor", floor, methods=["POST"])
    csrf.exempt(floor)


def handover_tasks(app, n, prefix="B", real_clock=False):
    """Register n loans for bench_am (created when missing) through the bulk import (what
    the tasks are does not depend on the path: tests/test_bulk_intake.py) at the tests' T0, or
    now with `real_clock`; their handover_file task ids."""
    from sqlalchemy import select

    from accounts.models import User
    from accounts.operations import create_user
    from cases.operations import import_loans
    from extensions import db
    from tests.conftest import T0, loan_payload
    from workflows import clock
    from workflows.models import HumanTask
    with app.app_context(), clock.frozen_at(None if real_clock else T0):
        admin = User.query.filter_by(username="bench_admin").first() \
            or create_user("bench_admin", PASSWORD, ["admin"])
        if User.query.filter_by(username="bench_am").first() is None:
            create_user("bench_am", PASSWORD, ["account_manager"])
        report = import_loans([(i + 2, loan_payload(f"{prefix}-{i:06d}", "bench_am"))
                               for i in range(n)], admin)
        if report.errors:
            raise SystemExit(f"bench loans refused: {report.errors[:3]}")
        return db.session.scalars(select(HumanTask.id).where(
            HumanTask.state == "ready", HumanTask.bpmn_id == "handover_file")
            .order_by(HumanTask.id)).all()


def bearer(app, username="bench_am"):
    from accounts.operations import create_token
    with app.app_context():
        return {"Authorization": f"Bearer {create_token(username, 'bench')}"}


def engine_states(app, n):
    """The engine-alone floor's table: the handover's start state, stored n times."""
    from sqlalchemy import text

    from extensions import db
    from workflows.definitions import latest_definition
    from workflows.engine import dump_state, new_workflow
    with app.app_context():
        workflow = new_workflow(latest_definition("handover"))
        workflow.do_engine_steps()
        start_state = dump_state(workflow)
        db.session.execute(text("CREATE TABLE bench_engine_states "
                                "(id INTEGER PRIMARY KEY, state TEXT NOT NULL)"))
        db.session.execute(text("INSERT INTO bench_engine_states (id, state) VALUES (:id, :s)"),
                           [{"id": i, "s": start_state} for i in range(n)])
        db.session.commit()


def run(scale="full"):
    from bench.ledger_races import serve
    from extensions import db
    from workflows import clock
    from tests.conftest import T0

    tasks, rounds = SIZES[scale]
    app = make_app()
    add_floor_route(app)
    name = database_name()
    task_ids = handover_tasks(app, tasks * rounds + 2)  # two to warm the caches
    engine_states(app, tasks * rounds + 2)
    headers = bearer(app)
    with app.app_context():
        engine = db.engine
    counter = Counter(engine)
    clock.set_now(T0)
    app_ms, engine_ms, floor_ms, statements, commits = [], [], [], [], []
    with serve(app) as address:
        app_round(address, headers, task_ids[:2], counter)  # warm-up
        floor_round(address, 2)
        with app.app_context():
            engine_round(engine, [0, 1])
        for r in range(rounds):
            chunk = slice(2 + r * tasks, 2 + (r + 1) * tasks)
            ms, per_statements, per_commits = app_round(address, headers, task_ids[chunk],
                                                        counter)
            app_ms.append(ms)
            statements.append(per_statements)
            commits.append(per_commits)
            with app.app_context():
                engine_ms.append(engine_round(engine, range(chunk.start, chunk.stop)))
            floor_ms.append(floor_round(address, tasks))
            print(f"  round {r + 1}: app {ms:.1f} ms/task, engine alone {engine_ms[-1]:.1f} "
                  f"ms/task, HTTP floor {floor_ms[-1]:.1f} ms, {per_statements:.1f} statements, "
                  f"{per_commits:.1f} commits",
                  flush=True)
    clock.set_now(None)
    ratio_target = "≤ 2.5" if name == "SQLite" else "≤ 3.5"
    note = f"median of {rounds} alternated rounds of {tasks}"
    return [show(Row("claim + complete over HTTP, one client", median(app_ms), "ms", "",
                     note)),
            show(Row("engine alone, same process, same database", median(engine_ms), "ms")),
            show(Row("ratio app / engine", median(app_ms) / median(engine_ms), "×",
                     ratio_target)),
            show(Row("HTTP floor: two bare requests, one commit each", median(floor_ms), "ms")),
            show(Row("ratio HTTP floor / engine", median(floor_ms) / median(engine_ms), "×", "",
                     "before any application work")),
            show(Row("statements per claim + complete", median(statements), "", "≤ 10")),
            show(Row("commits per claim + complete", median(commits), "", "≤ 2"))]


if __name__ == "__main__":
    run(scale_arg())
