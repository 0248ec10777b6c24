"""flask --app app loans … and daily"""
from pathlib import Path

import click
from flask.cli import AppGroup

from cases.intake import CsvError, read_loan_csv
from cases.operations import import_loans

loans_cli = AppGroup("loans", help="Loans: bulk import.")


@loans_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-errors", is_flag=True,
              help="Import the good rows even when some rows are bad (they are reported).")
def loans_import(file, skip_errors):
    """Register the loans of a CSV file, one per row, each starting its handover.

    The header row names the columns: loan_no, product, borrower_kind, borrower_name,
    borrower_id_number, borrower_phone, borrower_address, principal, interest_rate,
    disbursed_on, maturity_on, account_manager, purpose, repayment_account and optionally
    schedule ("2026-04-02:100000:1200;2026-05-02:…", due date:principal:interest; left out,
    one installment at maturity). Several phones or addresses are separated by ";".

    Every row is checked first and every bad row reported with its line number; if any row
    is bad nothing is imported, unless --skip-errors. Rows repeating a registered loan
    unchanged are counted as unchanged. The loans are written 500 per transaction; a loan
    registered by someone else meanwhile counts as unchanged (or as an error if its data
    differs). Exit status 1 when there are errors and nothing was imported.
    """
    try:
        rows = read_loan_csv(file.read_bytes())
    except CsvError as exc:
        click.echo(str(exc), err=True)
        click.echo("imported 0, unchanged 0, errors 1")
        raise SystemExit(1)
    report = import_loans(rows, actor=None, skip_errors=skip_errors)
    for line, reasons in report.errors:
        click.echo(f"line {line}: {'; '.join(reasons)}", err=True)
    if report.errors and not skip_errors and not report.imported:
        click.echo("nothing imported: correct the rows above, or import the good rows with "
                   "--skip-errors", err=True)
    click.echo(f"imported {len(report.imported)}, unchanged {len(report.unchanged)}, "
               f"errors {len(report.errors)}")
    if report.errors and not report.imported:
        raise SystemExit(1)
