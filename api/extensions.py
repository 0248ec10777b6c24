"""Extension requests (DOMAIN.md §5.4) by the loan's account manager."""
from flask import g, jsonify, request

from accounts.auth import roles_required
from api import NOT_AN_OBJECT, bp, error, forbidden
from extension_requests.operations import may_request, request_extension
from cases.operations import get_loan


@bp.post("/loans/<loan_no>/extensions")
@roles_required("account_manager")
def create_extension(loan_no):
    """Ask for a loan's extension.
    ---
    post:
      summary: Request an extension of a loan
      description: >
        Starts the extension approval (department head, then general manager). Only the
        loan's own account manager may ask. Role: account_manager.
      tags: [loans]
      requestBody:
        required: true
        content:
          application/json:
            schema: ExtensionInput
      responses:
        201:
          description: The approval process was started.
          content:
            application/json:
              schema: Extension
        403: Forbidden
        409: Conflict
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object", NOT_AN_OBJECT)
    loan = get_loan(loan_no)
    if not may_request(g.api_user, loan):
        return forbidden("only the loan's account manager may request an extension")
    instance = request_extension(loan, body, g.api_user)
    return jsonify({"loan_no": loan.loan_no, "instance_id": instance.id,
                    "process": "extension", "status": instance.status,
                    "new_maturity_on": body.get("new_maturity_on"),
                    "proposed_rate": str(body.get("proposed_rate"))}), 201
