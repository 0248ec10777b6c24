"""Repayments from core banking."""
from flask import g, jsonify, request

from accounts.auth import roles_required
from accounts.models import utc
from api import bp, error
from cases.operations import get_loan
from ledger.repayments import REPAYMENT_POSTERS, post_repayment


@bp.post("/loans/<loan_no>/repayments")
@roles_required(*REPAYMENT_POSTERS)
def create_repayment(loan_no):
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object")
    loan = get_loan(loan_no)
    repayment = post_repayment(loan, body, g.api_user)
    return jsonify({"loan_no": loan.loan_no, "external_ref": repayment.external_ref,
                    "amount": str(repayment.amount), "paid_at": utc(repayment.paid_at).isoformat(),
                    "principal": str(repayment.principal), "interest": str(repayment.interest),
                    "penalty": str(repayment.penalty), "allocation": repayment.allocation,
                    "outstanding": str(loan.outstanding), "status": loan.status}), 201
