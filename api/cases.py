"""Loan and case endpoints of the REST API."""
from flask import g, jsonify, request

from accounts.auth import roles_required
from accounts.roles import LOAN_REGISTRARS
from api import bp, error, forbidden
from audit.queries import case_events, event_dict
from cases.access import can_view_case
from cases.operations import get_loan, receive_loan
from cases.presenters import case_dict


@bp.post("/loans")
@roles_required(*LOAN_REGISTRARS)
def create_loan():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object")
    # Idempotent on loan_no: the same loan again answers 200 with its case, different data
    # for the same number a 409 listing the differing fields under "differences".
    loan, created = receive_loan(body, g.api_user, source="api")
    return jsonify(case_dict(loan)), 201 if created else 200


def _visible_loan(loan_no):
    loan = get_loan(loan_no)
    if not can_view_case(g.api_user, loan):
        return None
    return loan


@bp.get("/cases/<loan_no>")
def show_case(loan_no):
    loan = _visible_loan(loan_no)
    if loan is None:
        return forbidden("you may not see this case")
    return jsonify(case_dict(loan))


@bp.get("/cases/<loan_no>/history")
def case_history(loan_no):
    loan = _visible_loan(loan_no)
    if loan is None:
        return forbidden("you may not see this case")
    return jsonify({"loan_no": loan.loan_no,
                    "events": [event_dict(e) for e in case_events(loan.id)]})
