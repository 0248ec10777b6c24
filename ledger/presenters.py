"""What the case page shows of the ledger beyond the repayments table."""
from collections import defaultdict

from flask_babel import lazy_gettext as _l

from ledger.forms import ReversalDecisionForm, ReversalRequestForm
from ledger.models import Repayment, Reversal
from ledger.reversals import TEXT_MAX, may_decide, may_request

REVERSAL_STATUS_LABELS = {"pending": _l("Waiting for a decision"),
                          "approved": _l("Reversed"), "rejected": _l("Reversal rejected")}


def reversal_context(loan, user):
    """The context of templates/ledger/reversals.html: {"reversals": {...}} with one row per
    repayment of the loan (oldest first): the repayment, its reversals (oldest first), the
    pending one, and whether `user` may request a reversal of it or decide the pending one;
    blank forms only when some row offers them."""
    repayments = (Repayment.query.filter_by(loan_id=loan.id)
                  .order_by(Repayment.paid_at, Repayment.id).all())
    history = defaultdict(list)
    for reversal in (Reversal.query.filter_by(loan_id=loan.id)
                     .order_by(Reversal.requested_at, Reversal.id)):
        history[reversal.repayment_id].append(reversal)
    requestable = may_request(user, loan)
    rows = []
    for repayment in repayments:
        reversals = history[repayment.id]
        live = next((r for r in reversals if r.status != "rejected"), None)
        pending = live if live is not None and live.status == "pending" else None
        rows.append({"repayment": repayment, "reversals": reversals, "pending": pending,
                     "may_request": (requestable and live is None
                                     and repayment.reversed_at is None),
                     "may_decide": pending is not None and may_decide(user, pending)})
    return {"reversals": {
        "rows": rows, "labels": REVERSAL_STATUS_LABELS, "max_length": TEXT_MAX,
        "request_form": (ReversalRequestForm(formdata=None)
                         if any(r["may_request"] for r in rows) else None),
        "decision_form": (ReversalDecisionForm(formdata=None)
                          if any(r["may_decide"] for r in rows) else None)}}
