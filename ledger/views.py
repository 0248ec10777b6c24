"""The staff form for posting a repayment (the API is the usual path)."""
from flask import Blueprint, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from accounts.auth import roles_required
from cases.forms import RepaymentForm
from cases.operations import get_loan
from ledger.repayments import REPAYMENT_POSTERS, post_repayment
from web import translate_error
from workflows.errors import WorkflowError

bp = Blueprint("repayments", __name__)


@bp.route("/cases/<loan_no>/repayments", methods=["POST"])
@login_required
@roles_required(*REPAYMENT_POSTERS)
def create(loan_no):
    loan = get_loan(loan_no)
    form = RepaymentForm()
    if not form.validate_on_submit():
        for name, errors in form.errors.items():
            flash(f"{form[name].label.text}: {'; '.join(errors)}", "error")
        return redirect(url_for("cases.show", loan_no=loan.loan_no) + "#repayments")
    try:
        repayment = post_repayment(loan, {"amount": form.amount.data,
                                          "paid_at": form.paid_at.data.isoformat(),
                                          "external_ref": form.external_ref.data}, current_user,
                                   source="staff")
    except WorkflowError as exc:
        details = [f"{_(m)}" for msgs in exc.field_errors.values() for m in msgs]
        flash(" ".join([translate_error(exc)] + details), "error")
    else:
        flash(_("Repayment of %(amount)s posted.", amount=repayment.amount), "success")
    return redirect(url_for("cases.show", loan_no=loan.loan_no) + "#repayments")
