"""The scoring model's page (/scoring: the active model's weights in words, its metrics, the
fit button), the case page's score (a template global) and the commands
`flask --app app scoring run [--as-of DATE]` and `flask --app app scoring fit [--activate]`.
Thin: parse, authorise, call, render."""
import datetime as dt
import time

import click
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select

from accounts.auth import roles_required
from audit.operations import record
from extensions import db
from scoring.backtest import backtest, month_start
from scoring.fit import MIN_EACH, MIN_ROWS, NotEnoughHistory, fit
from scoring.labels import BAND_LABELS, FEATURE_LABELS, points_text, reason_text
from scoring.model import BANDS, FEATURES, probability
from scoring.models import LoanScore, ScoringModel
from scoring.run import active_model, score_all
from workflows import clock
import scoring.queues  # noqa: F401,E402 (registers the inbox's order)

bp = Blueprint("scoring", __name__, url_prefix="/scoring")
READERS = ("risk_manager", "dept_head")


class FitForm(FlaskForm):
    """Only the CSRF token."""


@bp.app_context_processor
def _score_helpers():
    return {"case_score": case_score, "score_reason_text": reason_text,
            "score_points_text": points_text}


def case_score(loan):
    """The loan's current score with its model, or None (not overdue, not scored yet)."""
    if loan is None or getattr(loan, "id", None) is None:
        return None
    row = db.session.get(LoanScore, loan.id)
    if row is None:
        return None
    return {"score": row, "model": db.session.get(ScoringModel, row.model_id)}


@bp.route("")
@login_required
@roles_required(*READERS)
def index():
    model = db.session.scalar(select(ScoringModel).where(ScoringModel.active.is_(True))
                              .order_by(ScoringModel.id.desc()).limit(1))
    versions = db.session.scalars(select(ScoringModel).order_by(ScoringModel.id.desc())
                                  .limit(10)).all()
    last_month = month_start(month_start(clock.today()) - dt.timedelta(days=1))
    table = []
    if model is not None:
        weights = model.weights["features"]
        table = [(FEATURE_LABELS[f], [(BAND_LABELS[(f, b)], points_text(weights[f].get(b, 0)))
                                      for b in BANDS[f]]) for f in FEATURES]
    return render_template(
        "scoring/index.html", model=model, versions=versions, table=table, form=FitForm(),
        base_percent=probability(model.weights.get("base", 0)) if model else None,
        points_text=points_text, backtests=[b for b in (backtest(month_start(clock.today())),
                                                        backtest(last_month)) if b],
        min_rows=MIN_ROWS, min_each=MIN_EACH)


@bp.route("/fit", methods=["POST"])
@login_required
@roles_required(*READERS)
def fit_now():
    if not FitForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("scoring.index"))
    try:
        model = fit(current_user)
    except NotEnoughHistory as exc:
        db.session.rollback()
        flash(_("Not enough history to fit a model yet: %(rows)s loan-months with a known "
                "outcome, %(payers)s of them paid. At least %(min_rows)s are needed, with "
                "%(min_each)s that paid and %(min_each)s that did not. The default scorecard "
                "stays in use.", rows=exc.rows, payers=exc.payers, min_rows=MIN_ROWS,
                min_each=MIN_EACH), "error")
        return redirect(url_for("scoring.index"))
    db.session.commit()
    if model.active:
        flash(_("Model version %(id)s was fitted and is now in use: it ranked the latest "
                "months better than the scorecard.", id=model.id), "success")
    else:
        flash(_("Model version %(id)s was fitted but not put in use: it did not rank the "
                "latest months better than the scorecard.", id=model.id), "warning")
    return redirect(url_for("scoring.index"))


# ---------------------------------------------------------------- commands

@bp.cli.command("run")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None)
def run_command(as_of):
    """Score every overdue open loan now (the daily run does this too)."""
    day = as_of.date() if as_of else clock.today()
    started = time.perf_counter()
    counts = score_all(day)
    record("scoring.run", data={"as_of": day.isoformat(), **counts})
    db.session.commit()
    seconds = time.perf_counter() - started
    click.echo(f"{counts['scored']} loans scored as of {day} "
               f"({counts['month_scores']} kept for the month) in {seconds:.2f} s")


@bp.cli.command("fit")
@click.option("--activate", is_flag=True, help="Use the new model even if it ranks worse.")
def fit_command(activate):
    """Fit a logistic model on the lender's history and store it as a new version."""
    active_model()  # the scorecard to compare with exists
    try:
        model = fit(activate=activate)
    except NotEnoughHistory as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"model {model.id}: {model.metrics}; active={model.active}")
