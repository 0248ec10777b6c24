"""Task endpoints of the REST API."""
import json

from flask import g, jsonify, request

from api import NOT_AN_OBJECT, bp, error, forbidden, page_args, text_arg
from cases.access import can_view_task
from cases.fieldwork import complete_with_files
from cases.models import Loan
from extensions import db
from forms.builder import describe_fields, localized
from i18n import N_
from pii.rules import mask_data
from workflows.inbox import inbox_page, previous_submission, task_loan_no, task_summary
from workflows.tasks import (claim_task, complete_task, get_task, may_take, task_form_spec,
                             unclaim_task)


@bp.get("/tasks")
def list_tasks():
    """The caller's inbox.
    ---
    get:
      summary: Open tasks the caller may take (available) or has claimed (mine)
      description: >-
        Soonest due first (undated last), then priority. Follow `next` (as `after`) and
        `previous` (as `before`) from page to page: each page costs the same however far
        in. `page` still works but reads every earlier task; prefer the tokens.
        `total` counts up to 1000 (`total_capped` when there are more).
      tags: [tasks]
      parameters:
        - {name: scope, in: query, schema: {type: string, enum: [available, mine],
           default: available}}
        - {name: process, in: query, description: "A process key, e.g. handover.",
           schema: {type: string}}
        - {name: loan_no, in: query, schema: {type: string}}
        - {name: after, in: query, description: "`next` of the previous page.",
           schema: {type: string}}
        - {name: before, in: query, description: "`previous` of the next page.",
           schema: {type: string}}
        - {name: page, in: query, description: "Ignored with after or before.",
           schema: {type: integer, minimum: 1, maximum: 100000, default: 1}}
        - {name: per_page, in: query, schema: {type: integer, minimum: 1, maximum: 100,
           default: 20}}
      responses:
        200:
          description: One page of tasks, soonest due first.
          content:
            application/json:
              schema: TaskPage
    """
    page, per_page = page_args(request)
    result = inbox_page(g.api_user, text_arg(request, "scope") or "available",
                        text_arg(request, "process"), text_arg(request, "loan_no"),
                        page, per_page, after=text_arg(request, "after"),
                        before=text_arg(request, "before"))
    return jsonify({"items": [task_summary(row, loan_no) for row, loan_no in result.rows],
                    "page": page, "per_page": per_page, "total": result.total,
                    "total_capped": result.total_capped, "next": result.next,
                    "previous": result.previous})


@bp.get("/tasks/<int:task_id>")
def show_task(task_id):
    """One task with its form.
    ---
    get:
      summary: A task, its form's fields and the data it shows
      tags: [tasks]
      responses:
        200:
          description: The task.
          content:
            application/json:
              schema: TaskDetail
        403: Forbidden
    """
    row = get_task(task_id)
    if not can_view_task(g.api_user, row):
        return forbidden("you may not see this task")
    spec = task_form_spec(row)
    body = task_summary(row, task_loan_no(row))
    body["instructions"] = localized(spec.get("instructions"))
    body["fields"] = describe_fields(spec)
    # Submitted phones and ID numbers as the caller's role may see them (pii/rules.py).
    loan = db.session.get(Loan, row.case_id) if row.case_id else None
    body["data"] = mask_data(row.data, g.api_user, loan)
    # What was sent last time goes as it was to whoever may do the step (they resubmit it);
    # anyone else who may look at the task gets it masked.
    previous = previous_submission(row) if row.state == "ready" else None
    body["previous"] = previous if may_take(row, g.api_user) else mask_data(previous,
                                                                           g.api_user, loan)
    return jsonify(body)


@bp.post("/tasks/<int:task_id>/claim")
def claim(task_id):
    """Claim a task.
    ---
    post:
      summary: Claim a task for the caller
      tags: [tasks]
      responses:
        200:
          description: The claimed task.
          content:
            application/json:
              schema: Task
        403: Forbidden
        409: Conflict
    """
    row = claim_task(task_id, g.api_user)
    return jsonify(task_summary(row, task_loan_no(row)))


@bp.post("/tasks/<int:task_id>/unclaim")
def unclaim(task_id):
    """Release a claimed task.
    ---
    post:
      summary: Release a task the caller claimed
      tags: [tasks]
      responses:
        200:
          description: The released task.
          content:
            application/json:
              schema: Task
        403: Forbidden
        409: Conflict
    """
    row = unclaim_task(task_id, g.api_user)
    return jsonify(task_summary(row, task_loan_no(row)))


@bp.post("/tasks/<int:task_id>/complete")
def complete(task_id):
    """Complete a task.
    ---
    post:
      summary: Complete a task with its form's values
      description: >
        The values are checked by the same form as on the web (every field error at once);
        the process then moves on. Four eyes and the task's role apply.
        A form with a `photos` field takes `multipart/form-data`: a part `data` holding the
        JSON object of the values and one file part per picture, named after the photos
        field (JPEG or PNG, each within the document size limit). The pictures become case
        documents in the completion's transaction and the task data holds their ids; a
        refused submission stores none. A `location` field's value is an object
        `{"consent": true, "latitude", "longitude", "accuracy" (metres, > 0),
        "captured_at" (ISO time)}`; without `"consent": true` it is dropped.
      tags: [tasks]
      requestBody:
        required: true
        content:
          application/json:
            schema: TaskCompletion
          multipart/form-data:
            schema: TaskCompletionWithPhotos
      responses:
        200:
          description: The completed task.
          content:
            application/json:
              schema: Task
        403: Forbidden
        409: Conflict
    """
    if request.mimetype == "multipart/form-data":
        try:
            body = {"data": json.loads(request.form.get("data") or "{}")}
        except ValueError:
            body = None
    else:
        body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, 'the body must be JSON: {"data": {…}}', NOT_AN_OBJECT)
    if not isinstance(body.get("data"), dict):
        return error(400, 'the body must be JSON: {"data": {…}}',
                     {"data": [N_("Must be an object of the form's values.")]})
    if request.files:
        row = complete_with_files(task_id, g.api_user, request.files, data=body["data"])
    else:
        row = complete_task(task_id, g.api_user, data=body["data"])
    return jsonify(task_summary(row, task_loan_no(row)))
