"""The daily run (accrual, staging, collection starts, ledger checks) on a large book (issue 12).

    python -m bench.staging [--loans N] [--quick]

Uses DATABASE_URL when it is set (an empty database, e.g. the one scripts/with-postgres.sh
creates), else a fresh SQLite file. Builds N loans (default 100 000; --quick 5 000) through
the bulk import (bench.dataset.build_loans, timed: the import's loans per second), then:

- the **first run**, on the day before D: every loan staged for the first time, the 3 % already
  overdue turn overdue and start collection (in batches);
- three **regular days** D, D+1, D+2: 0.3 % of the book turns overdue each day (their
  collections start), the overdue loans' DPD moves, the current loans are not written.

Prints seconds per 100k loans (the median of the regular days is the issue's row, target
≤ 3 s), the part of it spent starting collections (each runs the collection diagram up to its
first tasks: service tasks, conditions in the sandbox), the penalty accrual, the staging
itself and the ledger invariant check, and collections started per second.
Figures only, no assertions.
"""
import datetime as dt
import statistics
import time

from bench.dataset import analyze, book_main
from workflows.clock import BEIJING

D = dt.date(2026, 6, 15)  # a Monday in a year the statutory calendar knows
SIZES = {"quick": 5_000, "full": 100_000}


def _at(day, hour=7):
    """The clock of a daily run on `day` (Beijing time, after DAILY_RUN_AT)."""
    return dt.datetime.combine(day, dt.time(hour), BEIJING).astimezone(dt.timezone.utc)


# The parts of a daily run timed on their own: {label: name in cases.staging}.
PARTS = {"starting collections": "_emit_overdue_events", "penalty accrual": "daily_accrual",
         "staging (DPD, stage changes)": "_stage", "ledger invariant check": "check_and_report"}


def _time_parts(staging):
    """Seconds spent in each of PARTS during a daily run: {label: [seconds per call]}."""
    spent = {label: [] for label in PARTS}
    for label, name in PARTS.items():
        def timed(*args, _inner=getattr(staging, name), _spent=spent[label], **kwargs):
            start = time.perf_counter()
            try:
                return _inner(*args, **kwargs)
            finally:
                _spent.append(time.perf_counter() - start)
        setattr(staging, name, timed)
    return spent


def run(scale="full", loans=None):
    """Measure and print; returns [(label, value, unit, target)]."""
    from bench.dataset import bench_app, build_loans
    n = loans or SIZES[scale]
    app, database = bench_app("staging")
    rows = []

    def show(label, value, unit, target=""):
        rows.append((label, value, unit, target))
        print(f"  {label:<64} {value:>10,.2f} {unit:<10} {target}", flush=True)

    with app.app_context():
        import cases.staging as staging
        from cases.staging import run_daily
        from extensions import db
        from workflows import clock
        clock.set_now(_at(D - dt.timedelta(days=2)))
        start = time.perf_counter()
        counts = build_loans(n, as_of=D)
        built = time.perf_counter() - start
        show(f"{database}: bulk import building the book ({n:,} loans)", n / built, "loans/s")
        # The freshly loaded tables vacuumed and analyzed, as autovacuum leaves them in
        # production: without statistics the planner guesses 200 groups and spills
        # aggregates to disk; without the visibility map no index-only scan.
        analyze(database)
        per = 100_000 / n
        spent = _time_parts(staging)
        starting = spent["starting collections"]
        clock.set_now(_at(D - dt.timedelta(days=1)))
        start = time.perf_counter()
        first = run_daily(D - dt.timedelta(days=1))
        first_s = time.perf_counter() - start
        first_starts = sum(starting)
        show(f"{database}: run_daily, first run ({first['overdue']:,} collections started), "
             "per 100k", first_s * per, "s")
        if first["overdue"]:
            show(f"{database}: collections started per second (first run)",
                 first["overdue"] / first_starts, "/s")
        regular, regular_starts = [], []
        parts = {label: [] for label in PARTS}
        for k in range(3):
            day = D + dt.timedelta(days=k)
            clock.set_now(_at(day))
            for times in spent.values():
                times.clear()
            start = time.perf_counter()
            result = run_daily(day)
            regular.append(time.perf_counter() - start)
            regular_starts.append(sum(starting))
            for label, times in spent.items():
                parts[label].append(sum(times))
            print(f"    {day}: {regular[-1]:.2f} s (collection starts {sum(starting):.2f} s), "
                  f"{result['stage_changes']} stage changes, "
                  f"{result['overdue']} collections started "
                  f"(expected {counts['newly_by_day'].get(day, 0)} newly overdue)", flush=True)
        show(f"{database}: run_daily, a regular day (0.3 % newly overdue), per 100k loans",
             statistics.median(regular) * per, "s", "≤ 3")
        show(f"{database}: … of which starting collections, per 100k loans",
             statistics.median(regular_starts) * per, "s")
        show(f"{database}: … staging without the collection starts, per 100k loans",
             statistics.median([a - b for a, b in zip(regular, regular_starts)]) * per, "s")
        for label in list(PARTS)[1:]:
            show(f"{database}:     … of which {label}, per 100k loans",
                 statistics.median(parts[label]) * per, "s")
        db.session.remove()
        clock.set_now(None)
    return rows


def main(argv=None):
    book_main("staging", __doc__, run, argv)


if __name__ == "__main__":
    main()
