"""Staff raise a risk signal from the case page (DOMAIN.md §5.7); the risk warning process
takes it from there. Anyone who may add records to the case may raise one (compliance and
process owners never may: cases.access.can_change_case).

Officers and leaders also propose a change of inspection frequency (the department head
approves it) and start an emergency revisit after a sudden event (issue 11 rules 5 and 9)."""
from flask import Blueprint, flash, redirect, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField, validators

from accounts.auth import deny
from cases.access import can_change_case, can_view_case
from cases.operations import get_loan
from monitoring.inspection_plan import (has_plan_role, may_change_plan, pending_change,
                                       propose_frequency_change, start_emergency_revisit)
from monitoring.risk import RISK_CATEGORIES, category_label, decision_label, raise_signal, signals_of
from web import translate_error
from workflows.errors import WorkflowError

bp = Blueprint("risk", __name__)


class RiskSignalForm(FlaskForm):
    category = SelectField(_l("Category of warning signal"), [validators.InputRequired()])
    description = TextAreaField(_l("What was observed"),
                                [validators.InputRequired(), validators.Length(max=4000)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="risk", **kwargs)
        self.category.choices = [(str(n), f"{n}. {category_label(n)}") for n in RISK_CATEGORIES]


FREQUENCIES = (("monthly", _l("Monthly")), ("bimonthly", _l("Every two months")),
               ("quarterly", _l("Quarterly")))


class FrequencyChangeForm(FlaskForm):
    frequency = SelectField(_l("New inspection frequency"), [validators.InputRequired()],
                            choices=FREQUENCIES)
    reason = TextAreaField(_l("Reason for the change"),
                           [validators.InputRequired(), validators.Length(max=2000)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="plan", **kwargs)


class EmergencyRevisitForm(FlaskForm):
    reason = TextAreaField(_l("Sudden event"),
                           [validators.InputRequired(), validators.Length(max=2000)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="revisit", **kwargs)


def may_raise(user, loan):
    return bool(user.is_authenticated and not loan.is_closed and can_change_case(user, loan))


@bp.app_context_processor
def risk_helpers():
    def risk_signal_form(loan):
        return RiskSignalForm(formdata=None) if may_raise(current_user, loan) else None
    def inspection_plan_forms(loan):
        if not may_change_plan(current_user, loan):
            return None
        return {"frequency": FrequencyChangeForm(formdata=None), "pending": pending_change(loan),
                "revisit": EmergencyRevisitForm(formdata=None)}
    return {"risk_signals_of": signals_of, "risk_signal_form": risk_signal_form,
            "risk_category_label": category_label, "risk_decision_label": decision_label,
            "inspection_plan_forms": inspection_plan_forms}


@bp.route("/cases/<loan_no>/risk-signals", methods=["POST"])
@login_required
def create(loan_no):
    loan = get_loan(loan_no)
    if not can_view_case(current_user, loan) or not can_change_case(current_user, loan):
        deny(current_user, "risk_signal")
    back = url_for("cases.show", loan_no=loan.loan_no, _anchor="risk-signals")
    form = RiskSignalForm()
    if not form.validate_on_submit():
        for name, errors in form.errors.items():
            flash(f"{form[name].label.text}: {'; '.join(errors)}", "error")
        return redirect(back)
    try:
        signal = raise_signal(loan, current_user, form.category.data, form.description.data)
    except WorkflowError as exc:
        details = [_(m) for msgs in exc.field_errors.values() for m in msgs]
        flash(" ".join([translate_error(exc)] + details), "error")
    else:
        flash(_("Risk signal reported (%(category)s): the leader and the risk manager will "
                "decide.", category=category_label(signal.category)), "success")
    return redirect(back)


def _plan_request(loan_no):
    loan = get_loan(loan_no)
    if not can_view_case(current_user, loan) or not has_plan_role(current_user, loan):
        deny(current_user, "inspection_plan")
    return loan, url_for("cases.show", loan_no=loan.loan_no, _anchor="inspection-plan")


def _flash_errors(form):
    for name, errors in form.errors.items():
        flash(f"{form[name].label.text}: {'; '.join(errors)}", "error")


def _flash_failure(exc):
    if exc.code == "plan_change_pending":
        flash(_("A change of this loan's inspection plan is already being decided."), "error")
        return
    details = [_(m) for msgs in exc.field_errors.values() for m in msgs]
    flash(" ".join([translate_error(exc)] + details), "error")


@bp.route("/cases/<loan_no>/inspection-frequency", methods=["POST"])
@login_required
def propose_frequency(loan_no):
    """Issue 11 rule 5: a change of inspection frequency, with its reason, for the leader."""
    loan, back = _plan_request(loan_no)
    form = FrequencyChangeForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return redirect(back)
    try:
        propose_frequency_change(loan, current_user, form.frequency.data, form.reason.data)
    except WorkflowError as exc:
        _flash_failure(exc)
    else:
        flash(_("Change of inspection frequency proposed: the department head decides."),
              "success")
    return redirect(back)


@bp.route("/cases/<loan_no>/emergency-inspection", methods=["POST"])
@login_required
def emergency_inspection(loan_no):
    """Issue 11 rule 9: a sudden event allows an emergency revisit, at once."""
    loan, back = _plan_request(loan_no)
    form = EmergencyRevisitForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return redirect(back)
    try:
        start_emergency_revisit(loan, current_user, form.reason.data)
    except WorkflowError as exc:
        _flash_failure(exc)
    else:
        flash(_("Emergency revisit started: the account manager has the inspection task."),
              "success")
    return redirect(back)
