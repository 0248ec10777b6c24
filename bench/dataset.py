"""A book of N loans for the benchmarks, registered through the bulk import (issue 12).

    build_loans(n, seed=7, as_of=date) -> counts

Call it inside an app context of a migrated database with bpmn/ deployed. The loans are
registered by `cases.operations.import_loans` (checked like a CSV row, written BATCH per
transaction, each starting its handover), with two installments each and a mix of due dates
relative to `as_of` (a Beijing date, the first day the caller stages):

- "overdue"  (3 %): the first installment fell due at least two days before `as_of`, so the
  loan is already overdue on the day before (`as_of - 1`);
- "newly"  (0.9 %): the first installment falls due on `as_of - 1`, `as_of` or `as_of + 1`
  (0.3 % each), so each of the days `as_of`, `as_of + 1`, `as_of + 2` sees 0.3 % of the book
  turn overdue (with monthly schedules about 3.3 % of a book falls due each day; one in ten
  paying late);
- "current" (the rest): nothing falls due before `as_of + 3`.

Nothing is paid. Returns {"loans", "overdue", "newly", "newly_by_day": {date: n}, "current",
"as_of"}; the same seed gives the same book.
"""
import datetime as dt
import random

ACCOUNT_MANAGERS = ("bench_am1", "bench_am2", "bench_am3", "bench_am4")
OVERDUE, NEWLY = 0.03, 0.003  # shares of the book: overdue already, turning overdue per day
CHUNK = 5000  # rows parsed and imported per import_loans call (each commits per BATCH)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
TRADES = ("贸易", "建材", "餐饮", "物流", "纺织", "农业", "电子", "五金")


def bench_environment(name="bench"):
    """DATABASE_URL (a fresh SQLite file when unset), AUDIT_KEY and AUDIT_ANCHOR_FILE in the
    environment, as bench_app uses them and a server started beside it must see them."""
    import os
    import tempfile
    from pathlib import Path
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(tempfile.mkdtemp()) / (name + '.db')}"
    os.environ.setdefault("AUDIT_KEY", "bench-audit-key-0123456789abcdef")
    os.environ.setdefault("AUDIT_ANCHOR_FILE", str(Path(tempfile.mkdtemp()) / "anchors.log"))


def bench_app(name="bench"):
    """The app on DATABASE_URL when it is set (an empty database, e.g. from
    scripts/with-postgres.sh), else on a fresh SQLite file; migrated, bpmn/ deployed (both
    skipped on bench.run's copy of its template: bench.common.prepare_database). Returns
    (app, database kind)."""
    import logging
    import os
    import sys
    from pathlib import Path
    bench_environment(name)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

    from app import create_app
    from bench.common import prepare_database
    app = create_app({"PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000", "RATELIMIT_ENABLED": False,
                      "AUDIT_KEY": os.environ["AUDIT_KEY"],
                      "AUDIT_ANCHOR_FILE": os.environ["AUDIT_ANCHOR_FILE"]})
    with app.app_context():
        logging.getLogger("alembic").setLevel(logging.WARNING)
        prepare_database()
    return app, app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0].split("+")[0]


def _managers():
    from accounts.models import User
    from accounts.operations import create_user
    from extensions import db
    known = set(db.session.scalars(db.select(User.username).where(
        User.username.in_(ACCOUNT_MANAGERS))))
    for name in ACCOUNT_MANAGERS:
        if name not in known:
            create_user(name, "bench-password-1", ["account_manager"])
    db.session.commit()


def _row(i, rng, as_of, prefix):
    """(kind, flat CSV row) of loan number i."""
    r = rng.random()
    disbursed = as_of - dt.timedelta(days=rng.randint(40, 330))
    if r < OVERDUE:
        kind = "overdue"
        first = disbursed + dt.timedelta(days=rng.randint(1, (as_of - disbursed).days - 3))
    elif r < OVERDUE + 3 * NEWLY:
        kind = "newly"
        first = as_of + dt.timedelta(days=int((r - OVERDUE) / NEWLY) - 1)
    else:
        kind = "current"
        first = as_of + dt.timedelta(days=rng.randint(3, 60))
    maturity = first + dt.timedelta(days=rng.randint(30, 330))
    principal = rng.randint(2, 200) * 10_000
    part = principal // 2
    interest = principal * rng.randint(30, 60) // 1000 // 2
    name = (rng.choice(SURNAMES) + rng.choice(SURNAMES) + rng.choice(TRADES) + "有限公司"
            if rng.random() < 0.4 else rng.choice(SURNAMES) + "某" + str(i % 100))
    return kind, first, {
        "loan_no": f"{prefix}{i:08d}", "borrower_name": name,
        "borrower_kind": "company" if name.endswith("公司") else "person",
        "principal": f"{principal}.00", "interest_rate": f"0.0{rng.randint(30, 60)}",
        "disbursed_on": disbursed.isoformat(), "maturity_on": maturity.isoformat(),
        "account_manager": ACCOUNT_MANAGERS[i % len(ACCOUNT_MANAGERS)],
        "borrower_phone": f"138{rng.randint(0, 99_999_999):08d}",
        "schedule": f"{first.isoformat()}:{part}:{interest};"
                    f"{maturity.isoformat()}:{principal - part}:{interest}"}


def build_loans(n, seed=7, as_of=None, prefix="BK"):
    """Register n loans (numbers prefix + 8 digits) through the bulk import; the counts."""
    from cases.operations import import_loans
    from workflows import clock
    as_of = as_of or clock.today()
    _managers()
    rng = random.Random(seed)
    counts = {"loans": 0, "overdue": 0, "newly": 0, "current": 0, "newly_by_day": {},
              "as_of": as_of}
    for start in range(0, n, CHUNK):
        rows = []
        for i in range(start, min(n, start + CHUNK)):
            kind, first, row = _row(i, rng, as_of, prefix)
            counts[kind] += 1
            if kind == "newly":
                day = first + dt.timedelta(days=1)  # the first day it is overdue
                counts["newly_by_day"][day] = counts["newly_by_day"].get(day, 0) + 1
            rows.append((i + 2, row))
        report = import_loans(rows)
        if report.errors:
            raise RuntimeError(f"bench loans refused: {report.errors[:3]}")
        counts["loans"] += len(report.imported) + len(report.unchanged)
    return counts


def analyze(database):
    """PostgreSQL: VACUUM ANALYZE after loading a book, as autovacuum would (fresh statistics
    for the planner). Inside an app context."""
    if database != "postgresql":
        return
    from extensions import db
    db.session.commit()  # VACUUM sees what the session wrote
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(db.text("VACUUM ANALYZE"))


def book_main(module, doc, run, argv=None):
    """The command line of a bench on a book of loans: `python -m bench.<module> [--loans N]
    [--quick]` calls run(scale, loans)."""
    import argparse
    parser = argparse.ArgumentParser(prog=f"python -m bench.{module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, metavar="N")
    parser.add_argument("--quick", action="store_true", help="5 000 loans")
    args = parser.parse_args(argv)
    run("quick" if args.quick else "full", args.loans)
