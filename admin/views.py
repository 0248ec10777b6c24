"""Administrators' pages: open problems, calendar, notification outbox."""
from flask import Blueprint, render_template
from flask_login import login_required

from accounts.auth import roles_required
from cases.models import CaseProblem

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/problems")
@login_required
@roles_required("admin")
def problems():
    rows = (CaseProblem.query.filter(CaseProblem.resolved_at.is_(None))
            .order_by(CaseProblem.opened_at).all())
    return render_template("admin/problems.html", problems=rows)
