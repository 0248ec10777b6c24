"""flask --app app portfolio … : month-end snapshots and classification from the shell."""
import datetime as dt

import click
from flask.cli import AppGroup

from extensions import db
from workflows import clock

portfolio_cli = AppGroup("portfolio", help="Portfolio: month-end snapshots, classification.")


def _month(value):
    try:
        return dt.datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise click.BadParameter("expected YYYY-MM, e.g. 2026-03")


@portfolio_cli.command("snapshot")
@click.option("--month", "month", required=True, help="The month, YYYY-MM.")
@click.option("--retake", is_flag=True,
              help="Delete the month's snapshot and take it again (an administrator's "
                   "correction; audited). Without it a month already taken is left as it is.")
@click.option("--by", "username", default=None,
              help="The administrator retaking it (required with --retake).")
def snapshot(month, retake, username):
    """Take the month-end snapshot of MONTH (idempotent: loans already in it are kept)."""
    from accounts.models import User
    from portfolio.snapshots import take_month_end
    first = _month(month)
    if first >= clock.today().replace(day=1) and not retake:
        click.echo(f"note: {month} has not ended yet; the figures are as of today's ledger")
    actor = None
    if retake:
        actor = User.query.filter_by(username=username).first() if username else None
        if actor is None or "admin" not in actor.roles:
            raise click.ClickException("--retake needs --by ADMIN (an administrator's user name)")
    written = take_month_end(first, actor=actor, retake=retake)
    db.session.commit()
    click.echo(f"{month}: {written} loan(s) written")


@portfolio_cli.command("classify")
def classify():
    """Classify every open loan now (as the daily run does), and commit."""
    from portfolio.classification import reclassify_now
    counts = reclassify_now(None)
    click.echo(", ".join(f"{k} {v}" for k, v in counts.items()))
