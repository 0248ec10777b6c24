"""Pages of the template library (issue 16)."""
from flask import Blueprint

bp = Blueprint("notices", __name__)
