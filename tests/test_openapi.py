"""The API's contract (issue 10): an OpenAPI 3.1 document of every /api/v1 route, generated
from the code, valid, public, and a reference page whose scripts are files of this app (no
CDN, no inline script), working in Chromium under a strict Content-Security-Policy.

tests/test_api_fuzz.py checks the app against this document with Schemathesis.
"""
import re

import pytest
from openapi_spec_validator import validate

from api import MAX_ID
from api.openapi import SWAGGER_UI_DIST, build_spec, openapi_path
from api.schemas import INTAKE_KEYS, SCHEMAS
from tests.test_browser import CHROMIUM_ARGS, CHROMIUM, live_server, require_chromium  # noqa: F401

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
# A policy as strict as the app's (and stricter than the other engineers' may end up):
# nothing inline, nothing from elsewhere.
STRICT_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
              "frame-ancestors 'none'; form-action 'self'")


@pytest.fixture
def document(app):
    return build_spec(app)


def api_rules(app):
    return [r for r in app.url_map.iter_rules()
            if r.rule.startswith("/api/v1")]


def test_the_document_is_valid_openapi_3_1(document):
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "/api/v1"}]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "An API token of a Daihou user."}
    assert document["security"] == [{"bearerAuth": []}]


def test_every_route_and_method_is_documented(app, document):
    rules = api_rules(app)
    assert len(rules) >= 15
    for rule in rules:
        path = openapi_path(rule)
        assert path in document["paths"], rule.rule
        methods = {m.lower() for m in rule.methods} & HTTP_METHODS
        assert methods == set(document["paths"][path]) & HTTP_METHODS, rule.rule
    documented = {(path, method) for path, item in document["paths"].items()
                  for method in item if method in HTTP_METHODS}
    assert len(documented) == sum(len({m.lower() for m in r.methods} & HTTP_METHODS)
                                  for r in rules)


def test_path_parameters_follow_the_converters(document):
    task = document["paths"]["/tasks/{task_id}"]["parameters"]
    assert task == [{"name": "task_id", "in": "path", "required": True,
                     "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                     "description": "An id; larger than 2^31 − 1 answers 404."}]
    reversal = document["paths"]["/loans/{loan_no}/repayments/{external_ref}/reversal"]
    assert [p["name"] for p in reversal["parameters"]] == ["external_ref", "loan_no"]
    assert all(p["schema"]["type"] == "string" for p in reversal["parameters"])


def test_operations_have_bodies_responses_and_errors(document):
    public = {"/openapi.json", "/docs", "/docs/vendor/{filename}"}
    error_ref = {"$ref": "#/components/responses/Unauthorized"}
    operation_ids = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            operation_ids.add(operation["operationId"])
            assert operation["summary"] and operation["tags"]
            success = [code for code in operation["responses"] if code.startswith("2")]
            assert success, (path, method)
            if path in public:
                assert operation["security"] == [] and "401" not in operation["responses"]
                continue
            assert operation["responses"]["401"] == error_ref
            if "{" in path:
                assert operation["responses"]["404"] == {
                    "$ref": "#/components/responses/NotFound"}
            if method == "post" and not path.endswith(("/claim", "/unclaim")):
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                assert body["$ref"].startswith("#/components/schemas/")
                assert operation["responses"]["400"] == {
                    "$ref": "#/components/responses/Invalid"}
    assert len(operation_ids) == sum(1 for item in document["paths"].values()
                                     for m in item if m in HTTP_METHODS)
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["field_errors"]["additionalProperties"] == {
        "type": "array", "items": {"type": "string"}}


def test_the_loan_schema_names_every_intake_field():
    loan = SCHEMAS["LoanInput"]
    assert set(loan["properties"]) == set(INTAKE_KEYS["loan"])
    assert loan["additionalProperties"] is False  # the intake refuses unknown fields
    for part in ("contacts", "guarantors", "collateral", "schedule"):
        assert set(loan["properties"][part]["items"]["properties"]) == set(INTAKE_KEYS[part])
    assert set(loan["properties"]["borrower"]["properties"]) == set(INTAKE_KEYS["borrower"])


def test_the_document_is_served_without_a_token(app):
    client = app.test_client()
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.is_json
    served = response.get_json()
    assert served["info"]["title"] == "Daihou API"
    assert set(served["paths"]) == set(build_spec(app)["paths"])
    # Everything else still needs a token, as JSON.
    denied = client.get("/api/v1/tasks")
    assert denied.status_code == 401 and denied.get_json()["error"]


def test_the_reference_page_loads_only_local_files(app):
    client = app.test_client()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "unsafe-inline" not in page.headers.get("Content-Security-Policy", "")
    html = page.get_data(as_text=True)
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/' in attrs and not body.strip() for attrs, body in scripts)
    assert "onload=" not in html and "javascript:" not in html
    assert not re.search(r"""(?:src|href)=["'](?:https?:)?//""", html)  # no CDN
    assert 'data-spec-url="/api/v1/openapi.json"' in html
    for src in re.findall(r'(?:src|href)="(/[^"]+)"', html):
        asset = client.get(src)
        assert asset.status_code == 200, src
        assert asset.data
    bundle = client.get("/api/v1/docs/vendor/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and bundle.mimetype.endswith("javascript")
    # Only the page's files: not the rest of node_modules, not another path.
    for name in ("package.json", "index.html", "swagger-ui.js.map", "..", "%2E%2E"):
        missing = client.get(f"/api/v1/docs/vendor/{name}")
        assert missing.status_code == 404 and missing.is_json
    outside = client.get("/api/v1/docs/vendor/../../bpmn-js/package.json")
    assert outside.status_code in (401, 404) and outside.is_json


def test_the_package_is_the_pinned_one():
    import json
    from tests.conftest import ROOT
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["swagger-ui-dist"]
    installed = json.loads((SWAGGER_UI_DIST / "package.json").read_text())["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned) and installed == pinned


def test_the_reference_page_works_under_a_strict_csp(capsys, live_server):  # noqa: F811
    """Swagger UI renders every operation in headless Chromium with a CSP that allows no
    inline script or style and no other origin; no violation is reported and nothing is
    requested from another host."""
    require_chromium(capsys)
    from playwright.sync_api import sync_playwright
    violations, foreign, errors = [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(base_url=live_server)
            page.set_default_timeout(15000)

            def strict(route):
                if not route.request.url.startswith(live_server):
                    foreign.append(route.request.url)
                    return route.abort()
                response = route.fetch()
                headers = {**response.headers, "content-security-policy": STRICT_CSP}
                return route.fulfill(response=response, headers=headers)

            page.route("**/*", strict)
            page.on("console", lambda m: (violations if "Content Security Policy" in m.text
                                          else errors if m.type == "error" else []).append(
                                              m.text))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto("/api/v1/docs")
            page.wait_for_selector(".opblock-summary", state="attached")
            page.wait_for_load_state("networkidle")
            summaries = page.locator(".opblock-summary-path").all_inner_texts()
            title = page.locator(".information-container .title").inner_text()
            authorize = page.locator("button.authorize").count()
        finally:
            browser.close()
    assert "Daihou API" in title and authorize == 1
    assert len(summaries) == 15 and "/loans/{loan_no}/repayments" in {
        s.replace("\u200b", "") for s in summaries}
    assert not violations, violations
    assert not foreign, foreign
    assert not errors, errors
