"""The home page at "/": the user's figures, each a link to its list. Thin."""
from flask import Blueprint, render_template
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from accounts.roles import CASE_READERS
from cases.models import STAGE_LABELS
from home.operations import home_figures

bp = Blueprint("home", __name__)

FIGURE_LABELS = {
    "mine": _l("My tasks"),
    "available": _l("Available to my roles"),
    "overdue": _l("Overdue"),
    "approvals": _l("Approvals waiting"),
    "unread": _l("Unread notifications"),
    "cases": _l("My open cases"),
}
FIGURE_HINTS = {
    "mine": _l("Tasks you hold"),
    "available": _l("Unclaimed tasks you may take"),
    "overdue": _l("Yours and your roles' tasks past their due date"),
    "approvals": _l("Decisions in your approval lanes"),
    "unread": _l("Things you were told about"),
    "cases": _l("Open loans you can see, by stage"),
}


# For roles that see every case, the figure is the book's, not theirs.
ALL_CASES_LABEL, ALL_CASES_HINT = _l("Open cases"), _l("Open loans, by stage")


@bp.route("/")
@login_required
def index():
    labels, hints = dict(FIGURE_LABELS), dict(FIGURE_HINTS)
    if current_user.roles & CASE_READERS:
        labels["cases"], hints["cases"] = ALL_CASES_LABEL, ALL_CASES_HINT
    return render_template("home.html", figures=home_figures(current_user),
                           labels=labels, hints=hints, stage_labels=STAGE_LABELS)


def register(app):
    """The home page and the notification pages (and, through them, the engine hooks that
    write notifications)."""
    from notifications.views import bp as notifications_bp
    app.register_blueprint(bp)
    app.register_blueprint(notifications_bp)
