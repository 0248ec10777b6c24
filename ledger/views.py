"""The staff forms for posting a repayment (the API is the usual path) and for asking for and
deciding a repayment's reversal."""
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from accounts.auth import record_denial, roles_required
from cases.forms import RepaymentForm
from cases.operations import get_loan
from ledger.forms import ReversalDecisionForm, ReversalRequestForm
from ledger.repayments import REPAYMENT_POSTERS, post_repayment
from ledger.reversals import (DECISIONS, REVERSAL_DECIDERS, REVERSAL_REQUESTERS,
                              decide_reversal, request_reversal)
from web import translate_error
from workflows.errors import NotAllowed, WorkflowError

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


# The reversal refusals' codes (web.ERROR_MESSAGES knows the general ones).
REVERSAL_MESSAGES = {
    "reversal_done": _l("This repayment is already reversed; nothing was changed."),
    "reversal_pending": _l("A reversal of this repayment is already waiting for a decision."),
    "reversal_case_closing": _l("The case is in closure: its repayments can no longer be "
                                "reversed."),
    "reversal_decided": _l("Someone else has already decided this reversal; nothing was "
                           "changed."),
    "reversal_missing": _l("This reversal does not exist on this case."),
    "repayment_missing": _l("This repayment does not exist on this case."),
    "four_eyes": _l("Four eyes: whoever requested the reversal or posted the repayment may "
                    "not decide it."),
}


def _message(exc):
    message = REVERSAL_MESSAGES.get(exc.code)
    return str(message) if message is not None else translate_error(exc)


def _back(loan):
    return redirect(url_for("cases.show", loan_no=loan.loan_no) + "#repayments")


def _flash_form(form):
    for name, errors in form.errors.items():
        flash(f"{form[name].label.text}: {'; '.join(errors)}", "error")


def _refused(exc):
    """A refusal (four eyes) is a 403 page saying why, like web.workflow_error's."""
    record_denial(current_user, exc.message)
    return render_template("error.html", code=403, message=_message(exc)), 403


def _flash_error(exc):
    details = [f"{_(m)}" for msgs in exc.field_errors.values() for m in msgs]
    flash(" ".join([_message(exc)] + details), "error")


@bp.route("/cases/<loan_no>/repayments/<int:repayment_id>/reversal", methods=["POST"],
          endpoint="request_reversal")
@login_required
@roles_required(*REVERSAL_REQUESTERS)
def request_reversal_view(loan_no, repayment_id):
    loan = get_loan(loan_no)
    form = ReversalRequestForm()
    if not form.validate_on_submit():
        _flash_form(form)
        return _back(loan)
    try:
        reversal = request_reversal(repayment_id, form.reason.data, current_user,
                                    loan_id=loan.id)
    except NotAllowed as exc:
        return _refused(exc)
    except WorkflowError as exc:
        _flash_error(exc)
    else:
        flash(_("Reversal of repayment %(ref)s requested; a second person decides it.",
                ref=reversal.repayment.external_ref), "success")
    return _back(loan)


@bp.route("/cases/<loan_no>/reversals/<int:reversal_id>/decision", methods=["POST"],
          endpoint="decide_reversal")
@login_required
@roles_required(*REVERSAL_DECIDERS)
def decide_reversal_view(loan_no, reversal_id):
    loan = get_loan(loan_no)
    form = ReversalDecisionForm()
    if not form.validate_on_submit():
        _flash_form(form)
        return _back(loan)
    try:
        reversal = decide_reversal(reversal_id, DECISIONS[form.decision.data], form.note.data,
                                   current_user, loan_id=loan.id)
    except NotAllowed as exc:
        return _refused(exc)
    except WorkflowError as exc:
        _flash_error(exc)
    else:
        if reversal.status == "approved":
            flash(_("Reversal approved: %(amount)s of repayment %(ref)s taken back.",
                    amount=reversal.repayment.amount, ref=reversal.repayment.external_ref),
                  "success")
        else:
            flash(_("Reversal rejected; the repayment stands."), "success")
    return _back(loan)
