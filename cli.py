"""Command-line interface: flask --app app <group> <command>."""
import datetime as dt
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from accounts import operations as accounts
from accounts.operations import AccountError, create_token, create_user
from extensions import db
from workflows import clock
from workflows.definitions import deploy_paths
from workflows.errors import DeployError
from workflows.timers import fire_due_timers

users_cli = AppGroup("users", help="Manage users.")
tokens_cli = AppGroup("tokens", help="Manage API tokens.")
bpmn_cli = AppGroup("bpmn", help="Validate and deploy BPMN processes.")
timers_cli = AppGroup("timers", help="Fire due timers.")
demo_cli = AppGroup("demo", help="Demo data.")
audit_cli = AppGroup("audit", help="Audit log.")


def _account_call(operation, *args, **kwargs):
    try:
        return operation(*args, **kwargs)
    except AccountError as exc:
        raise click.ClickException(str(exc))


def _named(username):
    return _account_call(accounts.user_named, username)


def _new_password(value):
    return value or click.prompt("New password", hide_input=True, confirmation_prompt=True)


@users_cli.command("create")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, help="A role key; repeatable.")
@click.option("--password", help="Prompted for when not given.")
@click.option("--name", "display_name", default="")
def users_create(username, roles, password, display_name):
    """Create a user. `--role admin` only while no active administrator exists (the first
    one); later administrators are granted with grant-admin and approve-admin."""
    _account_call(create_user, username, _new_password(password), roles, display_name,
                  four_eyes=True)
    click.echo(f"created {username} with roles {', '.join(sorted(roles))}")


@users_cli.command("list")
def users_list():
    """Every user: name, display name, roles, state."""
    pending = {g.user_id for g in accounts.AdminGrant.query.filter_by(status="pending")}
    for user in accounts.User.query.order_by(accounts.User.username):
        state = "inactive" if not user.active else (
            f"locked until {user.locked_until:%Y-%m-%d %H:%M} UTC" if user.is_locked()
            else "active")
        extra = " (admin awaiting approval)" if user.id in pending else ""
        click.echo(f"{user.username}\t{user.display_name}\t{','.join(sorted(user.roles))}"
                   f"\t{state}{extra}")


@users_cli.command("roles")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True,
              help="A role key; repeatable. The user gets exactly these roles.")
def users_roles(username, roles):
    """Set a user's roles (granting admin goes through grant-admin and approve-admin)."""
    user = _named(username)
    if "admin" in roles and "admin" not in user.roles:
        raise click.ClickException(
            "granting admin needs four eyes: users grant-admin NAME --by ADMIN, then "
            "users approve-admin NAME --by ANOTHER_ADMIN")
    _account_call(accounts.update_user, user, user.display_name, roles)
    click.echo(f"{username}: roles {', '.join(sorted(user.roles))}")


@users_cli.command("deactivate")
@click.argument("username")
def users_deactivate(username):
    """The user can no longer log in or use a token; every session ends."""
    _account_call(accounts.deactivate_user, _named(username))
    click.echo(f"{username} deactivated")


@users_cli.command("activate")
@click.argument("username")
def users_activate(username):
    _account_call(accounts.activate_user, _named(username))
    click.echo(f"{username} reactivated")


@users_cli.command("unlock")
@click.argument("username")
def users_unlock(username):
    """Lift a lock after too many failed logins."""
    _account_call(accounts.unlock_user, _named(username))
    click.echo(f"{username} unlocked")


@users_cli.command("reset-password")
@click.argument("username")
@click.option("--password", help="Prompted for when not given.")
def users_reset_password(username, password):
    """Set a new password (policy applies); ends every session and lifts a lock."""
    user = _named(username)
    _account_call(accounts.reset_password, user, _new_password(password))
    click.echo(f"password of {username} reset; every session of theirs has ended")


@users_cli.command("grant-admin")
@click.argument("username")
@click.option("--by", "by", required=True, help="The administrator asking.")
def users_grant_admin(username, by):
    """Ask for USERNAME to become an administrator; another one approves (approve-admin)."""
    grant = _account_call(accounts.request_admin_grant, _named(username), _named(by))
    click.echo(f"admin role for {username} requested by {by} (request {grant.id}); another "
               f"administrator approves: users approve-admin {username} --by OTHER_ADMIN")


def _pending(username):
    grant = accounts.pending_grant(_named(username))
    if grant is None:
        raise click.ClickException(f"no pending admin request for {username}")
    return grant


@users_cli.command("approve-admin")
@click.argument("username")
@click.option("--by", "by", required=True,
              help="An administrator other than the one who asked.")
def users_approve_admin(username, by):
    _account_call(accounts.approve_admin_grant, _pending(username), _named(by))
    click.echo(f"{username} is now an administrator (approved by {by})")


@users_cli.command("reject-admin")
@click.argument("username")
@click.option("--by", "by", required=True, help="An administrator.")
def users_reject_admin(username, by):
    _account_call(accounts.reject_admin_grant, _pending(username), _named(by))
    click.echo(f"admin request for {username} rejected by {by}")


@tokens_cli.command("create")
@click.argument("username")
@click.option("--name", default="cli")
@click.option("--days", type=int, default=None, help="Validity in days (default 90).")
def tokens_create(username, name, days):
    token = _account_call(create_token, username, name, days=days)
    click.echo("API token (shown once, only its hash is stored):")
    click.echo(token)


@tokens_cli.command("list")
@click.argument("username", required=False)
def tokens_list(username):
    """Tokens of USERNAME, or of everyone: id, user, name, created, expires, state."""
    rows = accounts.tokens_of(_named(username) if username else None)
    for row in rows:
        click.echo(f"{row.id}\t{row.user.username}\t{row.name}\t"
                   f"{accounts.utc(row.created_at):%Y-%m-%d}\t"
                   f"expires {accounts.utc(row.expires_at):%Y-%m-%d}\t{row.state()}")
    if not rows:
        click.echo("no tokens")


@tokens_cli.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id):
    """Revoke the token TOKEN_ID (see tokens list); the API refuses it from now on."""
    row = db.session.get(accounts.ApiToken, token_id)
    if row is None:
        raise click.ClickException(f"no token {token_id}")
    _account_call(accounts.revoke_token, row)
    click.echo(f"token {token_id} ({row.name}) of {row.user.username} revoked")


def parse_as_of(value):
    """`--as-of` of the commands that act at a moment: None when not given."""
    if not value:
        return None
    try:
        return clock.moment_from_text(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date-time: use ISO 8601, e.g. "
                                 "2026-06-01T09:00 (Beijing time) or 2026-06-01T01:00+00:00",
                                 param_hint="--as-of")


@bpmn_cli.command("deploy")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--comment", default="deployed from the command line")
def bpmn_deploy(files, comment):
    """Deploy FILES, or every .bpmn file in bpmn/ when none is given."""
    bpmn_dir = Path(current_app.config["BPMN_DIR"])
    paths = [Path(f) for f in files] or sorted(bpmn_dir.glob("*.bpmn"))
    from workflows.validation import format_problem
    try:
        definitions = deploy_paths(paths, bpmn_dir / "forms", comment=comment)
    except DeployError as exc:
        for problem in exc.problems:
            click.echo(f"error: {format_problem(problem)}", err=True)
        raise SystemExit(1)
    for d in definitions:
        click.echo(f"{d.process_key}: version {d.version} ({d.sha256[:12]})")


@bpmn_cli.command("validate")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
def bpmn_validate(files):
    """Check FILES (or every .bpmn file in bpmn/) as deploy would, without deploying: one line
    per problem (file, process, element, message, hint) and exit status 1, or "ok"."""
    from sqlalchemy.exc import SQLAlchemyError
    from workflows import hygiene
    from workflows.encoding import to_utf8
    from workflows.validation import CallLibrary, deployed_owners, format_problem, load_forms, \
        validate_files
    bpmn_dir = Path(current_app.config["BPMN_DIR"])
    paths = list(dict.fromkeys(Path(f).resolve() for f in files)) or sorted(
        bpmn_dir.glob("*.bpmn"))
    try:
        deployed = deployed_owners()
    except SQLAlchemyError:
        # Not migrated yet: check the files on their own (calls to deployed processes and
        # process ids taken by other files cannot be checked).
        db.session.rollback()
        click.echo("note: the database is not set up (flask --app app db upgrade), so "
                   "deployed processes are not taken into account", err=True)
        deployed = {}
    items = [(to_utf8(p.read_bytes()), p.name) for p in paths]
    library = None if deployed else CallLibrary(items, database=False)
    problems = validate_files(items, load_forms(bpmn_dir / "forms"), deployed, library=library)
    for xml, name in items:
        # As deploy does: warnings refuse a process whose owner chose so; others are shown.
        refusing, others = hygiene.review(xml)
        for found in refusing + others:
            found.filename = name
        problems += refusing
        for warning in others:
            click.echo(f"warning: {format_problem(warning)}")
    for problem in problems:
        click.echo(format_problem(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s) in {len(paths)} file(s)")
        raise SystemExit(1)
    click.echo(f"ok ({len(paths)} file(s))")


@bpmn_cli.command("replay")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--cases", help="Loan numbers or case ids, comma-separated (default: every "
              "running case of the file's processes, at most 500).")
@click.option("--completed", default=0, show_default=True, type=click.IntRange(0, 500),
              help="Also replay this many of the most recently completed cases.")
def bpmn_replay(file, cases, completed):
    """Replay the recorded history of cases on FILE (a changed diagram, not deployed) and say
    per case whether the new version runs it identically, diverges (and where) or fails.
    Forms come from bpmn/forms/. Nothing is written. Exit status 0 when every case replays
    identically, 1 when any diverges or fails, 2 when FILE would not deploy or a case is
    unknown."""
    from flask_babel import force_locale
    from workflows import replay
    from workflows.encoding import to_utf8
    from workflows.validation import format_problem, load_forms
    bpmn_dir = Path(current_app.config["BPMN_DIR"])
    path = Path(file)
    try:
        draft = replay.load_draft(to_utf8(path.read_bytes()), load_forms(bpmn_dir / "forms"),
                                  path.name)
    except replay.DraftInvalid as exc:
        for problem in exc.problems:
            click.echo(f"error: {format_problem(problem)}", err=True)
        raise SystemExit(2)
    tokens = [t for t in (cases or "").split(",") if t.strip()]
    try:
        instances, more = replay.select_instances(draft.process_keys, cases=tokens,
                                                  completed=completed)
    except replay.UnknownCases as exc:
        click.echo(f"error: no such case: {', '.join(exc.tokens)}", err=True)
        raise SystemExit(2)
    with force_locale("en"):  # form messages in the line's language
        report = replay.replay(draft, instances, more)
    names = replay.Names(draft, replay.definitions_of(instances), locale="en")
    for row in report["cases"]:
        who = row["loan_no"] or f"instance {row['instance_id']}"
        line = f"{who}\t{row['process_key']} v{row['version']} ({row['status']})\t{row['outcome']}"
        if row["reason"]:
            line += f"\t{replay.describe(row['reason'], names)}"
        if row["live_services"]:
            line += f"\t(ran for real, no recorded result: {', '.join(row['live_services'])})"
        click.echo(line)
    click.echo(f"{report['total']} case(s): {report['identical']} identical, "
               f"{report['diverges']} diverge, {report['fails']} fail")
    if report["more_running"]:
        click.echo(f"note: {report['more_running']} more running case(s) not replayed "
                   f"(at most {replay.RUNNING_LIMIT}); choose them with --cases")
    raise SystemExit(0 if report["diverges"] + report["fails"] == 0 else 1)


@timers_cli.command("run")
@click.option("--as-of", "as_of", help="The moment to treat as now (ISO 8601; Beijing time "
              "unless it has an offset).")
def timers_run(as_of):
    with clock.frozen_at(parse_as_of(as_of) or clock.now()):
        start = time.perf_counter()
        fired = fire_due_timers()
        elapsed = time.perf_counter() - start
    click.echo(f"{fired} timer(s) fired in {elapsed:.3f} s")


@click.command("worker")
@click.option("--once", is_flag=True, help="Run one sweep and stop.")
def worker(once):
    """Long-running worker: runs the daily staging once a day after DAILY_RUN_AT, fires due
    timers, tells holders and leaders about overdue tasks and sends due notifications, every
    WORKER_POLL_SECONDS. A failing sweep is logged and retried at the next poll."""
    poll = current_app.config["WORKER_POLL_SECONDS"]
    while True:
        try:
            _sweep()
        except Exception:  # noqa: BLE001 — one bad sweep must not stop the worker
            db.session.rollback()
            current_app.logger.exception("worker sweep failed")
            if once:
                raise
        if once:
            return
        time.sleep(poll)


def _sweep():
    from calendars.workdays import clear_cache as clear_calendar_cache
    from cases.staging import daily_run_due, run_daily
    from management.sla import check_overdue_tasks
    from notifications.outbox import SenderConfigError, deliver_due
    clear_calendar_cache()  # see the days entered since the last sweep
    if daily_run_due():
        click.echo(f"{clock.now().isoformat()} daily staging: {run_daily()}")
    if fired := fire_due_timers():
        click.echo(f"{clock.now().isoformat()} {fired} timer(s) fired")
    if overdue := check_overdue_tasks():
        click.echo(f"{clock.now().isoformat()} {overdue} overdue task(s) notified")
    try:
        sent, failed = deliver_due()
    except SenderConfigError as exc:  # timers keep firing; the outbox waits
        click.echo(f"{clock.now().isoformat()} notifications not sent: {exc}", err=True)
    else:
        if sent or failed:
            click.echo(f"{clock.now().isoformat()} {sent} notification(s) sent, {failed} failed")
    from audit.anchors import anchor_if_due  # at most every AUDIT_ANCHOR_EVERY seconds
    from audit.chaining import chain_pending
    if linked := chain_pending():  # the events committed since the last sweep
        click.echo(f"{clock.now().isoformat()} audit chained: {linked} event(s)")
    if anchor := anchor_if_due():
        click.echo(f"{clock.now().isoformat()} audit anchored: {anchor.count} event(s)")


@click.command("daily")
@click.option("--as-of", "as_of", help="The date to stage as of (YYYY-MM-DD, Beijing).")
def daily(as_of):
    """Compute every loan's days past due and stage; start collection for new overdue."""
    from cases.staging import run_daily
    try:
        day = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--as-of")
    counts = run_daily(day)
    click.echo(f"staged {counts['loans']} loan(s): {counts['stage_changes']} stage change(s), "
               f"{counts['overdue']} newly overdue")


@demo_cli.command("load")
@click.option("--if-empty", is_flag=True, help="Do nothing when users already exist.")
def demo_load(if_empty):
    from demo import load_demo
    click.echo(load_demo(if_empty=if_empty))


@audit_cli.command("verify")
def audit_verify():
    """Check every event's keyed hash and link, the events before the keyed chain against
    their seal, and the newest events against the last anchor. Exit status 1 on any finding."""
    from audit.keys import AuditKeyError
    from audit.verification import verify
    try:
        report = verify()
    except AuditKeyError as exc:
        raise click.ClickException(str(exc))
    check = report.check
    legacy = (f" ({check.legacy} from before the keyed chain, {check.legacy_offset} of them "
              "hashed with a local time offset)") if check.legacy else ""
    click.echo(f"{check.events} audit event(s) checked{legacy}")
    if report.last_anchor is not None:
        last = report.last_anchor
        click.echo(f"{report.anchors} anchor(s); the last, of {last.time.isoformat()}, "
                   f"recorded {last.count} event(s) up to event {last.last_id}")
    else:
        click.echo("no anchor yet (flask --app app audit anchor writes one)")
    if check.pending:
        click.echo(f"{check.pending} event(s) not linked in the chain yet (the worker or "
                   "flask --app app audit chain links them)")
    if check.first_problem_id is not None:
        from audit.checks import first_problem
        _intact, bad = first_problem(check)
        click.echo(f"audit chain broken at event {bad.id} ({bad.action}, {bad.at}); "
                   f"{check.intact} events before it are intact", err=True)
    for finding in report.findings:
        click.echo(f"FINDING {finding.code}: {finding.message}", err=True)
    if not report.ok:
        raise SystemExit(1)
    click.echo(f"audit chain intact: {check.events} events")


@audit_cli.command("chain")
def audit_chain():
    """Link the events committed since the last run into the chain, in commit order (the
    worker does it at every sweep)."""
    from audit.chaining import chain_pending
    from audit.keys import AuditKeyError
    try:
        linked = chain_pending()
    except AuditKeyError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"chained {linked} event(s)")


@audit_cli.command("anchor")
def audit_anchor():
    """Append the chain head (event count, last id and hash, HMAC) to the anchor file, store
    a copy in the database and POST it to AUDIT_ANCHOR_WEBHOOK if set."""
    from audit.anchors import anchor_path, write_anchor
    from audit.keys import AuditKeyError
    try:
        anchor = write_anchor(wait_for_webhook=True)
    except (AuditKeyError, OSError) as exc:
        raise click.ClickException(f"no anchor written: {exc}")
    click.echo(f"anchored {anchor.count} event(s) up to event {anchor.last_id} "
               f"at {anchor.time.isoformat()} in {anchor_path()}")


def register_cli(app):
    from calendars.cli import calendar_cli
    from cases.cli import loans_cli
    from ledger.cli import ledger_cli
    from notifications.cli import notifications_cli
    from portfolio.cli import portfolio_cli
    for group in (users_cli, tokens_cli, bpmn_cli, timers_cli, demo_cli, audit_cli, worker, daily,
                  calendar_cli, loans_cli, notifications_cli, ledger_cli, portfolio_cli):
        app.cli.add_command(group)
