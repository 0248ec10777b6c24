"""The classification and the month-end snapshot on a large book (issue 14).

    python -m bench.portfolio [--loans N] [--quick]

Uses DATABASE_URL when it is set (an empty database), else a fresh SQLite file. Builds N
loans (default 100 000; --quick 5 000) through the bulk import (bench.dataset), stages them,
then times:

- classify, first run: every open loan classified for the first time (N rows and N changes);
- classify, a regular day: the next day's staging moved 0.3 % of the book; only the loans
  whose category changed are written;
- classify again the same day: nothing changes, nothing is written;
- take_month_end of the month before: one snapshot row per loan;
- take_month_end again: idempotent, nothing written.

Figures only, no assertions.
"""
import datetime as dt
import time

from bench.dataset import analyze, book_main
from bench.staging import D, SIZES, _at


def run(scale="full", loans=None):
    from bench.dataset import bench_app, build_loans
    n = loans or SIZES[scale]
    app, database = bench_app("portfolio")
    rows = []

    def show(label, value, unit="s"):
        rows.append((label, value, unit))
        print(f"  {label:<64} {value:>10,.2f} {unit}", flush=True)

    with app.app_context():
        import cases.staging as staging
        from extensions import db
        from portfolio.classification import classify
        from portfolio.snapshots import take_month_end
        from workflows import clock
        clock.set_now(_at(D - dt.timedelta(days=2)))
        build_loans(n, as_of=D)
        db.session.commit()
        analyze(database)
        per = 100_000 / n
        for day, label in ((D - dt.timedelta(days=1), "first run"), (D, "a regular day")):
            clock.set_now(_at(day))
            staging._stage(day, None)
            db.session.commit()
            start = time.perf_counter()
            counts = classify(day)
            db.session.commit()
            show(f"{database}: classify, {label} ({counts['classified_first']:,} first, "
                 f"{counts['category_changes']:,} changes), per 100k", 
                 (time.perf_counter() - start) * per)
        start = time.perf_counter()
        classify(D)
        db.session.commit()
        show(f"{database}: classify again the same day (nothing changes), per 100k",
             (time.perf_counter() - start) * per)
        month = (D.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
        for label in ("month-end snapshot", "month-end snapshot again (idempotent)"):
            start = time.perf_counter()
            written = take_month_end(month)
            db.session.commit()
            show(f"{database}: {label} ({written:,} rows), per 100k",
                 (time.perf_counter() - start) * per)
        db.session.remove()
        clock.set_now(None)
    return rows


def main(argv=None):
    book_main("portfolio", __doc__, run, argv)


if __name__ == "__main__":
    main()
