"""Header search and the filtered case list at 100k loans (issue 13 item 4).

    python -m bench.search [--quick] [--loans N]
    bash scripts/with-postgres.sh .venv/bin/python -m bench.search

Builds the book through the bulk import (bench.dataset's rows, person borrowers with a
resident ID number), stages it once (DPD and stages as the daily run leaves them), then times
in-process, as the pages call them, `search.operations.search` (a case reader, and an
account manager who sees a quarter of the book) and `cases.listing.list_cases` for a set of
filter and sort combinations. Prints p50/p95 per kind of query; target p95 ≤ 100 ms.
"""
import datetime as dt
import random
import statistics
import sys
import time

from bench.common import Row, scale_arg, show

SIZES = {"quick": 20_000, "full": 100_000}
ROUNDS = {"quick": 40, "full": 60}
TARGET = "≤ 100"
D = dt.date(2026, 6, 15)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(i):
    """A valid 18-character resident ID number (GB 11643), distinct per i."""
    born = dt.date(1960, 1, 1) + dt.timedelta(days=i % 15_000)
    body = f"{110101 + (i // 1000) % 800:06d}{born:%Y%m%d}{i % 1000:03d}"
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, ID_WEIGHTS)) % 11]
    return body + check


def build(n, seed=7):
    """bench.dataset's book with ID numbers on the person borrowers; the rows written."""
    from bench.dataset import CHUNK, _managers, _row
    from cases.operations import import_loans
    _managers()
    rng, rows_all = random.Random(seed), []
    for start in range(0, n, CHUNK):
        rows = []
        for i in range(start, min(n, start + CHUNK)):
            _kind, _first, row = _row(i, rng, D, "BK")
            if row["borrower_kind"] == "person":
                row["borrower_id_number"] = resident_id(i)
            rows.append((i + 2, row))
        report = import_loans(rows)
        if report.errors:
            raise RuntimeError(f"bench loans refused: {report.errors[:3]}")
        rows_all += [row for _line, row in rows]
    return rows_all


def percentiles(times):
    ordered = sorted(times)
    return (statistics.median(ordered) * 1000,
            ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))] * 1000)


def run(scale="full", loans=None):
    from bench.dataset import analyze, bench_app
    n = loans or SIZES[scale]
    rounds = ROUNDS[scale]
    app, database = bench_app("search")
    out = []

    def report(label, times):
        p50, p95 = percentiles(times)
        out.append(show(Row(f"{database}: {label} p50", p50, "ms")))
        out.append(show(Row(f"{database}: {label} p95", p95, "ms", TARGET)))

    with app.app_context():
        from accounts.models import User
        from accounts.operations import create_user
        from cases.listing import list_cases, parse_filters
        from cases.staging import run_daily
        from extensions import db
        from search.operations import search
        from workflows import clock
        clock.set_now(dt.datetime(2026, 6, 14, 2, 0, tzinfo=dt.timezone.utc))
        start = time.perf_counter()
        rows = build(n)
        built = time.perf_counter() - start
        out.append(show(Row(f"{database}: bulk import with search keys ({n:,} loans)",
                            n / built, "loans/s")))
        run_daily(D)
        db.session.commit()
        analyze(database)
        reader = create_user("bench_reader", "bench-password-1", ["dept_head"])
        manager = db.session.scalar(db.select(User).where(User.username == "bench_am1"))
        db.session.commit()
        rng = random.Random(11)
        names = [r["borrower_name"] for r in rows]
        people = [r for r in rows if r.get("borrower_id_number")]
        queries = {
            "name, 2 characters": lambda: (lambda s: s[:2])(rng.choice(names)),
            "name, 3 characters": lambda: (lambda s, at: s[at:at + 3])(
                *(lambda s: (s, rng.randrange(max(1, len(s) - 2))))(rng.choice(names))),
            "ID number (x lower-case, spaced)": lambda: (lambda n: " ".join(
                n[k:k + 6] for k in (0, 6, 12)))(rng.choice(people)["borrower_id_number"].lower()),
            "phone (dashed)": lambda: (lambda p: f"{p[:3]}-{p[3:7]}-{p[7:]}")(
                rng.choice(rows)["borrower_phone"]),
            "loan number": lambda: rng.choice(rows)["loan_no"],
        }
        for who, user in (("case reader", reader), ("account manager", manager)):
            for label, make in queries.items():
                times, found = [], 0
                for _ in range(rounds):
                    q = make()
                    start = time.perf_counter()
                    result = search(user, q)
                    times.append(time.perf_counter() - start)
                    found += bool(result.hits)
                    db.session.rollback()
                report(f"header search, {label}, {who} (found {found}/{rounds})", times)
        lists = {
            "default (newest first), page 1": {},
            "stage dpd_8_30 by outstanding desc": {"stage": "dpd_8_30", "sort": "outstanding",
                                                   "dir": "desc"},
            "DPD 1-30 by DPD desc": {"dpd_min": "1", "dpd_max": "30", "sort": "dpd",
                                     "dir": "desc"},
            "status handover, manager am2, by borrower": {"status": "handover",
                                                          "manager": "bench_am2",
                                                          "sort": "borrower"},
            "outstanding 500k-1M by due date": {"outstanding_min": "500000",
                                                "outstanding_max": "1000000", "sort": "due"},
            "q name 2 characters by loan no": {"q": "王李", "sort": "loan_no"},
            "by outstanding asc, page 40": {"sort": "outstanding", "page": "40"},
        }
        for who, user in (("case reader", reader), ("account manager", manager)):
            for label, args in lists.items():
                times = []
                for _ in range(rounds):
                    start = time.perf_counter()
                    listing = list_cases(db.session, user, parse_filters(args))
                    times.append(time.perf_counter() - start)
                    db.session.rollback()
                report(f"case list, {label}, {who} ({listing.total:,} rows)", times)
    return out


if __name__ == "__main__":
    argv = sys.argv[1:]
    count = None
    if "--loans" in argv:
        count = int(argv[argv.index("--loans") + 1])
    run(scale_arg(argv), count)
