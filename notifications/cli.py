"""flask --app app notifications …"""
import click
from flask.cli import AppGroup

from notifications.outbox import SenderConfigError, deliver_due

notifications_cli = AppGroup("notifications", help="The notification outbox.")


@notifications_cli.command("send")
@click.option("--limit", default=100, show_default=True, help="At most this many messages.")
def send(limit):
    """Send the due notifications through the configured sender (NOTIFY_SENDER)."""
    try:
        sent, failed = deliver_due(limit=limit)
    except SenderConfigError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"{sent} sent, {failed} failed")
