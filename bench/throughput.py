"""Completions per second with 8 concurrent clients against gunicorn (issue 12).

    python -m bench.throughput [--quick]

Uses DATABASE_URL when it is set (an empty database, e.g. the one scripts/with-postgres.sh
creates), else a fresh SQLite file. Starts `make serve`'s server (gunicorn.conf.py;
WEB_WORKERS and WEB_THREADS from the environment, default 4 × 2 here), registers the loans by
the bulk import while its workers boot and, in 3 rounds of fresh tasks, lets 8 clients claim
and complete the handover tasks at once, each taking the next from one shared queue (two
requests per completion).
Prints completions per second per round and the median. The clients share the machine with
the server, as they would in a one-box test.
"""
import os

from bench.common import HANDOVER, Gunicorn, Row, database_name, make_app, median, post, \
    run_clients, scale_arg, show
from bench.completion import bearer, handover_tasks

CLIENTS = 8
SIZES = {"quick": (15, 3), "full": (60, 3)}  # tasks per client per round, rounds


def one_round(address, headers, task_ids):
    def send(conn, task_id):
        post(conn, f"/api/v1/tasks/{task_id}/claim", headers)
        post(conn, f"/api/v1/tasks/{task_id}/complete", headers, {"data": HANDOVER})
    return len(task_ids) / run_clients(address, task_ids, send, CLIENTS)


def run(scale="full"):
    per_client, rounds = SIZES[scale]
    workers = int(os.environ.get("WEB_WORKERS", "4"))
    threads = int(os.environ.get("WEB_THREADS", "2"))
    app = make_app()
    per_round = per_client * CLIENTS
    rates = []
    # The workers boot (each imports and creates the app) while the tasks are written.
    server = Gunicorn(workers, threads)
    with server as address:
        # Made now, as gunicorn's workers complete them on the real clock: tasks made at the
        # tests' T0 would all be months late, and each completion would also record a late
        # follow-up (management/sla.py), which bench.completion's on-time tasks do not.
        task_ids = handover_tasks(app, per_round * rounds + CLIENTS, real_clock=True)
        headers = bearer(app)
        server.ready()
        one_round(address, headers, task_ids[:CLIENTS])  # warm every worker's caches
        for r in range(rounds):
            chunk = task_ids[CLIENTS + r * per_round: CLIENTS + (r + 1) * per_round]
            rates.append(one_round(address, headers, chunk))
            print(f"  round {r + 1}: {rates[-1]:.1f} completions/s", flush=True)
    target = "≥ 200" if database_name() == "PostgreSQL" else ""
    return [show(Row(f"completions/s, {CLIENTS} clients, gunicorn {workers}×{threads}",
                     median(rates), "/s", target,
                     f"median of {rounds} rounds of {per_round}"))]


if __name__ == "__main__":
    run(scale_arg())
