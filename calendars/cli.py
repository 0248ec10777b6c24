"""flask --app app calendar …"""
import calendar as _stdcal

import click
from flask.cli import AppGroup

from calendars.operations import (CalendarInputError, complete_year, enter_days, remove_day,
                                  reopen_year)
from calendars.workdays import entered_days, non_standard_days, package_knows, year_source
from workflows.errors import WorkflowError

calendar_cli = AppGroup("calendar", help="Working-day calendar: holidays and make-up days.")

DATES_HELP = "DATES are YYYY-MM-DD or ranges YYYY-MM-DD..YYYY-MM-DD."


def _enter(dates, is_working, note):
    try:
        result = enter_days(list(dates), is_working, note, None)
    except CalendarInputError as exc:
        raise click.ClickException(f"{exc.message}; nothing was written")
    kind = "make-up working day(s)" if is_working else "holiday(s)"
    click.echo(f"entered {len(result.days)} {kind}: "
               + ", ".join(d.isoformat() for d in result.days))
    for old in result.changed:
        was = "working day" if old["was_working"] else "holiday"
        click.echo(f"  {old['date']} replaces an earlier entry ({was}, note {old['note']!r})")
    if result.retry_error:
        click.echo("warning: the days are saved, but rescheduling the reminders blocked by a "
                   f"missing calendar failed: {result.retry_error}", err=True)


@calendar_cli.command("holiday", epilog=DATES_HELP)
@click.argument("dates", nargs=-1, required=True)
@click.option("--note", default="", help="Why, e.g. the State Council notice.")
def holiday(dates, note):
    """Enter DATES as public holidays (days off, even on a weekday)."""
    _enter(dates, False, note)


@calendar_cli.command("workday", epilog=DATES_HELP)
@click.argument("dates", nargs=-1, required=True)
@click.option("--note", default="", help="Why, e.g. the State Council notice.")
def workday(dates, note):
    """Enter DATES as make-up working days (调休: working days, even on a weekend)."""
    _enter(dates, True, note)


@calendar_cli.command("remove")
@click.argument("date")
def remove(date):
    """Remove an entered DATE; the package (or the weekend rule) decides it again."""
    try:
        row = remove_day(date, None)
    except WorkflowError as exc:
        raise click.ClickException(exc.message)
    click.echo(f"removed {row.day.isoformat()}")


@calendar_cli.command("show")
@click.argument("year", type=click.IntRange(1900, 2200))
def show(year):
    """Print the holidays on weekdays and the working weekends of YEAR, month by month."""
    source = year_source(year)
    entered = entered_days(year)
    if source == "unknown":
        click.echo(f"{year}: unknown - neither the chinese-calendar package nor entered days "
                   "cover it; working days of this year cannot be counted. Enter its days "
                   "with `calendar holiday` and `calendar workday`.")
        return
    if source == "package":
        extra = f", {len(entered)} entered day(s) override it" if entered else ""
        click.echo(f"{year}: from the chinese-calendar package{extra}")
    elif source == "incomplete":
        click.echo(f"{year}: incomplete - {len(entered)} day(s) entered, not yet declared "
                   "complete (`calendar complete YEAR`); its working days are not counted")
    else:
        click.echo(f"{year}: from entered days ({len(entered)} entered; "
                   "other weekdays work, other weekends rest)")
    days = non_standard_days(year)
    if not days:
        click.echo("no non-standard days")
    for month in range(1, 13):
        in_month = [d for d in days if d["day"].month == month]
        if not in_month:
            continue
        click.echo(_stdcal.month_name[month])
        for d in in_month:
            day = d["day"]
            kind = "working day" if d["is_working"] else "holiday"
            line = f"  {day.isoformat()} {_stdcal.day_abbr[day.weekday()]}  {kind:<11}  " \
                   f"{d['source']}"
            if d["name"]:
                line += f"  {d['name'][0]}"
            if d["source"] == "entered":
                if d["row"] is not None and d["row"].note:
                    line += f"  ({d['row'].note})"
                if package_knows(year) and d["package_value"] is not None \
                        and d["package_value"] != d["is_working"]:
                    line += "  [overrides the package]"
            click.echo(line)



@calendar_cli.command("complete")
@click.argument("year", type=click.IntRange(1900, 2200))
@click.option("--note", default="", help="E.g. the State Council notice it follows.")
def complete(year, note):
    """Declare YEAR complete: every holiday and make-up day of it is entered, so its working
    days may be counted (until then a date in YEAR fails loudly)."""
    try:
        result = complete_year(year, note, None)
    except WorkflowError as exc:
        raise click.ClickException(exc.message)
    click.echo(f"{year} declared complete")
    if result.retry_error:
        click.echo("warning: rescheduling the reminders blocked by the missing calendar "
                   f"failed: {result.retry_error}", err=True)


@calendar_cli.command("reopen")
@click.argument("year", type=click.IntRange(1900, 2200))
def reopen(year):
    """Take back YEAR's completeness; its working days are not counted until completed."""
    try:
        reopen_year(year, None)
    except WorkflowError as exc:
        raise click.ClickException(exc.message)
    click.echo(f"{year} reopened: its working days are not counted until it is complete")
