"""The daily run as the ledger's history grows (not part of `make bench`: it adds millions of
rows and takes minutes).

    python -m bench.ledger_history [--loans N] [--quick]

Uses DATABASE_URL when it is set (an empty database, e.g. the one scripts/with-postgres.sh
creates), else a fresh SQLite file. Builds N loans (default 20 000; --quick 5 000) as
bench.staging does, times a regular daily run on the fresh book, then adds a year of monthly
repayments to every loan, twice, and times a regular day after each year.

The history is synthetic but keeps every ledger invariant: each repayment is of 0.00 and its
allocations come in pairs of +1.00 and -1.00 on the principal and the interest of the loan's
first installment (four rows, as a repayment split over two parts and reversed once would
leave). So the invariant check finds nothing and reads as many rows as a real year would give
it. Prints seconds per 100k loans for the whole run and for its ledger invariant check.
Figures only, no assertions.
"""
import datetime as dt
import statistics
import time

from bench.dataset import analyze, book_main
from bench.staging import D, _at, _time_parts

SIZES = {"quick": 5_000, "full": 20_000}
MONTHS = 12


def add_year(year, moment, postgres):
    """A repayment a month for every loan, each with four zero-sum allocation rows."""
    from sqlalchemy import text

    from extensions import db
    empty = "CAST('[]' AS JSON)" if postgres else "'[]'"
    for month in range(1, MONTHS + 1):
        db.session.execute(text(
            "INSERT INTO repayments (loan_id, external_ref, amount, paid_at, principal, "
            "interest, penalty, allocation, created_at, source) "
            f"SELECT id, :prefix || id, 0, :at, 0, 0, 0, {empty}, :at, 'core_banking' "
            "FROM loans"), {"prefix": f"HIST-{year}-{month}-", "at": moment})
    db.session.execute(text(
        "INSERT INTO ledger_allocations (loan_id, repayment_id, installment_id, part, amount, "
        "created_at) "
        "SELECT r.loan_id, r.id, (SELECT min(i.id) FROM installments i "
        "WHERE i.loan_id = r.loan_id), p.part, s.sign, :at FROM repayments r "
        "CROSS JOIN (SELECT 'principal' AS part UNION ALL SELECT 'interest') p "
        "CROSS JOIN (SELECT 1 AS sign UNION ALL SELECT -1) s "
        "WHERE r.external_ref LIKE :pattern"), {"pattern": f"HIST-{year}-%", "at": moment})
    db.session.commit()


def run(scale="full", loans=None):
    from bench.dataset import bench_app, build_loans
    n = loans or SIZES[scale]
    app, database = bench_app("ledger_history")
    per = 100_000 / n
    rows = []

    def show(label, value, unit):
        rows.append((label, value, unit, ""))
        print(f"  {label:<72} {value:>10,.2f} {unit}", flush=True)

    with app.app_context():
        import cases.staging as staging
        from sqlalchemy import func, select

        from cases.staging import run_daily
        from extensions import db
        from ledger.models import Allocation
        from workflows import clock
        clock.set_now(_at(D - dt.timedelta(days=2)))
        build_loans(n, as_of=D)
        analyze(database)
        clock.set_now(_at(D - dt.timedelta(days=1)))
        run_daily(D - dt.timedelta(days=1))
        spent = _time_parts(staging)
        check = spent["ledger invariant check"]
        day = D
        for years in range(3):
            if years:
                start = time.perf_counter()
                add_year(years, clock.now(), database == "postgresql")
                analyze(database)
                count = db.session.scalar(select(func.count()).select_from(Allocation))
                print(f"    year {years} of repayments added in {time.perf_counter() - start:.0f} "
                      f"s: {count:,} allocation rows", flush=True)
            whole, checks = [], []
            for _ in range(2):  # two regular days; the median of two is their mean
                clock.set_now(_at(day))
                for times in spent.values():
                    times.clear()
                start = time.perf_counter()
                run_daily(day)
                whole.append(time.perf_counter() - start)
                checks.append(sum(check))
                day += dt.timedelta(days=1)
            history = "a fresh book" if not years else f"after {years} year(s) of repayments"
            show(f"{database}: run_daily, a regular day, {history}, per 100k loans",
                 statistics.median(whole) * per, "s")
            show(f"{database}:     … of which ledger invariant check, per 100k loans",
                 statistics.median(checks) * per, "s")
        db.session.remove()
        clock.set_now(None)
    return rows


def main(argv=None):
    book_main("ledger_history", __doc__, run, argv)


if __name__ == "__main__":
    main()
