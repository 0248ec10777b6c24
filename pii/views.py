"""POST /cases/<loan_no>/reveal: one masked ID or phone number shown in full, for this
response only, after an audited reason (pii/reveal.py)."""
from flask import flash, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from accounts.auth import record_denial
from cases.views import _case_or_403, _render_case, bp
from pii.reveal import reveal
from workflows.errors import InvalidData, NotAllowed

REVEAL_ERRORS = {
    "pii_no_field": _l("There is no such value on this case."),
    "pii_reason": _l("Give a reason of 5 to 500 characters for showing this value."),
    "pii_rate_limited": _l("You have shown too many values in the last hour; try again later."),
}


@bp.route("/cases/<loan_no>/reveal", methods=["POST"], endpoint="reveal_pii")
@login_required
def reveal_pii(loan_no):
    loan = _case_or_403(loan_no)
    field = request.form.get("field", "")
    try:
        reveal(loan, current_user, field, request.form.get("reason", ""))
    except NotAllowed:
        record_denial(current_user, "pii_reveal")
        return render_template("error.html", code=403, message=_(
            "Your role may not reveal personal data.")), 403
    except InvalidData as exc:
        flash(str(REVEAL_ERRORS.get(exc.code, REVEAL_ERRORS["pii_no_field"])), "error")
        response, status = _render_case(loan, 400)
    else:
        flash(_("Shown in full on this page only; your reason was recorded."), "success")
        response, status = _render_case(loan, 200, revealed_field=field)
    # The page may hold a value in full: never kept by a browser or a proxy.
    return response, status, {"Cache-Control": "private, no-store"}
