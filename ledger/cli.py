"""flask --app app ledger verify | cap"""
import datetime as dt
from decimal import Decimal, InvalidOperation

import click
from flask.cli import AppGroup

from ledger.operations import enter_rate_cap
from ledger.verify import verify
from workflows.errors import WorkflowError

ledger_cli = AppGroup("ledger", help="The loan ledger: invariants, penalty-rate ceiling.")


@ledger_cli.command("verify")
@click.argument("loan_nos", nargs=-1)
def ledger_verify(loan_nos):
    """Check every ledger invariant (of every loan, or of LOAN_NOS); exit 1 naming each loan
    that breaks one."""
    from cases.models import Loan
    from extensions import db
    ids = None
    if loan_nos:
        found = dict(db.session.execute(db.select(Loan.loan_no, Loan.id)
                                        .where(Loan.loan_no.in_(loan_nos))).all())
        missing = sorted(set(loan_nos) - set(found))
        if missing:
            raise click.ClickException(f"unknown loan(s): {', '.join(missing)}")
        ids = list(found.values())
    breaks = verify(ids)
    for item in breaks:
        click.echo(f"{item.loan_no}\t{item.code}\t{item.detail}")
    if breaks:
        raise click.ClickException(
            f"{len(breaks)} break(s) in {len({b.loan_no for b in breaks})} loan(s)")
    click.echo("ledger verified: every invariant holds")


@ledger_cli.command("cap")
@click.argument("effective_on")
@click.argument("lpr")
@click.option("--multiple", default="4", show_default=True,
              help="The ceiling is this multiple of the one-year LPR.")
def ledger_cap(effective_on, lpr, multiple):
    """Enter the one-year LPR in force from EFFECTIVE_ON (e.g. 2025-05-20 0.03): penalty
    interest is capped at MULTIPLE × LPR from that day on."""
    try:
        row = enter_rate_cap(dt.date.fromisoformat(effective_on), Decimal(lpr),
                             Decimal(multiple), None)
    except (ValueError, InvalidOperation) as exc:
        raise click.ClickException(f"bad date or rate: {exc}")
    except WorkflowError as exc:
        raise click.ClickException(exc.message)
    click.echo(f"from {row.effective_on}: ceiling {row.annual_cap:.4%} a year "
               f"({row.multiple} × LPR {row.lpr_one_year:.4%})")
