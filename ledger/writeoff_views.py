"""The write-off proposal on the case page, and what the page shows of a write-off."""
from flask import Blueprint, flash, redirect, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import TextAreaField, validators

from accounts.auth import roles_required
from cases.operations import get_loan
from ledger.writeoff import (WRITE_OFF_PROPOSERS, may_propose, pending, propose_write_off,
                             recovered_total, recoveries_since, written_off)
from web import translate_error
from workflows.errors import WorkflowError

bp = Blueprint("write_offs", __name__)

# The operation's own refusals; the rest are the facade's (web.translate_error).
MESSAGES = {
    "already_written_off": _l("This loan is already written off."),
    "nothing_outstanding": _l("Nothing is outstanding on this loan: there is nothing to write "
                              "off."),
    "write_off_pending": _l("A write-off of this loan is already being decided."),
}


class WriteOffForm(FlaskForm):
    reason = TextAreaField(_l("Reason for the write-off"),
                           validators=[validators.InputRequired(), validators.Length(max=2000)],
                           description=_l("Why the debt cannot be recovered for now, and what "
                                          "collection and legal steps were taken."))


@bp.app_template_global()
def write_off_panel(loan):
    """What templates/ledger/write_off.html shows for a loan."""
    row = written_off(loan)
    recoveries = recoveries_since(row) if row else []
    return {"write_off": row, "recoveries": recoveries,
            "recovered": recovered_total(recoveries),
            "pending": row is None and pending(loan),
            "form": WriteOffForm(formdata=None)
            if current_user.is_authenticated and may_propose(current_user, loan) else None}


@bp.route("/cases/<loan_no>/write-off", methods=["POST"])
@login_required
@roles_required(*WRITE_OFF_PROPOSERS)
def propose(loan_no):
    loan = get_loan(loan_no)
    back = url_for("cases.show", loan_no=loan.loan_no) + "#write-off"
    form = WriteOffForm()
    if not form.validate_on_submit():
        for name, errors in form.errors.items():
            flash(f"{form[name].label.text}: {'; '.join(errors)}", "error")
        return redirect(back)
    try:
        propose_write_off(loan, form.reason.data, current_user)
    except WorkflowError as exc:
        message = MESSAGES.get(exc.code) or translate_error(exc)
        details = [_(m) for msgs in exc.field_errors.values() for m in msgs]
        flash(" ".join([str(message)] + details), "error")
    else:
        flash(_("Write-off proposed; it now goes to the department head and the general "
                "manager for approval."), "success")
    return redirect(back)
