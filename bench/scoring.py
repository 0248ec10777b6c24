"""The scoring run on a large book (issue 14 item 7).

    python -m bench.scoring [--loans N] [--overdue SHARE]

Uses DATABASE_URL when set (an empty database, e.g. from scripts/with-postgres.sh), else a
fresh SQLite file. The book is written straight into the tables (not through the import: only
the rows the features read matter here): N loans (default 100 000) of three installments,
SHARE of them (default 0.15) overdue with promises, calls, a guarantor, collateral and
repayments. Then times score_all twice (the first run of a month also keeps the month's
scores; the second replaces the scores only). Figures only, no assertions.
"""
import argparse
import datetime as dt
import random
import time
from decimal import Decimal

AS_OF = dt.date(2026, 6, 15)
UTC = dt.timezone.utc
CHUNK = 5000


def _insert(table, rows):
    from sqlalchemy import insert
    from extensions import db
    for at in range(0, len(rows), CHUNK):
        db.session.execute(insert(table), rows[at:at + CHUNK])


def build(n, share, seed=11):
    from accounts.operations import create_user
    from cases.models import Collateral, ContactLogEntry, Guarantor, Loan, PromiseToPay
    from extensions import db
    from ledger.models import Installment, Repayment
    rng = random.Random(seed)
    manager = create_user("bench_am", "bench-pass-123", ["account_manager"]).id
    loans, installments, promises, calls, guarantors, collateral, repayments = ([] for _ in
                                                                                range(7))
    for i in range(1, n + 1):
        overdue = rng.random() < share
        dpd = rng.choice((2, 5, 15, 40, 75, 120, 300, 500)) if overdue else 0
        principal = rng.choice((3000, 20000, 80000, 300000))
        loans.append({"id": i, "loan_no": f"SC{i:08d}", "borrower_name": "x",
                      "principal": principal, "interest_rate": Decimal("0.05"),
                      "disbursed_on": dt.date(2024, 1, 5), "maturity_on": dt.date(2027, 1, 5),
                      "account_manager_id": manager, "status": "servicing", "product": "term",
                      "purpose": "", "repayment_account": "", "dpd": dpd,
                      "stage": "M2" if overdue else "current"})
        part = Decimal(principal) / 3
        for seq, due in enumerate((AS_OF - dt.timedelta(days=dpd or 20) - dt.timedelta(days=60),
                                   AS_OF - dt.timedelta(days=dpd or -10),
                                   AS_OF + dt.timedelta(days=90)), 1):
            paid = seq == 1
            installments.append({"loan_id": i, "seq": seq, "due_on": due, "principal_due": part,
                                 "interest_due": 10, "penalty_due": 0,
                                 "principal_paid": part if paid else 0,
                                 "interest_paid": 10 if paid else 0, "penalty_paid": 0,
                                 "paid_off_on": due if paid else None})
        if not overdue:
            continue
        for k in range(rng.randint(0, 3)):
            promises.append({"loan_id": i, "promised_on": AS_OF - dt.timedelta(days=5 + 20 * k),
                             "amount": 100, "status": rng.choice(("kept", "broken", "open")),
                             "made_at": dt.datetime(2026, 1, 1, tzinfo=UTC)})
        for k in range(rng.randint(0, 5)):
            calls.append({"loan_id": i, "at": dt.datetime(2026, 6, 1, 2, tzinfo=UTC)
                          + dt.timedelta(days=k), "kind": "call", "number": "13900000000",
                          "outcome": rng.choice(("reached", "no_answer", "switched_off"))})
        if rng.random() < 0.5:
            guarantors.append({"loan_id": i, "kind": "person", "name": "g",
                               "phone": f"138{i:08d}"})
        if rng.random() < 0.3:
            collateral.append({"loan_id": i, "kind": "mortgage", "description": "flat",
                               "valuation": principal * rng.choice((1, 2))})
        if rng.random() < 0.4:
            repayments.append({"loan_id": i, "external_ref": f"sc-{i}", "amount": 100,
                               "paid_at": dt.datetime(2026, 5, 20, tzinfo=UTC)})
    for model, rows in ((Loan, loans), (Installment, installments), (PromiseToPay, promises),
                        (ContactLogEntry, calls), (Guarantor, guarantors),
                        (Collateral, collateral), (Repayment, repayments)):
        _insert(model.__table__, rows)
    db.session.commit()
    return sum(1 for row in loans if row["dpd"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--overdue", type=float, default=0.15)
    args = parser.parse_args()
    from bench.dataset import bench_app
    from extensions import db
    from scoring.run import score_all
    app, database = bench_app("scoring")
    with app.app_context():
        start = time.perf_counter()
        overdue = build(args.loans, args.overdue)
        print(f"{database}: {args.loans} loans, {overdue} overdue, built in "
              f"{time.perf_counter() - start:.1f} s")
        for label in ("first run of the month", "a later run"):
            start = time.perf_counter()
            counts = score_all(AS_OF)
            db.session.commit()
            print(f"{label}: {counts} in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
