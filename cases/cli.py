"""flask --app app loans … and daily"""
from flask.cli import AppGroup

loans_cli = AppGroup("loans", help="Loans: bulk import.")
