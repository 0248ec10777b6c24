"""Loan and case endpoints of the REST API."""
from flask import g, jsonify, request

from accounts.auth import roles_required
from accounts.roles import LOAN_REGISTRARS
from api import NOT_AN_OBJECT, bp, error, forbidden
from audit.queries import case_events, event_dict
from cases.access import can_view_case
from cases.operations import get_loan, receive_loan
from cases.presenters import case_dict
from pii.rules import mask_data


@bp.post("/loans")
@roles_required(*LOAN_REGISTRARS)
def create_loan():
    """Register a loan from core banking.
    ---
    post:
      summary: Register a loan (idempotent on loan_no)
      description: >
        Checks the loan (every field error at once), registers it and starts its handover.
        The same loan again answers 200 with its case; different data for the same loan number
        is a 409 whose `differences` lists the differing fields. The answer echoes the ID and
        phone numbers the caller has just sent, unmasked.
        Roles: admin, post_loan_officer, account_manager.
      tags: [loans]
      requestBody:
        required: true
        content:
          application/json:
            schema: LoanInput
      responses:
        201:
          description: Registered; the new case.
          content:
            application/json:
              schema: Case
        200:
          description: Already registered with the same data; the case.
          content:
            application/json:
              schema: Case
        403: Forbidden
        409: Conflict
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object", NOT_AN_OBJECT)
    # Idempotent on loan_no: the same loan again answers 200 with its case, different data
    # for the same number a 409 listing the differing fields under "differences".
    # The answer is read inside the registering transaction (no second one to read it).
    answer, created = receive_loan(body, g.api_user, source="api", present=case_dict)
    return jsonify(answer), 201 if created else 200


def _visible_loan(loan_no):
    loan = get_loan(loan_no)
    if not can_view_case(g.api_user, loan):
        return None
    return loan


@bp.get("/cases/<loan_no>")
def show_case(loan_no):
    """One case.
    ---
    get:
      summary: A loan's case
      description: >
        The loan's figures, parties, collateral, schedule (with what is paid) and open tasks.
        Who may see a case: DOMAIN.md's access rules (its account manager, the post-loan
        roles, management, compliance). ID numbers and phone numbers are masked
        (110101********1234, 138****5678) unless the token's user has a role that sees them
        in full (README, "Personal data (PIPL)").
      tags: [cases]
      responses:
        200:
          description: The case.
          content:
            application/json:
              schema: Case
        403: Forbidden
    """
    loan = _visible_loan(loan_no)
    if loan is None:
        return forbidden("you may not see this case")
    return jsonify(mask_data(case_dict(loan), g.api_user, loan))


@bp.get("/cases/<loan_no>/history")
def case_history(loan_no):
    """A case's audit trail.
    ---
    get:
      summary: A case's history (audit events, oldest first)
      description: >
        ID numbers and phone numbers in the events' data are masked as in the case.
      tags: [cases]
      responses:
        200:
          description: The case's audit events.
          content:
            application/json:
              schema: CaseHistory
        403: Forbidden
    """
    loan = _visible_loan(loan_no)
    if loan is None:
        return forbidden("you may not see this case")
    events = [event_dict(e) | {"data": mask_data(e.data, g.api_user, loan)}
              for e in case_events(loan.id)]
    return jsonify({"loan_no": loan.loan_no, "events": events})
