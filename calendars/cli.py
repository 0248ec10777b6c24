"""flask --app app calendar …"""
from flask.cli import AppGroup

calendar_cli = AppGroup("calendar", help="Working-day calendar: holidays and make-up days.")
