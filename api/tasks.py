"""Task endpoints of the REST API."""
from flask import g, jsonify, request

from api import bp, error, forbidden, page_args
from cases.access import can_view_task
from forms.builder import describe_fields, localized
from workflows.inbox import inbox_page, task_loan_no, task_summary
from workflows.service import claim_task, complete_task, get_task, task_form_spec, unclaim_task


@bp.get("/tasks")
def list_tasks():
    page, per_page = page_args(request)
    rows, total = inbox_page(g.api_user, request.args.get("scope", "available"),
                             request.args.get("process") or None,
                             request.args.get("loan_no") or None, page, per_page)
    return jsonify({"items": [task_summary(row, loan_no) for row, loan_no in rows],
                    "page": page, "per_page": per_page, "total": total})


@bp.get("/tasks/<int:task_id>")
def show_task(task_id):
    row = get_task(task_id)
    if not can_view_task(g.api_user, row):
        return forbidden("you may not see this task")
    spec = task_form_spec(row)
    body = task_summary(row, task_loan_no(row))
    body["instructions"] = localized(spec.get("instructions"))
    body["fields"] = describe_fields(spec)
    body["data"] = row.data
    return jsonify(body)


@bp.post("/tasks/<int:task_id>/claim")
def claim(task_id):
    row = claim_task(task_id, g.api_user)
    return jsonify(task_summary(row, task_loan_no(row)))


@bp.post("/tasks/<int:task_id>/unclaim")
def unclaim(task_id):
    row = unclaim_task(task_id, g.api_user)
    return jsonify(task_summary(row, task_loan_no(row)))


@bp.post("/tasks/<int:task_id>/complete")
def complete(task_id):
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        return error(400, 'the body must be JSON: {"data": {…}}')
    row = complete_task(task_id, g.api_user, data=body["data"])
    return jsonify(task_summary(row, task_loan_no(row)))
