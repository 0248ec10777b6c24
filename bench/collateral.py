"""The daily collateral watch on a large book (issue 16).

    python -m bench.collateral [--loans N] [--quick]

Uses DATABASE_URL when it is set (an empty database), else a fresh SQLite file. Builds N loans
(default 100 000; --quick 5 000) through the bulk import (bench.dataset), gives 40 % of them
one item of collateral each (70 % real estate, 20 % vehicles, 10 % equipment) with its
registration and insurance expiring over the next three and two years, and an intake
valuation dated the disbursement day at 1.1 to 3 times the principal (3 % of them valued 400
days ago, 2 % at 0.9 to 1.3 times: over the threshold), then times the watch
(guarantees.watch.watch) alone:

- the **first run**, on D: every expiry within its warning days, every revaluation due and
  every loan over its threshold is a warning — each a risk signal that starts a risk warning,
  each due revaluation a revaluation process: the backlog of a book that had no watch;
- the **next day**: only what came into the horizons overnight;
- **again the same day**: nothing new, nothing written (the once-only keys).

Prints seconds per run (not scaled: the warnings raised, not the book, drive the first run),
the warnings and processes started, and the rule queries alone. Figures only, no assertions.
"""
import datetime as dt
import random
import time

from bench.dataset import analyze, book_main
from bench.staging import D, SIZES, _at

SHARE = 0.4  # loans with collateral
TYPES = (("real_estate", 0.7), ("vehicle", 0.2), ("equipment", 0.1))


def _collateral(seed=11):
    """One item (and its intake valuation) for SHARE of the open loans: rows inserted in bulk,
    as the intake writes them."""
    from cases.models import Collateral, Loan
    from extensions import db
    from guarantees.models import CollateralValuation
    rng = random.Random(seed)
    loans = db.session.execute(db.select(Loan.id, Loan.principal, Loan.disbursed_on)
                               .order_by(Loan.id)).all()
    items, chosen = [], []
    for loan_id, principal, disbursed in loans:
        if rng.random() >= SHARE:
            continue
        r, asset = rng.random(), "other"
        for name, share in TYPES:
            if r < share:
                asset = name
                break
            r -= share
        value_factor = rng.uniform(0.9, 1.3) if rng.random() < 0.02 else rng.uniform(1.1, 3.0)
        valued_on = D - dt.timedelta(days=400) if rng.random() < 0.03 else disbursed
        value = round(float(principal) * value_factor, 2)
        items.append({"loan_id": loan_id, "kind": "mortgage", "description": "厂房",
                      "location": "杭州市", "valuation": value,
                      "registration_no": f"浙(2026)杭州不动产第{loan_id:07d}号",
                      "asset_type": asset, "registration_office": "杭州市不动产登记中心",
                      "registered_on": disbursed,
                      "registration_expires_on": D + dt.timedelta(days=rng.randint(0, 1095)),
                      "insurance_policy": f"P{loan_id:09d}", "insurer": "某财产保险公司",
                      "insurance_expires_on": D + dt.timedelta(days=rng.randint(0, 730))})
        chosen.append((value, valued_on))
    for start in range(0, len(items), 5000):
        db.session.execute(db.insert(Collateral), items[start:start + 5000])
    db.session.flush()
    ids = db.session.execute(db.select(Collateral.id, Collateral.loan_id)
                             .order_by(Collateral.id)).all()
    rows = [{"collateral_id": cid, "loan_id": lid, "value": value, "valued_on": valued_on,
             "method": "appraisal", "valuer": "", "source": "intake", "note": ""}
            for (cid, lid), (value, valued_on) in zip(ids, chosen)]
    for start in range(0, len(rows), 5000):
        db.session.execute(db.insert(CollateralValuation), rows[start:start + 5000])
    db.session.commit()
    return len(items)


def run(scale="full", loans=None):
    from bench.dataset import bench_app, build_loans
    n = loans or SIZES[scale]
    app, database = bench_app("collateral")
    rows = []

    def show(label, value, unit="s"):
        rows.append((label, value, unit))
        print(f"  {label:<70} {value:>10,.2f} {unit}", flush=True)

    with app.app_context():
        from extensions import db
        from guarantees import watch
        from workflows import clock
        clock.set_now(_at(D - dt.timedelta(days=2)))
        build_loans(n, as_of=D)
        db.session.commit()
        items = _collateral()
        analyze(database)
        rules = watch.policies()
        start = time.perf_counter()
        for column, reason in ((watch.Collateral.registration_expires_on,
                                "registration_expiring"),
                               (watch.Collateral.insurance_expires_on, "insurance_expiring")):
            watch._expiry_rule(D, rules, column, reason)
        watch._revaluation_rule(D, rules)
        watch._ltv_rule(rules)
        show(f"{database}: the four rules' queries alone ({n:,} loans, {items:,} items)",
             time.perf_counter() - start)
        for day, label in ((D, "first run (the backlog)"), (D + dt.timedelta(days=1),
                                                              "the next day"),
                           (D + dt.timedelta(days=1), "again the same day")):
            clock.set_now(_at(day))
            start = time.perf_counter()
            counts = watch.watch(day)
            db.session.commit()
            took = time.perf_counter() - start
            show(f"{database}: watch, {label}: {counts['collateral_warnings']:,} warnings, "
                 f"{counts['collateral_revaluations']:,} revaluations", took)
            if counts["collateral_warnings"]:
                show(f"{database}:   per warning (signal, risk warning started)",
                     took * 1000 / counts["collateral_warnings"], "ms")
        db.session.remove()
        clock.set_now(None)
    return rows


def main(argv=None):
    book_main("collateral", __doc__, run, argv)


if __name__ == "__main__":
    main()
