"""flask --app app notifications …"""
from flask.cli import AppGroup

notifications_cli = AppGroup("notifications", help="The notification outbox.")
