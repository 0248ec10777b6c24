"""Compliance search, its CSV export and the raw audit log. GET only: nothing here changes
a case; the export appends one audit event ("export.search")."""
import io
import json

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from accounts.auth import roles_required
from accounts.roles import ROLES
from audit.models import AuditEvent
from audit.operations import record
from compliance.csv_export import safe_writer
from compliance.search import (Filters, all_rows, beijing_time, is_late, presets, search,
                               LATE_CHOICES)
from extensions import db

bp = Blueprint("compliance_search", __name__, url_prefix="/compliance")

SEARCHERS = ("compliance", "admin", "dept_head", "general_manager", "risk_manager")


def _page():
    try:
        return max(1, int(request.args.get("page", 1)))
    except ValueError:
        return 1


@bp.get("/search")
@login_required
@roles_required(*SEARCHERS)
def search_page():
    filters = Filters.from_args(request.args)
    results = search(filters, page=_page())
    return render_template("compliance/search.html", filters=filters, results=results,
                           presets=presets(), roles=ROLES, late_choices=LATE_CHOICES,
                           is_late=is_late, args=filters.active())


def csv_columns():
    return [_("Time (Beijing)"), _("User"), _("Roles"), _("Action"), _("Process"), _("Step"),
            _("Loan"), _("Stage"), _("Late"), _("Details (JSON)"), _("Hash")]


@bp.get("/search.csv")
@login_required
@roles_required(*SEARCHERS)
def search_csv():
    filters = Filters.from_args(request.args)
    rows = all_rows(filters)
    out = io.StringIO()
    out.write("\ufeff")  # BOM: Excel then reads the file as UTF-8 (Chinese names)
    writer = safe_writer(out)  # neutralises formula-leading cells
    writer.writerow(csv_columns())
    for event, user, task, loan, process_key in rows:
        writer.writerow([
            beijing_time(event.at), user.username if user else "",
            " ".join(sorted(user.roles)) if user else "", event.action, process_key or "",
            task.bpmn_id if task else "", loan.loan_no if loan else "",
            loan.stage if loan else "", ("yes" if is_late(task) else "no") if task else "",
            json.dumps(event.data, ensure_ascii=False, sort_keys=True), event.hash])
    record("export.search", actor=current_user,
           data={"filters": filters.active(), "rows": len(rows)})
    db.session.commit()
    return Response(out.getvalue().encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=search.csv"})


@bp.get("/audit")
@login_required
@roles_required(*SEARCHERS)
def audit_log():
    page = db.paginate(AuditEvent.query.order_by(AuditEvent.id.desc()), page=_page(),
                       per_page=100, error_out=False)
    return render_template("compliance/audit.html", page=page)
