"""Reversals of posted repayments: asked for by one person, decided by another."""
from flask import g, jsonify, request

from accounts.auth import roles_required
from accounts.models import utc
from api import NOT_AN_OBJECT, bp, error
from cases.models import Loan
from cases.operations import get_loan
from extensions import db
from ledger.reversals import (REVERSAL_DECIDERS, REVERSAL_REQUESTERS, decide_reversal,
                              find_repayment, parse_decision, request_reversal)


def _body():
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def reversal_json(reversal):
    repayment = reversal.repayment
    loan = db.session.get(Loan, reversal.loan_id)
    body = {"id": reversal.id, "status": reversal.status, "reason": reversal.reason,
            "external_ref": repayment.external_ref, "amount": str(repayment.amount),
            "requested_by": reversal.requested_by.username,
            "requested_at": utc(reversal.requested_at).isoformat(),
            "decided_by": reversal.decided_by.username if reversal.decided_by else None,
            "decided_at": utc(reversal.decided_at).isoformat() if reversal.decided_at else None,
            "decision_note": reversal.decision_note,
            "repayment_reversed_at": (utc(repayment.reversed_at).isoformat()
                                      if repayment.reversed_at else None)}
    body.update({"loan_no": loan.loan_no, "outstanding": str(loan.outstanding),
                 "loan_status": loan.status})
    return body


@bp.post("/loans/<loan_no>/repayments/<external_ref>/reversal")
@roles_required(*REVERSAL_REQUESTERS)
def request_repayment_reversal(loan_no, external_ref):
    """Ask for a repayment to be taken back.
    ---
    post:
      summary: Request the reversal of a posted repayment
      description: >
        The reversal waits for a second person's decision (four eyes).
        Roles: back_office, post_loan_officer, admin.
      tags: [reversals]
      requestBody:
        required: true
        content:
          application/json:
            schema: ReversalRequest
      responses:
        201:
          description: The pending reversal.
          content:
            application/json:
              schema: Reversal
        403: Forbidden
        409: Conflict
    """
    body = _body()
    if body is None:
        return error(400, "the body must be a JSON object", NOT_AN_OBJECT)
    loan = get_loan(loan_no)
    repayment = find_repayment(loan, external_ref)
    reversal = request_reversal(repayment.id, body.get("reason"), g.api_user, loan_id=loan.id)
    return jsonify(reversal_json(reversal)), 201


@bp.post("/reversals/<int:reversal_id>/decision")
@roles_required(*REVERSAL_DECIDERS)
def decide_repayment_reversal(reversal_id):
    """Decide a reversal.
    ---
    post:
      summary: Approve or reject a pending reversal
      description: >
        Neither the requester nor the repayment's poster may decide (four eyes). Approval
        negates the repayment's allocations and reopens what it had paid.
        Roles: dept_head, post_loan_officer.
      tags: [reversals]
      requestBody:
        required: true
        content:
          application/json:
            schema: ReversalDecision
      responses:
        200:
          description: The decided reversal.
          content:
            application/json:
              schema: Reversal
        403: Forbidden
        409: Conflict
    """
    body = _body()
    if body is None:
        return error(400, "the body must be a JSON object", NOT_AN_OBJECT)
    approve = parse_decision(body.get("decision"))
    reversal = decide_reversal(reversal_id, approve, body.get("note"), g.api_user)
    return jsonify(reversal_json(reversal)), 200
