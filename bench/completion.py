"""Claim + complete over HTTP against the engine alone (issue 12, first rows of the table).

    python -m bench.completion [--tasks N] [--rounds R]

Uses DATABASE_URL when it is set (an empty database, e.g. the one scripts/with-postgres.sh
creates), else a fresh SQLite file. Migrates, deploys bpmn/, registers N loans per round
(each opens a `handover_file` task) and serves the app on 127.0.0.1 (werkzeug, threaded).
Then, in R alternated rounds:

- **app**: one client claims and completes N tasks through the API (two HTTP requests each);
- **engine alone**: the same handover process in SpiffWorkflow without the application:
  load the serialized state, complete the user task with the same data, run the engine,
  dump the state and commit the JSON to a table of its own in the same kind of database
  (one UPDATE and one commit), which is the floor any engine-backed application pays.

Prints per round and the medians: milliseconds per task, the ratio app / engine, SQL
statements and commits per claim + complete (counted on the server's engine). Figures only,
no assertions.
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDOVER = {"documents": ["contract", "iou"], "purpose": "working capital",
            "repayment_source": "sales receipts", "risk_points": "single customer"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.completion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100, metavar="N",
                        help="tasks per round (default 100)")
    parser.add_argument("--rounds", type=int, default=3, metavar="R",
                        help="alternated rounds of each kind (default 3)")
    return parser.parse_args(argv)


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


def post(conn, path, headers, body=None):
    conn.request("POST", path, json.dumps(body) if body is not None else None,
                 {"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise SystemExit(f"{path}: {response.status} {data[:300]!r}")


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


def main(argv=None):
    args = parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    sys.path.insert(0, str(ROOT))
    from flask_migrate import upgrade
    from sqlalchemy import select, text

    from accounts.operations import create_token, create_user
    from app import create_app
    from bench.ledger_races import serve
    from cases.operations import register_loan
    from extensions import db
    from tests.conftest import T0, loan_payload
    from workflows import clock
    from workflows.definitions import deploy_paths, latest_definition
    from workflows.engine import dump_state, new_workflow
    from workflows.models import HumanTask

    app = create_app({"PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000", "RATELIMIT_ENABLED": False})
    database = app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0]
    with app.app_context():
        upgrade()
        deploy_paths(sorted((ROOT / "bpmn").glob("*.bpmn")), ROOT / "bpmn" / "forms")
        clock.set_now(T0)
        admin = create_user("bench_admin", "bench-password-1", ["admin"])
        create_user("bench_am", "bench-password-1", ["account_manager"])
        headers = {"Authorization": f"Bearer {create_token('bench_am', 'bench')}"}
        total = args.tasks * args.rounds
        for i in range(total + 2):  # two to warm the caches
            register_loan(loan_payload(f"B-{i:06d}", "bench_am"), admin)
        task_ids = db.session.scalars(select(HumanTask.id).where(
            HumanTask.state == "ready", HumanTask.bpmn_id == "handover_file")
            .order_by(HumanTask.id)).all()
        definition = latest_definition("handover")
        # The engine-alone floor: the same start state, stored once per task.
        workflow = new_workflow(definition)
        workflow.do_engine_steps()
        start_state = dump_state(workflow)
        db.session.execute(text("CREATE TABLE bench_engine_states "
                                "(id INTEGER PRIMARY KEY, state TEXT NOT NULL)"))
        db.session.execute(text("INSERT INTO bench_engine_states (id, state) VALUES (:id, :s)"),
                           [{"id": i, "s": start_state} for i in range(total + 2)])
        db.session.commit()
        engine = db.engine
        counter = Counter(engine)

    with serve(app) as address:
        app_round(address, headers, task_ids[:2], counter)  # warm-up
        with app.app_context():
            engine_round(engine, [0, 1])
        app_ms, engine_ms, statements, commits = [], [], [], []
        for r in range(args.rounds):
            chunk = task_ids[2 + r * args.tasks: 2 + (r + 1) * args.tasks]
            ms, per_statements, per_commits = app_round(address, headers, chunk, counter)
            app_ms.append(ms)
            statements.append(per_statements)
            commits.append(per_commits)
            with app.app_context():
                engine_ms.append(engine_round(engine, range(
                    2 + r * args.tasks, 2 + (r + 1) * args.tasks)))
            print(f"round {r + 1}: app {ms:.1f} ms/task, engine alone "
                  f"{engine_ms[-1]:.1f} ms/task, {per_statements:.1f} statements, "
                  f"{per_commits:.1f} commits per claim + complete", flush=True)
    app_median, engine_median = statistics.median(app_ms), statistics.median(engine_ms)
    print(f"{database}: claim + complete over HTTP {app_median:.1f} ms, engine alone "
          f"{engine_median:.1f} ms, ratio {app_median / engine_median:.2f}x; "
          f"{statistics.median(statements):.1f} statements and "
          f"{statistics.median(commits):.1f} commits per claim + complete "
          f"(median of {args.rounds} alternated rounds of {args.tasks} tasks)")


if __name__ == "__main__":
    main()
