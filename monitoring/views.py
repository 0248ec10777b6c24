"""Staff raise a risk signal from the case page (DOMAIN.md §5.7); the risk warning process
takes it from there. Anyone who may add records to the case may raise one (compliance and
process owners never may: cases.access.can_change_case)."""
from flask import Blueprint, flash, redirect, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField, validators

from accounts.auth import deny
from cases.access import can_change_case, can_view_case
from cases.operations import get_loan
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


def may_raise(user, loan):
    return bool(user.is_authenticated and not loan.is_closed and can_change_case(user, loan))


@bp.app_context_processor
def risk_helpers():
    def risk_signal_form(loan):
        return RiskSignalForm(formdata=None) if may_raise(current_user, loan) else None
    return {"risk_signals_of": signals_of, "risk_signal_form": risk_signal_form,
            "risk_category_label": category_label, "risk_decision_label": decision_label}


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
