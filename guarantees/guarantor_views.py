"""Guarantor checks (issue 16) on guarantees.views.bp: the check form (one page per guarantor,
also shown inline on the case page and linked from the inspection task), and the helpers the
case page's guarantor section and the inspection task's guarantor panel read."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, TextAreaField

from accounts.auth import deny
from cases.access import can_view_case
from cases.models import Guarantor, Loan
from cases.operations import get_loan
from extensions import db
from guarantees import guarantors as ops
from guarantees.views import bp
from web import translate_error
from workflows.errors import WorkflowError
from workflows.models import HumanTask

YES_NO = (("yes", _l("Yes")), ("no", _l("No")))
RESPONSE_LABELS = {"agreed": _l("Agrees to pay"), "refused": _l("Refuses"),
                   "no_response": _l("No response")}
RESULT_LABELS = {"paid": _l("Paid in full"), "partly_paid": _l("Paid in part"),
                 "refused": _l("Guarantor refused"), "no_response": _l("No response"),
                 "no_guarantor": _l("No guarantor")}
CHANNEL_LABELS = {"in_person": _l("Delivered in person"), "registered_mail": _l("Registered mail"),
                  "courier": _l("Courier (EMS)")}
RECEIPT_LABELS = {"signed": _l("Signed"), "pending": _l("Not back yet"),
                  "refused": _l("Refused to sign")}
INSPECTION_STEPS = ("inspect", "review", "approve")


class GuarantorCheckForm(FlaskForm):
    """CSRF and the fields; the rules are guarantees.guarantors.clean's (field errors)."""
    reachable = RadioField(_l("Could the guarantor be reached?"), choices=YES_NO,
                           validate_choice=False)
    capacity = SelectField(_l("Capacity to pay"), validate_choice=False, choices=[
        ("", _l("— choose —"))] + [(k, v) for k, v in ops.CAPACITY_LABELS.items()])
    capacity_note = TextAreaField(_l("Capacity to pay: what changed"),
                                  description=_l("Required when the capacity is weakened or "
                                                 "insufficient."))
    court_enforcement = RadioField(_l("Listed as subject to court enforcement (被执行人)?"),
                                   choices=YES_NO, validate_choice=False)
    enforcement_note = TextAreaField(_l("Court enforcement: court, case number, amount"),
                                     description=_l("Required when the guarantor is listed."))
    licence_status = SelectField(_l("Business licence status"), validate_choice=False,
                                 choices=[("", _l("— choose —"))] + [
                                     (k, v) for k, v in ops.LICENCE_LABELS.items()])

    def __init__(self, guarantor, *args, **kwargs):
        super().__init__(*args, prefix=f"g{guarantor.id}", **kwargs)
        if guarantor.kind != "company":
            del self.licence_status

    def values(self):
        return {name: self[name].data for name in (
            "reachable", "capacity", "capacity_note", "court_enforcement", "enforcement_note",
            "licence_status") if name in self}


def _inspection_task(loan, task_id):
    """The open inspection report task named by ?task=, or None."""
    if not task_id:
        return None
    try:
        row = db.session.get(HumanTask, int(task_id))
    except (TypeError, ValueError):
        return None
    if row is None or row.case_id != loan.id or row.form_key != ops.INSPECTION_FORM \
            or row.state != "ready":
        return None
    return row


@bp.route("/cases/<loan_no>/guarantors/<int:guarantor_id>/check", methods=["GET", "POST"])
@login_required
def guarantor_check(loan_no, guarantor_id):
    loan = get_loan(loan_no)
    guarantor = db.session.get(Guarantor, guarantor_id)
    if guarantor is None or guarantor.loan_id != loan.id:
        abort(404)
    task = _inspection_task(loan, request.values.get("task"))
    if not can_view_case(current_user, loan) and task is None:
        deny(current_user, "guarantor_check")
    if not ops.may_check(current_user, loan, task):
        deny(current_user, "guarantor_check")
    back = (url_for("workflows.task", task_id=task.id) + "#guarantor-panel" if task else
            url_for("cases.show", loan_no=loan.loan_no, _anchor="guarantors"))
    if request.method == "GET":
        return _render(loan, guarantor, GuarantorCheckForm(guarantor, formdata=None), task, back)
    form = GuarantorCheckForm(guarantor)
    if not form.validate_on_submit():  # only the CSRF token can fail here
        flash(_("The form has expired: please send it again."), "error")
        return _render(loan, guarantor, form, task, back, 400)
    try:
        check = ops.record_check(guarantor, form.values(), current_user,
                                 "inspection" if task else "staff", task=task)
    except WorkflowError as exc:
        db.session.rollback()
        for name, errors in exc.field_errors.items():
            if name in form:
                form[name].errors = list(form[name].errors) + [_(e) for e in errors]
        flash(translate_error(exc), "error")
        return _render(loan, guarantor, form, task, back, 400)
    if check.signal_id:
        flash(_("Check of %(name)s recorded. The guarantor is weaker than before: a risk "
                "signal (weakened guarantee) went to the leader and the risk manager.",
                name=guarantor.name), "warning")
    else:
        flash(_("Check of %(name)s recorded.", name=guarantor.name), "success")
    return redirect(back)


def _render(loan, guarantor, form, task, back, status=200):
    return render_template("guarantees/guarantor_check.html", loan=loan, guarantor=guarantor,
                           form=form, task=task, back=back,
                           last=next(iter(ops.checks_of(loan.id, guarantor.id)), None)), status


# ---------------------------------------------------------------- read by the templates

def _watch(loan):
    """The case page's guarantor section: each guarantor's status, checks and form; the
    guarantor demands of the loan."""
    from collection.guarantors import GuarantorDemand
    checks = ops.checks_of(loan.id)
    allowed = ops.may_check(current_user, loan)
    rows = []
    for g in loan.guarantors:
        mine = [c for c in checks if c.guarantor_id == g.id]
        rows.append({"guarantor": g, "checks": mine, "last": mine[0] if mine else None,
                     "form": GuarantorCheckForm(g, formdata=None) if allowed else None})
    demands = (GuarantorDemand.query.filter_by(loan_id=loan.id)
               .order_by(GuarantorDemand.sent_on.desc(), GuarantorDemand.id.desc()).all())
    return {"rows": rows, "demands": demands, "may_check": allowed}


def _task_panel(task):
    """The guarantor panel of an inspection task page (report, review, approval): each
    guarantor and its check in this inspection; links to the check form on the report."""
    if task is None or task.process_key != "inspection" or task.case_id is None \
            or task.bpmn_id not in INSPECTION_STEPS:
        return None
    guarantors = ops.guarantors_of(task.case_id)
    if not guarantors:
        return None
    done = ops.inspection_checks(task)
    report = task.form_key == ops.INSPECTION_FORM and task.state == "ready"
    loan = db.session.get(Loan, task.case_id)
    may = report and ops.may_check(current_user, loan, task)
    return {"loan": loan, "report": report, "may_check": may,
            "rows": [{"guarantor": g, "check": done.get(g.id)} for g in guarantors],
            "missing": [g for g in guarantors if g.id not in done]}


def _yes_no_label(value):
    if value is None:
        return _("Not checked")
    return _("Yes") if value else _("No")


@bp.app_context_processor
def guarantor_helpers():
    return {"guarantor_watch": _watch, "guarantor_task_panel": _task_panel,
            "guarantor_labels": {"capacity": ops.CAPACITY_LABELS,
                                 "licence": ops.LICENCE_LABELS, "source": ops.SOURCE_LABELS,
                                 "response": RESPONSE_LABELS, "result": RESULT_LABELS,
                                 "channel": CHANNEL_LABELS, "receipt": RECEIPT_LABELS},
            "guarantor_yes_no": _yes_no_label}
