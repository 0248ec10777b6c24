"""Staff scorecards, the daily collection report and the collectors' targets."""
from flask import Blueprint

bp = Blueprint("scorecards", __name__, url_prefix="/scorecards")
