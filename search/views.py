"""The header search's results page."""
from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from cases.models import STAGE_LABELS
from search.operations import search, shown_key

bp = Blueprint("search", __name__)


@bp.route("/search")
@login_required
def results():
    text = (request.args.get("q") or "").strip()
    found = search(current_user, text)
    if found.loan_no_hit and request.args.get("list") is None:
        return redirect(url_for("cases.show", loan_no=found.loan_no_hit))
    return render_template("search/results.html", found=found, q=text,
                           shown_key=lambda hit: shown_key(hit, current_user),
                           STAGE_LABELS=STAGE_LABELS)
