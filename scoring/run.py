"""The scoring run: every overdue open loan scored in bulk by the active model, called by the
daily run (cases.staging.AFTER_DAILY_RUN) inside its transaction, and by
`flask --app app scoring run`.

The loans' current scores are replaced as a whole (a loan no longer overdue loses its score);
on the first run of a month they are also kept as that month's MonthScore rows for the
back-test. Same data, same scores: features are counted, the points are integers or fixed
numbers, and every ranking breaks ties by loan id.
"""
from sqlalchemy import delete, select

from audit.operations import record
from bulk import insert_rows
from cases.staging import AFTER_DAILY_RUN
from extensions import db
from scoring.backtest import month_start
from scoring.features import current_bases, gather, overdue_scope
from scoring.model import DEFAULT_WEIGHTS, expected_recovery, score
from scoring.models import LoanScore, MonthScore, ScoringModel


def active_model(actor=None):
    """The active model; the documented default scorecard is created (audited) when none is."""
    model = db.session.scalar(select(ScoringModel).where(ScoringModel.active.is_(True))
                              .order_by(ScoringModel.id.desc()).limit(1))
    if model is None:
        model = ScoringModel(kind="points", weights=DEFAULT_WEIGHTS, cases=0, metrics={},
                             active=True, created_by_id=getattr(actor, "id", actor))
        db.session.add(model)
        db.session.flush()
        record("scoring.model_created", actor=actor,
               data={"model": model.id, "kind": "points", "active": True})
    return model


def compute(as_of, weights):
    """[(loan id, score, amount due, expected recovery, reasons)] of the overdue open loans
    as of `as_of`, by loan id."""
    bases = current_bases(as_of)
    features = gather(as_of, bases, overdue_scope())
    rows = []
    for base in bases:
        probability, reasons = score(weights, features[base.loan_id])
        rows.append((base.loan_id, probability, base.amount_due,
                     expected_recovery(probability, base.amount_due), reasons))
    return rows


def score_all(as_of, actor=None):
    """Score every overdue open loan; no commit (the caller's transaction). Returns counts."""
    model = active_model(actor)
    rows = compute(as_of, model.weights)
    db.session.execute(delete(LoanScore.__table__))
    insert_rows(LoanScore.__table__, [
        {"loan_id": loan_id, "model_id": model.id, "scored_on": as_of, "score": p,
         "amount_due": due, "expected_recovery": expected, "reasons": reasons}
        for loan_id, p, due, expected, reasons in rows])
    month = month_start(as_of)
    kept = 0
    first_of_month = db.session.scalar(
        select(MonthScore.loan_id).where(MonthScore.month == month).limit(1)) is None
    if first_of_month and rows:
        insert_rows(MonthScore.__table__, [
            {"month": month, "loan_id": loan_id, "model_id": model.id, "score": p,
             "amount_due": due, "expected_recovery": expected}
            for loan_id, p, due, expected, _reasons in rows])
        kept = len(rows)
    return {"scored": len(rows), "month_scores": kept}


def _daily_hook(as_of, actor):
    return score_all(as_of, actor)


if _daily_hook not in AFTER_DAILY_RUN:
    AFTER_DAILY_RUN.append(_daily_hook)


def ranked(limit=None):
    """The current scores, highest expected recovery first, ties by loan id."""
    query = select(LoanScore).order_by(LoanScore.expected_recovery.desc(), LoanScore.loan_id)
    return db.session.scalars(query.limit(limit) if limit else query).all()
