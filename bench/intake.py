"""Loans received per second: through the API with 8 clients on gunicorn, and by CSV import
(issue 12, the last row of the table).

    python -m bench.intake [--quick] [--rounds R]

Uses DATABASE_URL when it is set (an empty database, e.g. the one scripts/with-postgres.sh
creates), else a fresh SQLite file. Migrates, deploys bpmn/, starts gunicorn as `make serve`
does (gunicorn.conf.py; WEB_WORKERS and WEB_THREADS from the environment, their defaults
otherwise) and, in R alternated rounds (default 3):

- **API**: 8 client threads, each on its own keep-alive connection and taking the next loan
  from one shared queue, POST new loans to
  /api/v1/loans (a bearer token of an account manager); loans per second over the round;
- **CSV import**: a CSV file of new loans read and imported (`read_loan_csv` +
  `import_loans`, as `flask loans import` does, in-process); loans per second.

Then the SQL statements per loan, counted in-process on the engine: receive_loan with the
API's answer (without the HTTP layer and token check) for one loan at a time, and the import.
Prints each round and the medians. Figures only, no assertions.
"""
import argparse
import datetime as dt
import io
import os
import random
import statistics
import time

from bench.common import Gunicorn, Row, post, run_clients, show
CLIENTS = 8
SIZES = {"quick": (160, 1000), "full": (800, 5000)}  # loans per round: API, CSV
COLUMNS = ("loan_no", "borrower_kind", "borrower_name", "borrower_phone", "principal",
           "interest_rate", "disbursed_on", "maturity_on", "account_manager", "schedule")


def _rows(prefix, n, seed):
    from bench.dataset import _row
    rng, as_of = random.Random(seed), dt.date(2026, 6, 15)
    return [_row(i, rng, as_of, prefix)[2] for i in range(n)]


def _csv(rows):
    from compliance.csv_export import safe_writer  # the project's CSV writer
    out = io.StringIO()
    writer = safe_writer(out)
    writer.writerow(COLUMNS)
    writer.writerows([[row.get(name, "") for name in COLUMNS] for row in rows])
    return out.getvalue().encode()


def _api_round(address, token, payloads):
    """POST the payloads from CLIENTS threads; loans per second."""
    headers = {"Authorization": f"Bearer {token}"}

    def send(conn, body):
        post(conn, "/api/v1/loans", headers, body, expect=201)
    return len(payloads) / run_clients(address, payloads, send, CLIENTS)


def _csv_round(data):
    from cases.intake import read_loan_csv
    from cases.operations import import_loans
    start = time.perf_counter()
    report = import_loans(read_loan_csv(data))
    elapsed = time.perf_counter() - start
    if report.errors or not report.imported:
        raise SystemExit(f"import refused: {report.errors[:3]}")
    return len(report.imported) / elapsed


def _statements(prefix, seed):
    """Statements per loan of receive_loan with the API's answer (case_dict, read in the same
    transaction), one loan at a time (a fresh session each, as a request has), and statements
    of one import_loans of 500 loans (one batch)."""
    from sqlalchemy import event

    from accounts.models import User
    from cases.intake import payload_from_flat
    from cases.operations import import_loans, receive_loan
    from cases.presenters import case_dict
    from extensions import db
    count = [0]

    def counter(*_args):
        count[0] += 1
    event.listen(db.engine, "before_cursor_execute", counter)
    try:
        rows, total = _rows(prefix + "S", 20, seed), 0
        for row in rows:
            actor = db.session.scalars(db.select(User).where(User.username == "bench_am1")).one()
            start = count[0]
            receive_loan(payload_from_flat(row)[0], actor, present=case_dict)
            total += count[0] - start
            db.session.remove()
        single = total / len(rows)
        rows = _rows(prefix + "T", 500, seed)
        start = count[0]
        import_loans([(i + 2, row) for i, row in enumerate(rows)])
        bulk = count[0] - start
    finally:
        event.remove(db.engine, "before_cursor_execute", counter)
    return single, bulk


def run(scale="full", rounds=3):
    """Measure and print; returns [(label, value, unit, target)]."""
    from bench.dataset import _managers, bench_app, bench_environment
    api_n, csv_n = SIZES[scale]
    api, imported = [], []
    bench_environment("intake")  # the server's database and audit key, as bench_app's
    # The workers boot (each imports and creates the app, which reads no table) while this
    # process creates its app, migrates when on its own, makes the token and warms its caches;
    # nothing is timed before the warm-up round below.
    server = Gunicorn(int(os.environ.get("WEB_WORKERS", "4")),
                      int(os.environ.get("WEB_THREADS", "2")))
    with server as address:
        app, database = bench_app("intake")
        with app.app_context():
            from accounts.operations import create_token
            from cases.intake import payload_from_flat
            from extensions import db
            _managers()
            token = create_token("bench_am1", "bench")
            db.session.commit()
            # warm the caches of this process (spec, template, forms) before timing
            _csv_round(_csv(_rows("W", 20, 1)))
        server.ready()
        _api_round(address, token, [payload_from_flat(r)[0] for r in _rows("WA", 40, 2)])
        for r in range(rounds):
            payloads = [payload_from_flat(row)[0] for row in _rows(f"A{r}", api_n, 10 + r)]
            api.append(_api_round(address, token, payloads))
            with app.app_context():
                imported.append(_csv_round(_csv(_rows(f"C{r}", csv_n, 20 + r))))
            print(f"    round {r + 1}: API {api[-1]:.1f} loans/s ({CLIENTS} clients, "
                  f"{api_n} loans), CSV import {imported[-1]:.1f} loans/s ({csv_n} loans)",
                  flush=True)
    with app.app_context():
        single, bulk = _statements("N", 3)
        db.session.remove()
    return [show(Row(f"{database}: loans received per second, API, {CLIENTS} clients "
                     "(gunicorn)", statistics.median(api), "loans/s", "≥ 200")),
            show(Row(f"{database}: loans imported per second, CSV import",
                     statistics.median(imported), "loans/s", "≥ 1,000")),
            show(Row(f"{database}: SQL statements per loan, receive_loan + answer (one loan)",
                     single, "stmts")),
            show(Row(f"{database}: SQL statements per import of 500 loans (one batch)", bulk,
                     "stmts"))]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small rounds")
    parser.add_argument("--rounds", type=int, default=3, metavar="R")
    args = parser.parse_args(argv)
    run("quick" if args.quick else "full", args.rounds)


if __name__ == "__main__":
    main()
