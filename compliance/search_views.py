"""Compliance search, its CSV export and the raw audit log. GET only: nothing here changes
a case; the export appends one audit event ("export.search")."""
import io
import json

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from accounts.auth import roles_required
from accounts.roles import ROLES
from audit.field_labels import PROCESS_LABELS
from audit.labels import action_label
from audit.models import AuditEvent
from audit.presenting import event_fields, sees_technical
from cases.models import STAGE_LABELS
from audit.operations import record
from compliance.csv_export import safe_writer
from compliance.search import (Filters, all_rows, beijing_time, is_late, presets, search,
                               LATE_CHOICES)
from extensions import db
from pii.rules import mask_data
from workflows.inbox import task_title

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
                           is_late=is_late, args=filters.active(),
                           PROCESS_LABELS=PROCESS_LABELS, STAGE_LABELS=STAGE_LABELS)


def csv_columns():
    """The codes first (filters, re-imports: unchanged), then the same row readable in the
    exporter's language; the JSON only for compliance. ID and phone numbers are masked
    unless the exporter's role sees them in full (pii/rules.py)."""
    return [_("Time (Beijing)"), _("User"), _("Roles"), _("Action"), _("Process"), _("Step"),
            _("Loan"), _("Stage"), _("Late"), _("Details (JSON)"), _("Hash"),
            _("Who"), _("What"), _("Process name"), _("Step name"), _("Stage name"),
            _("Details")]


def _readable(event, user, task, loan, process_key):
    """The readable columns of one row."""
    details = "; ".join(f"{label}: {value}"
                        for label, value in event_fields(event, task, loan=loan))
    return [user.label if user else _("system"), str(action_label(event.action)),
            str(PROCESS_LABELS.get(process_key, process_key or "")),
            task_title(task) if task else "",
            str(STAGE_LABELS.get(loan.stage, loan.stage)) if loan else "", details]


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
    technical = sees_technical()
    for event, user, task, loan, process_key in rows:
        raw = mask_data(event.data, current_user, loan)
        writer.writerow([
            beijing_time(event.at), user.username if user else "",
            " ".join(sorted(user.roles)) if user else "", event.action, process_key or "",
            task.bpmn_id if task else "", loan.loan_no if loan else "",
            loan.stage if loan else "", ("yes" if is_late(task) else "no") if task else "",
            json.dumps(raw, ensure_ascii=False, sort_keys=True) if technical else "",
            event.hash] + _readable(event, user, task, loan, process_key))
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
