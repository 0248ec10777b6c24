"""Repayments from core banking."""
from flask import g, jsonify, request

from accounts.auth import roles_required
from accounts.models import utc
from api import NOT_AN_OBJECT, bp, error
from cases.operations import get_loan
from ledger.repayments import REPAYMENT_POSTERS, post_repayment


@bp.post("/loans/<loan_no>/repayments")
@roles_required(*REPAYMENT_POSTERS)
def create_repayment(loan_no):
    """Post a repayment.
    ---
    post:
      summary: Post a repayment to a loan
      description: >
        Allocated oldest installment first, within each penalty, interest, then principal.
        Posted once per `external_ref` (a repeat is a 409 and changes nothing); more than the
        outstanding balance is a 400. Roles: admin, back_office, post_loan_officer.
      tags: [loans]
      requestBody:
        required: true
        content:
          application/json:
            schema: RepaymentInput
      responses:
        201:
          description: Posted; how it was allocated and what is left.
          content:
            application/json:
              schema: Repayment
        403: Forbidden
        409: Conflict
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object", NOT_AN_OBJECT)
    loan = get_loan(loan_no)
    repayment = post_repayment(loan, body, g.api_user)
    return jsonify({"loan_no": loan.loan_no, "external_ref": repayment.external_ref,
                    "amount": str(repayment.amount), "paid_at": utc(repayment.paid_at).isoformat(),
                    "principal": str(repayment.principal), "interest": str(repayment.interest),
                    "penalty": str(repayment.penalty), "allocation": repayment.allocation,
                    "outstanding": str(loan.outstanding), "status": loan.status}), 201
