"""The account manager's "Request an extension" form on the case page (DOMAIN.md §5.4)."""
from flask import Blueprint, flash, redirect, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, TextAreaField, validators

from accounts.auth import deny, roles_required
from extension_requests.operations import may_request, request_extension
from cases.operations import get_loan
from web import translate_error
from workflows.errors import InvalidData

bp = Blueprint("extensions", __name__)


class ExtensionForm(FlaskForm):
    new_maturity_on = DateField(_l("New maturity date"), validators=[validators.InputRequired()])
    proposed_rate = DecimalField(_l("Proposed interest rate"), places=6,
                                 validators=[validators.InputRequired()],
                                 description=_l("Annual rate as a fraction, e.g. 0.0435."))
    reason = TextAreaField(_l("Reason"), validators=[validators.InputRequired(),
                                                     validators.Length(max=2000)])


@bp.route("/cases/<loan_no>/extensions", methods=["POST"])
@login_required
@roles_required("account_manager")
def create(loan_no):
    from cases.views import _render_case
    loan = get_loan(loan_no)
    if not may_request(current_user, loan):
        deny(current_user, "case_change")
    form = ExtensionForm()
    if form.validate_on_submit():
        try:
            request_extension(loan, {"new_maturity_on": form.new_maturity_on.data.isoformat(),
                                     "proposed_rate": str(form.proposed_rate.data),
                                     "reason": form.reason.data}, current_user)
        except InvalidData as exc:
            for name, errors in exc.field_errors.items():
                if name in form:
                    form[name].errors = list(form[name].errors) + [_(e) for e in errors]
            flash(translate_error(exc), "error")
        else:
            flash(_("Extension requested; it now goes for approval."), "success")
            return redirect(url_for("cases.show", loan_no=loan.loan_no, _anchor="schedule"))
    else:
        flash(_("Please correct the errors below."), "error")
    return _render_case(loan, 400, open_form="extension", extension_form=form)
