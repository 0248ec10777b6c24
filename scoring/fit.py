"""Fitting the model on the lender's own history: a logistic regression on the banded
features (one indicator per band), L2-regularised, by Newton's method (IRLS) in pure Python.

History: each loan overdue (and open) at the end of a month, with its features as of the next
month's first day, and whether it paid anything in that next month (the next month-end
snapshot's collected_in_month > 0). Identical band patterns are grouped, so a Newton step
costs the number of distinct patterns, not of loan-months; the result does not depend on the
order of the rows (patterns are sorted) and no random number is drawn.

The fitted coefficients are stored as points (× PDO / ln 2, one decimal), the same shape as
the default scorecard, and the new version becomes active only when it ranks the held-out
latest months better than the points model (AUC), or when asked to (--activate).
"""
import math
from collections import Counter

from sqlalchemy import literal_column, select

from audit.operations import record
from extensions import db
from portfolio.models import LoanMonthSnapshot
from scoring.backtest import auc, next_month
from scoring.features import Base, gather
from scoring.model import BANDS, DEFAULT_WEIGHTS, FEATURES, LN2, PDO, bands, probability
from scoring.models import ScoringModel
from workflows import clock

MIN_ROWS, MIN_EACH = 200, 20
L2 = 1.0
HOLDOUT_SHARE = 0.2
COLUMNS = [(feature, band) for feature in FEATURES for band in BANDS[feature]]


class NotEnoughHistory(Exception):
    def __init__(self, rows, payers):
        super().__init__(f"{rows} loan-months, {payers} payers: need {MIN_ROWS} "
                         f"and {MIN_EACH} of each outcome")
        self.rows, self.payers = rows, payers


def history():
    """[(month, loan id, {feature: band}, paid: bool)], by month and loan id."""
    months = db.session.scalars(select(LoanMonthSnapshot.month).distinct()
                                .order_by(LoanMonthSnapshot.month)).all()
    rows = []
    for before, month in zip(months, months[1:]):
        if next_month(before) != month:
            continue
        overdue = (LoanMonthSnapshot.month == before, LoanMonthSnapshot.dpd > 0,
                   LoanMonthSnapshot.status != literal_column("'closed'"))
        bases = [Base(loan_id, dpd, due, balance) for loan_id, dpd, due, balance in
                 db.session.execute(select(LoanMonthSnapshot.loan_id, LoanMonthSnapshot.dpd,
                                           LoanMonthSnapshot.overdue_amount,
                                           LoanMonthSnapshot.balance)
                                    .where(*overdue).order_by(LoanMonthSnapshot.loan_id)).all()]
        paid = dict(db.session.execute(
            select(LoanMonthSnapshot.loan_id, LoanMonthSnapshot.collected_in_month)
            .where(LoanMonthSnapshot.month == month)).all())
        features = gather(month, bases, select(LoanMonthSnapshot.loan_id).where(*overdue))
        for base in bases:
            if base.loan_id in paid:
                banded = {f: band for f, (band, _v) in bands(features[base.loan_id]).items()}
                rows.append((month, base.loan_id, banded, paid[base.loan_id] > 0))
    return rows


def _solve(matrix, vector):
    """x with matrix·x = vector (Gaussian elimination, partial pivoting)."""
    n = len(vector)
    a = [row[:] + [vector[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            factor = a[r][col] / a[col][col]
            if factor:
                for c in range(col, n + 1):
                    a[r][c] -= factor * a[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (a[r][n] - sum(a[r][c] * x[c] for c in range(r + 1, n))) / a[r][r]
    return x


def logistic(rows, l2=L2, iterations=50):
    """(intercept, {(feature, band): coefficient}) maximising the penalised likelihood of
    rows [(…, {feature: band}, paid)]."""
    groups = Counter((tuple(banded[f] for f in FEATURES), paid) for *_k, banded, paid in rows)
    patterns = {}
    for (key, paid), n in sorted(groups.items()):
        counts = patterns.setdefault(key, [0, 0])
        counts[0 if paid else 1] += n
    index = {column: i + 1 for i, column in enumerate(COLUMNS)}  # 0: intercept
    design = [([0] + [index[(f, b)] for f, b in zip(FEATURES, key)], s, s + f_)
              for key, (s, f_) in sorted(patterns.items())]
    size = len(COLUMNS) + 1
    beta = [0.0] * size
    for _step in range(iterations):
        grad = [0.0] + [-l2 * b for b in beta[1:]]
        hess = [[0.0] * size for _ in range(size)]
        for i in range(1, size):
            hess[i][i] = l2
        for active, successes, total in design:
            eta = sum(beta[i] for i in active)
            p = 1 / (1 + math.exp(-eta))
            g, w = successes - total * p, total * p * (1 - p)
            for i in active:
                grad[i] += g
                for j in active:
                    hess[i][j] += w
        step = _solve(hess, grad)
        beta = [b + s for b, s in zip(beta, step)]
        if max(abs(s) for s in step) < 1e-9:
            break
    return beta[0], {column: beta[index[column]] for column in COLUMNS}


def as_weights(intercept, coefficients):
    """The coefficients as points, the scorecard's shape."""
    to_points = PDO / LN2
    table = {f: {b: round(coefficients[(f, b)] * to_points, 1) for b in BANDS[f]}
             for f in FEATURES}
    return {"pdo": PDO, "base": round(intercept * to_points, 1), "features": table}


def _auc(weights, rows):
    scored = []
    for *_k, banded, paid in rows:
        points = weights["base"] + sum(weights["features"][f].get(banded[f], 0)
                                       for f in FEATURES)
        scored.append((probability(points), paid))
    return auc(scored)


def fit(actor=None, activate=False, rows=None):
    """Fit, store and (if it ranks better, or asked) activate a new model; no commit.
    Raises NotEnoughHistory. Returns the new ScoringModel."""
    rows = history() if rows is None else rows
    payers = sum(1 for *_k, paid in rows if paid)
    if len(rows) < MIN_ROWS or payers < MIN_EACH or len(rows) - payers < MIN_EACH:
        raise NotEnoughHistory(len(rows), payers)
    months = sorted({row[0] for row in rows})
    held = set()
    for month in reversed(months[1:]):  # the latest months, about a fifth of the rows
        if sum(1 for row in rows if row[0] in held) >= HOLDOUT_SHARE * len(rows):
            break
        held.add(month)
    train = [row for row in rows if row[0] not in held]
    test = [row for row in rows if row[0] in held]
    trial = as_weights(*logistic(train))
    metrics = {"rows": len(rows), "payers": payers, "holdout_rows": len(test),
               "auc_fitted": _auc(trial, test), "auc_points": _auc(DEFAULT_WEIGHTS, test),
               "first_month": months[0].isoformat(), "last_month": months[-1].isoformat(),
               "l2": L2}
    better = (metrics["auc_fitted"] is not None and metrics["auc_points"] is not None
              and metrics["auc_fitted"] > metrics["auc_points"])
    model = ScoringModel(kind="logistic", weights=as_weights(*logistic(rows)),
                         fitted_on=clock.today(), cases=len(rows), metrics=metrics,
                         active=False, created_by_id=getattr(actor, "id", actor))
    db.session.add(model)
    db.session.flush()
    record("scoring.model_fitted", actor=actor, data={"model": model.id, **metrics})
    if activate or better:
        activate_model(model, actor, reason="asked" if activate else "better_backtest")
    return model


def activate_model(model, actor=None, reason="asked"):
    """Make `model` the only active one and rescore today's overdue loans with it."""
    from scoring.run import score_all
    for other in db.session.scalars(select(ScoringModel).where(ScoringModel.active.is_(True))):
        other.active = False
    model.active = True
    db.session.flush()
    record("scoring.model_activated", actor=actor, data={"model": model.id, "reason": reason})
    score_all(clock.today(), actor)
