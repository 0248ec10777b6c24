"""REST API under /api/v1: bearer tokens, JSON errors, an OpenAPI document (api/openapi.py).

Every answer is JSON, errors included ({"error": …, "field_errors": {field: [messages]}}),
also for a path or method the API does not have. Malformed input is refused here, before any
view runs: a JSON body nested deeper than MAX_JSON_DEPTH or holding control characters, an id
in the path beyond 2^31 − 1, a path segment with control characters, a page number out of range.
"""
from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, default_exceptions

from accounts.auth import bearer_user
from accounts.auth import record_denial
from cases.intake import BAD_CHARACTERS, bad_character
from i18n import N_
from workflows.errors import InvalidData, NotAllowed, WorkflowError

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Endpoints anyone may read: the contract and its reference page.
PUBLIC_ENDPOINTS = {"api.openapi_document", "api.reference", "api.reference_asset"}
# Ids are `Integer` columns: signed 32-bit on PostgreSQL (a larger value in a query is an
# "integer out of range" error there), 64-bit on SQLite (beyond, an OverflowError).
MAX_ID = 2 ** 31 - 1
MAX_PAGE = 100_000
MAX_PER_PAGE = 100
MAX_JSON_DEPTH = 20  # the deepest body the API takes (a loan) is 3 levels deep
NOT_AN_OBJECT = {"body": [N_("Must be a JSON object (Content-Type: application/json).")]}


@bp.before_request
def authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    g.api_user = bearer_user()
    if g.api_user is None:
        return error(401, "a valid bearer token is required (Authorization: Bearer …)")
    return None


@bp.before_request
def refuse_malformed_input():
    """Path values and JSON bodies that no view can take answer 404 or 400 here."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and value > MAX_ID:
            return error(404, f"no {name.removesuffix('_id')} with this id")
        if isinstance(value, str) and bad_character(value, identifier=True) is not None:
            return error(400, "the path has errors", {name: [BAD_CHARACTERS]})
    if request.method in ("POST", "PUT", "PATCH") and request.is_json:
        try:
            body = request.get_json(silent=True)
        except RecursionError:
            return error(400, "the body is nested too deeply",
                         {"body": [N_("Nested too deeply.")]})
        problems = json_problems(body)
        if problems:
            return error(400, "the body has errors", problems)
    return None


def json_problems(body):
    """{path: [message]} for a parsed JSON body nested too deeply or holding strings (keys
    included) with characters no field may hold; empty when it is fine. Iterative, so no
    depth can exhaust the stack."""
    problems = {}
    stack = [(body, "body", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return {"body": [N_("Nested too deeply.")]}
        if isinstance(value, dict):
            for key, item in value.items():
                child = key if path == "body" else f"{path}.{key}"
                if bad_character(key) is not None:
                    problems.setdefault(child, []).append(N_(
                        "Must not contain control or bidirectional formatting characters."))
                stack.append((item, child, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str) and bad_character(value) is not None:
            problems.setdefault(path, []).append(N_(
                "Must not contain control or bidirectional formatting characters."))
    return problems


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


def http_error(exc):
    response, status = error(exc.code, exc.description or exc.name)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response, status


# By code as well as by class: Flask prefers any handler registered for the code (the web's
# HTML 403 and 404 pages) to a handler registered for a class, so abort(403) in
# roles_required and abort(404) would otherwise answer the API's clients with HTML.
bp.register_error_handler(HTTPException, http_error)
for _code in default_exceptions:
    bp.register_error_handler(_code, http_error)


def page_args(request, default_size=20):
    """(page, per_page) from the query; a value that is not a whole number in range is a
    400 with field errors, never a silent default or an offset the database cannot take."""
    errors, values = {}, {}
    for name, default, top in (("page", 1, MAX_PAGE), ("per_page", default_size, MAX_PER_PAGE)):
        raw = request.args.get(name)
        if raw is None or raw == "":
            values[name] = default
            continue
        raw = raw.strip()
        if not raw.isascii() or not raw.isdigit() or len(raw) > 7 or not 1 <= int(raw) <= top:
            errors[name] = [N_("Must be a whole number from 1 to %(top)s.") % {"top": top}]
        else:
            values[name] = int(raw)
    if errors:
        raise_invalid("the query has errors", errors)
    return values["page"], values["per_page"]


def text_arg(request, name):
    """A query parameter as text (None when absent or empty); control or bidirectional
    characters are a 400."""
    value = request.args.get(name) or None
    if value is not None and bad_character(value, identifier=True) is not None:
        raise_invalid("the query has errors", {name: [BAD_CHARACTERS]})
    return value


def raise_invalid(message, field_errors):
    raise InvalidData(message, field_errors=field_errors, code="invalid")


@bp.before_app_request
def routing_errors_as_json():
    """A path or method the API does not have answers 404 or 405 as JSON, not the web's HTML
    page. Registered on the app (a routing error belongs to no blueprint) and limited to
    paths under /api/v1; no route is added, so the document lists only real endpoints."""
    exc = request.routing_exception
    if exc is None or not (request.path + "/").startswith(bp.url_prefix + "/"):
        return None
    if isinstance(exc, MethodNotAllowed):
        return http_error(exc)
    if isinstance(exc, NotFound):
        return http_error(NotFound("no such API endpoint"))
    return None


from api import cases, repayments, reversals, tasks  # noqa: E402,F401  (routes register on bp)
from api import extensions, openapi  # noqa: E402,F401
