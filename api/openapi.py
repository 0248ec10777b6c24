"""The API's contract: an OpenAPI 3.1 document generated from the code, and a reference page.

`build_spec(app)` walks `app.url_map`: every rule of the `api` blueprint is one path, its
path parameters come from the rule's converters, and each method's operation is the YAML
after `---` in the view's docstring (apispec's docstring convention). Bodies are the JSON
Schemas of api/schemas.py. Standard answers are added to every operation: 401 where a token
is needed, 404 and 400 where a path parameter or a body can be refused. A route without a
documented operation for one of its methods makes `build_spec` fail, so the document cannot
silently fall behind the code (tests/test_openapi.py builds it).

Served at /api/v1/openapi.json and /api/v1/docs (Swagger UI from the pinned npm package
swagger-ui-dist, served from node_modules like bpmn-js; the page's own script is
static/api-reference.js, so it runs under a CSP without inline scripts). Both are public.
"""
import re
from pathlib import Path

from apispec import APISpec
from apispec.yaml_utils import load_operations_from_docstring
from flask import abort, current_app, jsonify, render_template, send_from_directory
from flask_babel import gettext as _
from werkzeug.routing import IntegerConverter

from api import MAX_ID, PUBLIC_ENDPOINTS, bp
from api.schemas import SCHEMAS

TITLE = "Daihou API"
VERSION = "1"
SWAGGER_UI_DIST = Path(__file__).resolve().parent.parent / "node_modules" / "swagger-ui-dist"
# The files of swagger-ui-dist the reference page loads; nothing else of the package is served.
SWAGGER_UI_FILES = {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png",
                    "favicon-16x16.png"}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")

DESCRIPTION = """\
The REST API of Daihou, post-loan management: loans arrive from core banking, repayments are
posted, and the process tasks of each case are listed, claimed and completed.

**Authentication.** Every endpoint except this document and its reference page needs an API
token: `Authorization: Bearer <token>`. Tokens are issued per user (`flask --app app tokens
create USER --name NAME`, or on the account page); the token's user's roles decide what it may
do.

**Errors** are JSON: `{"error": "…", "field_errors": {"field": ["…"]}}`. Field errors are keyed
by the field's path in the body (`borrower.id_number`, `schedule[2].due_on`) or the name of the
query or path parameter. Malformed input is a 400, never a 500: amounts above
1000000000000.00, dates outside 1990-01-01…2100-12-31, repayments dated more than a year in the
future, JSON nested more than 20 levels deep, text with control or bidirectional formatting
characters. Ids beyond 2^31 − 1 (the largest the database holds) are a 404, as is a path the
API does not have.
"""

RESPONSES = {
    "Invalid": {"description": "Malformed input; `field_errors` says which fields and why.",
                "content": {"application/json": {"schema": "Error"}}},
    "Unauthorized": {"description": "No valid bearer token.",
                     "content": {"application/json": {"schema": "Error"}}},
    "Forbidden": {"description": "The token's user may not do this (role, four eyes, "
                                 "not their case).",
                  "content": {"application/json": {"schema": "Error"}}},
    "NotFound": {"description": "No such loan, task, repayment or reversal.",
                 "content": {"application/json": {"schema": "Error"}}},
    "Conflict": {"description": "The state changed or the request repeats one already done.",
                 "content": {"application/json": {"schema": "Error"}}},
}


def openapi_path(rule):
    """`/api/v1/tasks/<int:task_id>` → `/tasks/{task_id}` (the server URL is /api/v1)."""
    path = _ARGUMENT.sub(r"{\1}", rule.rule)
    return path[len(bp.url_prefix):] or "/"


def path_parameters(rule):
    """One parameter per argument of the rule, typed by its converter."""
    parameters = []
    for name in sorted(rule.arguments - set(rule.defaults or {})):
        converter = rule._converters[name]
        if isinstance(converter, IntegerConverter):
            schema = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
            description = "An id; larger than 2^31 − 1 answers 404."
        else:
            schema = {"type": "string", "minLength": 1}
            description = ("Control, formatting or bidirectional characters answer 400.")
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema,
                           "description": description})
    return parameters


def _standard_responses(operation, public, has_path_parameters, text_parameters):
    responses = operation.setdefault("responses", {})
    if not public:
        responses.setdefault(401, "Unauthorized")
    if has_path_parameters:
        responses.setdefault(404, "NotFound")
    if text_parameters or "requestBody" in operation:
        responses.setdefault(400, "Invalid")
    # YAML keys are ints; OpenAPI's are strings.
    operation["responses"] = {str(code): value for code, value in sorted(
        responses.items(), key=lambda item: str(item[0]))}
    return operation


def build_spec(app):
    """The OpenAPI 3.1 document of every route of the api blueprint, as a dict."""
    spec = APISpec(title=TITLE, version=VERSION, openapi_version="3.1.0",
                   info={"description": DESCRIPTION},
                   servers=[{"url": bp.url_prefix}])
    spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer",
        "description": "An API token of a Daihou user."})
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema)
    for name, response in RESPONSES.items():
        spec.components.response(name, response)
    rules = sorted((r for r in app.url_map.iter_rules()
                    if r.endpoint.startswith(bp.name + ".")),
                   key=lambda r: r.rule)
    for rule in rules:
        view = app.view_functions[rule.endpoint]
        documented = load_operations_from_docstring(view.__doc__ or "")
        methods = sorted(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
        missing = [m for m in methods if m not in documented]
        if missing:
            raise ValueError(f"{rule.endpoint}: no OpenAPI operation for "
                             f"{', '.join(m.upper() for m in missing)} in its docstring")
        public = rule.endpoint in PUBLIC_ENDPOINTS
        parameters = path_parameters(rule)
        text_parameters = any(p["schema"]["type"] == "string" for p in parameters) and \
            not public
        operations = {}
        for method in methods:
            operation = dict(documented[method])
            operation.setdefault("operationId", rule.endpoint.split(".", 1)[1]
                                 if len(methods) == 1 else f"{rule.endpoint}_{method}")
            if public:
                operation["security"] = []
            if any(p.get("in") == "query" and p.get("schema", {}).get("type") == "string"
                   for p in operation.get("parameters", [])):
                text_parameters = True
            operations[method] = _standard_responses(operation, public, bool(parameters),
                                                     text_parameters)
        spec.path(path=openapi_path(rule), operations=operations, parameters=parameters)
    document = spec.to_dict()
    document["security"] = [{"bearerAuth": []}]
    return document


def spec_for(app):
    """The document, built once per application."""
    document = app.extensions.get("daihou_openapi")
    if document is None:
        document = app.extensions["daihou_openapi"] = build_spec(app)
    return document


@bp.get("/openapi.json")
def openapi_document():
    """This document.
    ---
    get:
      summary: The OpenAPI document of this API
      tags: [reference]
      responses:
        200:
          description: OpenAPI 3.1, as JSON.
          content:
            application/json:
              schema: {type: object, required: [openapi, paths]}
    """
    return jsonify(spec_for(current_app))


@bp.get("/docs")
def reference():
    """The reference page.
    ---
    get:
      summary: A browsable reference of this API (Swagger UI)
      tags: [reference]
      responses:
        200:
          description: An HTML page that loads the OpenAPI document.
          content:
            text/html:
              schema: {type: string}
    """
    return render_template("api/reference.html", title=_("Daihou API reference"))


@bp.get("/docs/vendor/<filename>")
def reference_asset(filename):
    """Swagger UI's files, from the pinned npm package.
    ---
    get:
      summary: A script, style sheet or icon of the reference page
      tags: [reference]
      responses:
        200:
          description: The file.
          content:
            text/javascript: {schema: {type: string}}
            text/css: {schema: {type: string}}
            image/png: {schema: {type: string}}
        404:
          description: Not one of the reference page's files.
          content:
            application/json:
              schema: Error
    """
    if filename not in SWAGGER_UI_FILES or not SWAGGER_UI_DIST.is_dir():
        abort(404)
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=86400)
