"""Inbox and task pages. Thin: parse, authorise, call the facade, render."""
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from werkzeug.exceptions import RequestEntityTooLarge

from accounts.auth import deny
from cases.access import can_view_task
from cases.fieldwork import complete_with_files
from cases.models import Loan
from extensions import db
from formatting import register_filters
from forms.builder import api_formdata, build_form_class, localized
from pii.rules import mask_text
from web import translate_error
from workflows.errors import InvalidData
from workflows.labels import label_in, process_choices, process_label, step_label
from i18n import current_language
from workflows.inbox import (SCOPES, SORTS, display_value, inbox_page, previous_data,
                             previous_submission, process_keys, task_title)
from workflows.tasks import (check_can_take, claim_task, complete_task, get_task, is_excluded,
                             may_take, task_form_spec, unclaim_task)

bp = Blueprint("workflows", __name__)


bp.record_once(lambda state: register_filters(state.app))


@bp.app_context_processor
def _label_helpers():
    # Process and step names in the reader's language, for every page that lists tasks.
    return {"process_label": process_label, "step_label": step_label, "label_in": label_in,
            "process_choices": process_choices, "code_text": code_text,
            "business_key_text": business_key_text}


_NUMBERED_KEYS = (("installment:", _l("Installment %(n)s")),
                  ("inspection:emergency:", _l("Emergency revisit %(n)s")),
                  ("risk_signal:", _l("Warning signal %(n)s")))


def business_key_text(key):
    """What an instance is about, for people: "installment:3" -> "Installment 3"; a key
    that only repeats the process (extension, inspection…) says nothing more."""
    for prefix, label in _NUMBERED_KEYS:
        if (key or "").startswith(prefix) and key[len(prefix):].isdigit():
            return str(label) % {"n": key[len(prefix):]}
    return ""


def code_text(value):
    """A code value (stage, outcome, answer of a form's choice…) in the reader's language;
    any other text as it is."""
    from audit.presenting import code_label  # the label tables of every package
    return code_label(value) or ("" if value is None else value)


@bp.route("/inbox")
@login_required
def inbox():
    scope = request.args.get("tab", "mine")
    if scope not in SCOPES:
        scope = "mine"
    page = max(1, request.args.get("page", 1, type=int))
    process = request.args.get("process") or None
    loan_no = (request.args.get("loan_no") or "").strip() or None
    after, before = request.args.get("after") or None, request.args.get("before") or None
    sort = request.args.get("sort") if request.args.get("sort") in SORTS else None
    try:
        result = inbox_page(current_user, scope, process, loan_no, page, 20,
                            after=after, before=None if after else before, sort=sort)
    except InvalidData:  # a mangled page token: start from the first page
        result = inbox_page(current_user, scope, process, loan_no, sort=sort)
    explain = SORTS[sort].explain if sort else None
    why = explain([task.case_id for task, _no in result.rows]) if explain else {}
    return render_template("workflows/inbox.html", rows=result.rows, result=result,
                           tab=scope, process=process, loan_no=loan_no or "",
                           processes=process_keys(), sort=sort, sorts=SORTS, why=why)


def _task_or_403(task_id):
    row = get_task(task_id)
    if not can_view_task(current_user, row):
        deny(current_user, "case")
    return row


def _render_task(row, form, status=200):
    spec = task_form_spec(row)
    loan = db.session.get(Loan, row.case_id) if row.case_id else None
    earlier = previous_data(row)
    # show_data items may be limited to one language ("lang") and may map codes ("choices").
    shown = [display_value(item, row.context[item["name"]])
             for item in spec.get("show_data", [])
             if (row.context or {}).get(item["name"]) not in (None, "")
             and item.get("lang", current_language()) == current_language()]
    shown += [earlier[name] for name in spec.get("show", []) if name in earlier]
    # Phones and ID numbers inside what the task shows (a list of contacts, an earlier step's
    # number called) as the reader's role may see them (pii/rules.py).
    shown = [(label, mask_text(value, current_user, loan)) for label, value in shown]
    return render_template("workflows/task.html", task=row, form=form, loan=loan, shown=shown,
                           excluded=is_excluded(row, current_user),
                           instructions=localized(spec.get("instructions")),
                           title=task_title(row)), status


@bp.route("/tasks/<int:task_id>", methods=["GET", "POST"])
@login_required
def task(task_id):
    row = _task_or_403(task_id)
    form_class = build_form_class(task_form_spec(row))
    if request.method == "POST":
        check_can_take(row, current_user)  # a refusal before any form error
        form = form_class()
        if not form.validate():
            return _render_task(row, form, 400)
        try:
            if request.files:  # photos: stored with the completion (cases.fieldwork)
                complete_with_files(row.id, current_user, request.files, formdata=request.form)
            else:
                complete_task(row.id, current_user, formdata=request.form)
        except InvalidData as exc:
            # A rule checked on completion (a BEFORE_COMPLETE hook) names the fields it refuses.
            for name, errors in exc.field_errors.items():
                if name in form:
                    form[name].errors = list(form[name].errors) + [_(e) for e in errors]
            flash(translate_error(exc), "error")
            return _render_task(row, form, 400)
        flash(_("Task “%(name)s” completed.", name=task_title(row)), "success")
        return redirect(url_for("workflows.inbox"))
    # Only whoever may do the step gets the form filled with what was sent last time.
    previous = previous_submission(row) if may_take(row, current_user) else None
    if previous:
        flash(_("This step was sent back: the form holds what was submitted last time. Check it "
                "and correct what was asked."), "info")
        return _render_task(row, form_class(formdata=api_formdata(previous,
                                                                  task_form_spec(row))))
    return _render_task(row, form_class())


@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc):
    """A task form's photos over the app's MAX_CONTENT_LENGTH together: back to the form."""
    flash(_("The photos are too large together (at most %(size)s MB in one submission): send "
            "fewer at once.", size=(current_app.config.get("MAX_CONTENT_LENGTH") or 0)
            // (1024 * 1024)), "error")
    task_id = (request.view_args or {}).get("task_id")
    return redirect(url_for("workflows.task", task_id=task_id) if task_id
                    else url_for("workflows.inbox"))


@bp.route("/tasks/<int:task_id>/claim", methods=["POST"])
@login_required
def claim(task_id):
    row = claim_task(task_id, current_user)
    flash(_("You have claimed “%(name)s”.", name=task_title(row)), "success")
    return redirect(url_for("workflows.task", task_id=task_id))


@bp.route("/tasks/<int:task_id>/unclaim", methods=["POST"])
@login_required
def unclaim(task_id):
    row = unclaim_task(task_id, current_user)
    flash(_("You have released “%(name)s”.", name=task_title(row)), "info")
    return redirect(url_for("workflows.inbox", tab="available"))
