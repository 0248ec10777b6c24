"""REST API under /api/v1: bearer tokens, JSON errors."""
from flask import Blueprint, g, jsonify
from werkzeug.exceptions import HTTPException

from accounts.auth import bearer_user
from accounts.auth import record_denial
from workflows.errors import NotAllowed, WorkflowError

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.before_request
def authenticate():
    g.api_user = bearer_user()
    if g.api_user is None:
        return error(401, "a valid bearer token is required (Authorization: Bearer …)")


def error(status, message, field_errors=None, details=None):
    body = {"error": message}
    if field_errors:
        body["field_errors"] = field_errors
    body.update(details or {})
    return jsonify(body), status


def forbidden(reason):
    record_denial(g.api_user, reason)
    return error(403, reason)


@bp.errorhandler(WorkflowError)
def workflow_error(exc):
    if isinstance(exc, NotAllowed):
        record_denial(g.api_user, exc.message)
    return error(exc.status, exc.message, exc.field_errors, exc.details)


@bp.errorhandler(HTTPException)
def http_error(exc):
    return error(exc.code, exc.description or exc.name)


def page_args(request, default_size=20):
    try:
        page = max(1, int(request.args.get("page", 1)))
        size = min(100, max(1, int(request.args.get("per_page", default_size))))
    except ValueError:
        page, size = 1, default_size
    return page, size


from api import cases, repayments, reversals, tasks  # noqa: E402,F401  (routes register on bp)
from api import extensions  # noqa: E402,F401
