"""Schemathesis against the live API (issue 10): the app on a real socket at 127.0.0.1
(bench.ledger_races.serve), the published /api/v1/openapi.json as the contract, a valid
bearer token, and a servicing loan, a loan in handover, a posted repayment and a pending
reversal so that paths also carry real values. Every operation gets random valid requests
(positive), random invalid ones (negative), valid ones with real path values, and plausible
bodies whose values run to the bounds (1e30, NaN, year 1 and 9999, odd offsets, NUL, bidi
controls). Checks: no 5xx, every status documented, every body conforms to the schema.

Runs once per database like the rest of the suite. Run with -s for the figures (requests,
statuses per operation) the closing note quotes; API_FUZZ_EXAMPLES sets the examples per
operation (30 by default).
"""
import collections
import datetime as dt
import os
import string
import time
from decimal import Decimal

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.checks import (content_type_conformance, not_a_server_error,
                                 response_schema_conformance, status_code_conformance)

from accounts.operations import create_token, create_user
from cases.operations import register_loan
from bench.ledger_races import serve
from extensions import db
from ledger.models import Repayment
from ledger.repayments import post_repayment
from ledger.reversals import request_reversal
from tests.conftest import HANDOVER_DATA, PASSWORD, is_postgres, loan_payload
from tests.test_servicing import serviced  # noqa: F401  (fixture)
from workflows import clock
from workflows.inbox import open_tasks_of_case
from workflows.timers import fire_due_timers

# Bounded for the suite (about 450 requests per database); API_FUZZ_EXAMPLES=500 digs deeper.
EXAMPLES_PER_OPERATION = int(os.environ.get("API_FUZZ_EXAMPLES", "30"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
FIGURES = []


@pytest.fixture(scope="module", autouse=True)
def _figures():
    yield
    if FIGURES:
        print("\nAPI fuzz figures:\n" + "\n".join(f"  {line}" for line in FIGURES))


REMINDER_DATA = {"channel": "phone", "reached": "yes", "confirmed_due_on": "2026-05-06",
                 "confirmed_account": "6222020200112233445", "confirmed_amount": "101000",
                 "enough_balance": "yes", "promised_on": "2026-05-06"}
# The day the first installment's reminder call falls due (tests/test_servicing.py).
REMINDER_DAY = dt.datetime(2026, 4, 30, 1, 5, tzinfo=dt.timezone.utc)


@pytest.fixture
def world(app, serviced, users):  # noqa: F811
    """Committed data the server's connections see: a servicing loan with a posted repayment,
    a pending reversal and a reminder call to make (the clock on its day), a loan in handover
    managed by the fuzzer's user, who holds every role an endpoint asks for except admin."""
    create_user("fuzzer", PASSWORD, ["account_manager", "post_loan_officer", "dept_head",
                                     "back_office"])
    servicing = serviced(loan_no="FZ-1")
    handover = register_loan(loan_payload("FZ-2", manager="fuzzer"), users["admin"])
    post_repayment(servicing, {"amount": "500.00", "paid_at": "2026-03-02",
                               "external_ref": "CB-1"}, users["admin"])
    repayment = Repayment.query.filter_by(external_ref="CB-1").one()
    reversal = request_reversal(repayment.id, "sent twice", users["admin"])
    clock.set_now(REMINDER_DAY)  # the server's requests read the same clock
    fire_due_timers()
    tasks = [t.id for loan in (servicing, handover) for t in open_tasks_of_case(loan.id)]
    assert len(tasks) >= 2
    token = create_token("fuzzer", "fuzz")
    db.session.commit()
    return {"token": token, "real": {
        "loan_no": st.sampled_from(["FZ-1", "FZ-2"]),
        "external_ref": st.just("CB-1"),
        # Tasks the fuzz itself creates (loans it registers) have the next ids.
        "task_id": st.one_of(st.sampled_from(tasks), st.integers(1, max(tasks) + 30)),
        "reversal_id": st.just(reversal.id),
        "filename": st.sampled_from(["swagger-ui.css", "favicon-16x16.png"])}}


# Values at and beyond the bounds, mixed with ordinary ones.
NASTY_TEXT = st.sampled_from(["", " ", "\x00", "L-1\x00", "\u202eL-1", "L\u2066-1", "\ud800",
                              "\x1b[31m", "=1+1", "a" * 500, "１２３", "L-001\n"])
TEXT = st.one_of(st.text(max_size=60), NASTY_TEXT)
AMOUNT = st.one_of(
    st.decimals(min_value=-10, max_value=10 ** 13, places=2, allow_nan=False).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats(allow_nan=False, allow_infinity=False),  # NaN as a JSON token: tested below
    st.integers(min_value=-(10 ** 40), max_value=10 ** 40),
    st.sampled_from(["1e30", "NaN", "Infinity", "-Infinity", "1e-30", "9" * 400, "0.001",
                     "1,000.00", "0x10"]),
    TEXT)
OFFSET = st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))
DAY = st.one_of(st.dates(), st.dates(min_value=dt.date(2025, 1, 1),
                                     max_value=dt.date(2028, 12, 31)))
INSTANT = st.one_of(
    DAY.map(dt.date.isoformat),
    st.datetimes(timezones=OFFSET).map(dt.datetime.isoformat),
    st.datetimes().map(dt.datetime.isoformat),
    st.sampled_from(["0001-01-01", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00",
                     "2999-01-01", "2026-02-30", "2026-03-02T25:00", "20260302"]),
    TEXT)
RATE = st.one_of(st.decimals(min_value=-1, max_value=2, places=6).map(str), AMOUNT)
# Values an honest client sends, so that the fuzz also reaches the success paths.
GOOD_AMOUNT = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50.00"),
                          places=2).map(str)
GOOD_DAY = st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2026, 8, 31))
GOOD_REF = st.text(alphabet=string.ascii_uppercase + string.digits + "-", min_size=1,
                   max_size=20)
NEXT_YEAR = st.dates(min_value=dt.date(2026, 10, 13), max_value=dt.date(2027, 12, 31))


def either(good, nasty):
    return st.one_of(st.fixed_dictionaries(good), st.fixed_dictionaries(nasty))


PLAUSIBLE = {
    "create_loan": st.one_of(
        st.builds(lambda loan_no, principal: loan_payload(loan_no, "fuzzer",
                                                          principal=principal),
                  GOOD_REF.map(lambda ref: "FZ-N-" + ref), GOOD_AMOUNT),
        st.builds(lambda loan_no, principal, rate, disbursed, maturity, manager: loan_payload(
            loan_no, manager, principal=principal, interest_rate=rate,
            disbursed_on=disbursed, maturity_on=maturity),
            st.one_of(st.text(min_size=1, max_size=45), NASTY_TEXT), AMOUNT, RATE, INSTANT,
            INSTANT, st.sampled_from(["fuzzer", "am", "plo", "nobody", "\x00"]))),
    "create_repayment": either(
        {"amount": GOOD_AMOUNT, "paid_at": GOOD_DAY.map(dt.date.isoformat),
         "external_ref": GOOD_REF},
        {"amount": AMOUNT, "paid_at": INSTANT, "external_ref": TEXT}),
    "create_extension": either(
        {"new_maturity_on": NEXT_YEAR.map(dt.date.isoformat), "proposed_rate": st.just("0.05"),
         "reason": st.just("the buyer pays late")},
        {"new_maturity_on": INSTANT, "proposed_rate": RATE, "reason": TEXT}),
    "request_repayment_reversal": either({"reason": st.just("posted twice")}, {"reason": TEXT}),
    "decide_repayment_reversal": either(
        {"decision": st.sampled_from(["approve", "reject"]), "note": st.just("checked")},
        {"decision": TEXT, "note": TEXT}),
    "complete": st.one_of([
        st.sampled_from([{"data": HANDOVER_DATA}, {"data": REMINDER_DATA}])] + [
        st.fixed_dictionaries({"data": st.fixed_dictionaries(
            {k: st.one_of(st.just(v), TEXT, AMOUNT, INSTANT, st.lists(TEXT, max_size=3))
             for k, v in data.items()})}) for data in (HANDOVER_DATA, REMINDER_DATA)]),
}


def operation_strategies(operation, real):
    """Random positive and negative cases, and positive ones with real path values and,
    where the operation takes a body, plausible bodies."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    names = [p.name for p in operation.path_parameters]
    if names or operation.query or operation.body:
        try:
            strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
        except Exception:  # nothing to make invalid  # pragma: no cover
            pass
    if names:
        path = st.fixed_dictionaries({n: real[n] for n in names})
        strategies.append(path.flatmap(
            lambda values: operation.as_strategy(GenerationMode.POSITIVE,
                                                 path_parameters=values)))
    bodies = PLAUSIBLE.get(operation.definition.raw.get("operationId"))
    if bodies is not None:
        path = st.fixed_dictionaries({n: real[n] for n in names})
        strategies.append(st.tuples(path, bodies).flatmap(
            lambda pair: operation.as_strategy(GenerationMode.POSITIVE,
                                               path_parameters=pair[0], body=pair[1],
                                               media_type="application/json")))
    return st.one_of(strategies)


def label(operation):
    return f"{operation.method.upper()} {operation.path}"


# The strategies' repr (the whole schema) is large; Hypothesis says so once per operation.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_fuzz_the_published_contract(app, world):
    database = "postgresql" if is_postgres(app) else "sqlite"
    statuses = collections.defaultdict(collections.Counter)
    failures = []
    started = time.monotonic()
    with serve(app) as (host, port), requests.Session() as session:
        base = f"http://{host}:{port}/api/v1"
        document = session.get(f"{base}/openapi.json", timeout=30).json()
        schema = schemathesis.openapi.from_dict(document)
        auth = {"Authorization": f"Bearer {world['token']}"}
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) == sum(len([m for m in item if m in ("get", "post")])
                                      for item in document["paths"].values())

        for operation in operations:
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=operation_strategies(operation, world["real"]))
            def run(case):
                response = case.call(base_url=base, session=session, headers=auth, timeout=60)
                statuses[label(operation)][response.status_code] += 1
                try:
                    case.validate_response(response, checks=CHECKS)
                except FailureGroup as exc:  # report them all, go on fuzzing
                    failures.append(f"{label(operation)} → {response.status_code}: "
                                    f"{str(exc)[:1500]}\n  {case.as_curl_command(base_url=base)}")

            run()

    elapsed = time.monotonic() - started
    total = sum(sum(c.values()) for c in statuses.values())
    overall = collections.Counter()
    for counter in statuses.values():
        overall.update(counter)
    FIGURES.append(f"{database}: {total} requests to {len(operations)} operations in "
                   f"{elapsed:.0f} s; statuses {dict(sorted(overall.items()))}")
    FIGURES.extend(f"{database}   {name}: {dict(sorted(counter.items()))}"
                   for name, counter in sorted(statuses.items()))
    assert not failures, f"{len(failures)} failing responses:\n" + "\n".join(failures[:20])
    assert not any(code >= 500 for code in overall)
    # The fuzzer got past authentication and validation, not only to 4xx answers
    # (test_every_success_conforms below walks each success path for certain).
    assert statuses["GET /cases/{loan_no}"][200] and statuses["GET /tasks"][200]


def test_every_success_conforms(app, world):
    """One honest request per operation, in an order that makes each succeed, and some
    refusals; every answer is checked against the published document."""
    from api.openapi import spec_for
    schema = schemathesis.openapi.from_dict(spec_for(app))
    client = app.test_client()
    auth = {"Authorization": f"Bearer {world['token']}"}
    seen = []

    def call(method, path, template, status, **kwargs):
        response = client.open(f"/api/v1{path}", method=method,
                               headers={**auth, **kwargs.pop("headers", {})}, **kwargs)
        assert response.status_code == status, (path, response.get_data(as_text=True)[:300])
        schema[template][method].validate_response(response)
        seen.append((method, template, status))
        return response.get_json() if response.is_json else None

    from ledger.models import Reversal
    call("GET", "/openapi.json", "/openapi.json", 200)
    call("GET", "/docs", "/docs", 200)
    call("GET", "/docs/vendor/swagger-ui.css", "/docs/vendor/{filename}", 200)
    call("GET", "/docs/vendor/nothing.js", "/docs/vendor/{filename}", 404)
    call("POST", "/loans", "/loans", 201, json=loan_payload("FZ-3", "fuzzer"))
    call("POST", "/loans", "/loans", 200, json=loan_payload("FZ-3", "fuzzer"))
    call("POST", "/loans", "/loans", 409, json=loan_payload("FZ-3", "fuzzer", principal="1"))
    call("POST", "/loans", "/loans", 400, json=loan_payload("FZ-4", "fuzzer", principal="1e30"))
    call("GET", "/cases/FZ-1", "/cases/{loan_no}", 200)
    call("GET", "/cases/FZ-1/history", "/cases/{loan_no}/history", 200)
    call("GET", "/cases/NOPE", "/cases/{loan_no}", 404)
    page = call("GET", "/tasks?scope=mine&loan_no=FZ-3", "/tasks", 200)  # the manager's own
    task = page["items"][0]["id"]
    call("GET", "/tasks?page=0", "/tasks", 400)
    call("GET", f"/tasks/{task}", "/tasks/{task_id}", 200)
    call("GET", f"/tasks/{2 ** 40}", "/tasks/{task_id}", 404)
    call("POST", f"/tasks/{task}/claim", "/tasks/{task_id}/claim", 200)
    call("POST", f"/tasks/{task}/unclaim", "/tasks/{task_id}/unclaim", 200)
    call("POST", f"/tasks/{task}/complete", "/tasks/{task_id}/complete", 400,
         json={"data": {}})
    call("POST", f"/tasks/{task}/complete", "/tasks/{task_id}/complete", 200,
         json={"data": HANDOVER_DATA})
    call("POST", f"/tasks/{task}/complete", "/tasks/{task_id}/complete", 409,
         json={"data": HANDOVER_DATA})
    call("POST", "/loans/FZ-1/repayments", "/loans/{loan_no}/repayments", 201,
         json={"amount": "20.00", "paid_at": "2026-04-01T10:00:00+08:00",
               "external_ref": "CB-2"})
    call("POST", "/loans/FZ-1/repayments", "/loans/{loan_no}/repayments", 409,
         json={"amount": "20.00", "paid_at": "2026-04-01", "external_ref": "CB-2"})
    call("POST", "/loans/FZ-1/repayments/CB-2/reversal",
         "/loans/{loan_no}/repayments/{external_ref}/reversal", 201,
         json={"reason": "posted to the wrong loan"})
    reversal = Reversal.query.filter_by(status="pending").order_by(Reversal.id).first().id
    call("POST", f"/reversals/{reversal}/decision", "/reversals/{reversal_id}/decision", 200,
         json={"decision": "approve", "note": "checked with core banking"})
    call("POST", "/loans/FZ-2/extensions", "/loans/{loan_no}/extensions", 201,
         json={"new_maturity_on": "2027-03-02", "proposed_rate": "0.05",
               "reason": "the buyer pays late"})
    call("POST", "/loans/FZ-1/extensions", "/loans/{loan_no}/extensions", 403,
         json={"new_maturity_on": "2027-03-02", "proposed_rate": "0.05", "reason": "x"})
    call("GET", "/tasks", "/tasks", 401, headers={"Authorization": "Bearer nope"})
    documented = {(m, p) for p, item in schema.raw_schema["paths"].items() for m in item
                  if m in ("get", "post")}
    assert {(m.lower(), p) for m, p, status in seen if status < 300} == documented


# The malformed inputs of issue 10, one by one: each a 400 with field errors (or a 404 for an
# id no row can have), never a 500, and nothing stored.

def deep_array(depth):
    return "[" * depth + "]" * depth


@pytest.fixture
def api(app, world):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {world['token']}"}

    def call(method, path, **kwargs):
        response = client.open(f"/api/v1{path}", method=method,
                               headers={**headers, **kwargs.pop("headers", {})}, **kwargs)
        assert response.status_code < 500, response.get_data(as_text=True)[:500]
        assert response.is_json, response.get_data(as_text=True)[:200]
        return response
    return call


def stored():
    """What the malformed requests must leave unchanged."""
    from audit.models import AuditEvent
    from cases.models import Loan
    from workflows.models import HumanTask
    db.session.expire_all()
    return (Loan.query.count(), Repayment.query.count(), AuditEvent.query.count(),
            HumanTask.query.filter_by(state="ready").count())


def refused(response, status, *fields):
    assert response.status_code == status, (response.status_code, response.get_json())
    body = response.get_json()
    assert body["error"]
    if status == 400:
        # Keyed by the field, or by its path in the body ("data.reminder_note") when the
        # API refused the body before the view read it.
        keys = set(body.get("field_errors", {}))
        assert all(f in keys or any(k.endswith("." + f) for k in keys) for f in fields), body
    return body


LOAN_FIELD_CASES = [
    ("principal", 1e30), ("principal", "1e30"), ("principal", "NaN"), ("principal", "Infinity"),
    ("principal", "-Infinity"), ("principal", "9" * 400), ("principal", 10 ** 40),
    ("principal", "1000000000000.01"), ("interest_rate", "1e30"), ("interest_rate", "NaN"),
    ("disbursed_on", "0001-01-01"), ("disbursed_on", "9999-12-31"),
    ("maturity_on", "9999-12-31"), ("maturity_on", "2999-01-01"),
    ("loan_no", "L-1\x00"), ("loan_no", "\x00"), ("loan_no", "L-\u202e1"),
    ("loan_no", "L-\u2066-1"), ("loan_no", "L-1\u200b"), ("loan_no", "L\x1b[31m"),
    ("account_manager", "fuzzer\x00"),
]


@pytest.mark.parametrize("field,value", LOAN_FIELD_CASES,
                         ids=[f"{f}={v!r}"[:40] for f, v in LOAN_FIELD_CASES])
def test_malformed_loan_fields(api, field, value):
    before = stored()
    response = api("POST", "/loans", json={**loan_payload("FZ-NEW", "fuzzer"), field: value})
    refused(response, 400, field)
    assert stored() == before


def test_schedule_and_collateral_bounds(api):
    before = stored()
    schedule = [{"due_on": "9999-12-31", "principal": "1e30", "interest": "NaN"}]
    response = api("POST", "/loans", json=loan_payload(
        "FZ-NEW", "fuzzer", schedule=schedule,
        collateral=[{"kind": "mortgage", "description": "flat", "valuation": "1e30",
                     "area": "Infinity", "registration_no": "R\u200b-1"}]))
    refused(response, 400, "schedule[0].due_on", "schedule[0].principal",
            "schedule[0].interest", "collateral[0].valuation", "collateral[0].area",
            "collateral[0].registration_no")
    bidi = api("POST", "/loans", json=loan_payload(
        "FZ-NEW", "fuzzer", collateral=[{"kind": "mortgage", "description": "flat",
                                         "registration_no": "R\u202e1"}]))
    refused(bidi, 400, "collateral[0].registration_no")
    assert stored() == before


REPAYMENT_CASES = [
    ("amount", 1e30), ("amount", "1e30"), ("amount", "NaN"), ("amount", "Infinity"),
    ("amount", "9" * 400), ("amount", 10 ** 40), ("amount", "1000000000000.01"),
    ("paid_at", "0001-01-01"), ("paid_at", "9999-12-31T23:59:59-12:00"),
    ("paid_at", "0001-01-01T00:00:00+14:00"), ("paid_at", "2999-01-01"),
    ("paid_at", "2024-01-01"),  # more than a year before the loan was disbursed
    ("external_ref", "CB\x00"), ("external_ref", "CB-\u202e9"),
]


@pytest.mark.parametrize("field,value", REPAYMENT_CASES,
                         ids=[f"{f}={v!r}"[:40] for f, v in REPAYMENT_CASES])
def test_malformed_repayments(api, field, value):
    before = stored()
    body = {"amount": "10.00", "paid_at": "2026-04-01", "external_ref": "CB-NEW", field: value}
    refused(api("POST", "/loans/FZ-1/repayments", json=body), 400, field)
    assert stored() == before


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999", "1" * 5000])
def test_json_number_tokens_json_forbids(api, token):
    """Python's JSON parser takes NaN and Infinity, which JSON does not have (a client library
    will not send them; a hand-written body may), and huge numbers become inf or exceed the
    digit limit."""
    before = stored()
    body = '{"amount": %s, "paid_at": "2026-04-01", "external_ref": "CB-NAN"}' % token
    response = api("POST", "/loans/FZ-1/repayments", data=body,
                   content_type="application/json")
    assert response.status_code == 400
    loan = '{"loan_no": "FZ-NAN", "borrower_name": "x", "principal": %s, "interest_rate": ' \
           '"0.04", "disbursed_on": "2026-03-02", "maturity_on": "2026-09-02", ' \
           '"account_manager": "fuzzer"}' % token
    assert api("POST", "/loans", data=loan, content_type="application/json").status_code == 400
    assert stored() == before


def test_a_repayment_in_the_window_is_taken(api):
    response = api("POST", "/loans/FZ-1/repayments",
                   json={"amount": "10.00", "paid_at": "2027-04-01", "external_ref": "CB-2"})
    assert response.status_code == 201  # announced ahead, within a year: taken


@pytest.mark.parametrize("depth", [50, 10_000])
def test_deeply_nested_bodies(api, depth):
    before = stored()
    for path in ("/loans", "/loans/FZ-1/repayments", "/tasks/1/complete",
                 "/loans/FZ-2/extensions", "/reversals/1/decision"):
        body = '{"loan_no": ' + deep_array(depth) + "}"
        refused(api("POST", path, data=body, content_type="application/json"), 400, "body")
        refused(api("POST", path, data=deep_array(depth), content_type="application/json"),
                400, "body")
    assert stored() == before


@pytest.mark.parametrize("path", ["/tasks/{id}", "/tasks/{id}/claim", "/tasks/{id}/unclaim",
                                  "/tasks/{id}/complete", "/reversals/{id}/decision"])
@pytest.mark.parametrize("number", [2 ** 31, 2 ** 63, 2 ** 64, 2 ** 200])
def test_ids_beyond_the_columns(api, path, number):
    before = stored()
    method = "GET" if path == "/tasks/{id}" else "POST"
    refused(api(method, path.format(id=number), json={"data": {}, "decision": "approve"}), 404)
    assert stored() == before


@pytest.mark.parametrize("query,field", [
    ("page=1180591620717411303424", "page"), (f"page={2 ** 64}", "page"), ("page=0", "page"),
    ("page=-1", "page"), ("page=abc", "page"), ("page=1e3", "page"), ("page=%EF%BC%91", "page"),
    (f"per_page={2 ** 70}", "per_page"), ("per_page=0", "per_page"),
    ("per_page=101", "per_page"), ("loan_no=FZ-1%00", "loan_no"),
    ("loan_no=%E2%80%AEFZ-1", "loan_no"), ("process=%00", "process"), ("scope=all", "scope")])
def test_malformed_task_queries(api, query, field):
    refused(api("GET", f"/tasks?{query}"), 400, field)


def test_page_at_the_bound_is_served(api):
    response = api("GET", "/tasks?page=100000&per_page=100")
    assert response.status_code == 200 and response.get_json()["items"] == []


@pytest.mark.parametrize("loan_no", ["FZ-1%00", "%00", "%E2%80%AEFZ-1", "FZ%E2%81%A6-1"])
def test_loan_numbers_with_control_characters_in_paths(api, loan_no):
    before = stored()
    refused(api("GET", f"/cases/{loan_no}"), 400, "loan_no")
    refused(api("POST", f"/loans/{loan_no}/repayments",
                json={"amount": "1.00", "paid_at": "2026-04-01", "external_ref": "X"}),
            400, "loan_no")
    assert stored() == before


@pytest.mark.parametrize("field,value", [
    ("confirmed_amount", "1e30"), ("confirmed_amount", "NaN"), ("confirmed_amount", "sNaN"),
    ("confirmed_amount", "Infinity"), ("confirmed_amount", "1e999999999"),
    ("confirmed_amount", "12.345"), ("confirmed_due_on", "9999-12-31"),
    ("confirmed_due_on", "0001-01-01"), ("promised_on", "2999-01-01"),
    ("reminder_note", "note\x00"), ("confirmed_account", "\u202e6222")])
def test_malformed_task_form_values(api, field, value):
    from workflows.models import HumanTask
    task = HumanTask.query.filter_by(bpmn_id="remind_borrower", state="ready").one()
    before = stored()
    refused(api("POST", f"/tasks/{task.id}/complete",
                json={"data": {**REMINDER_DATA, field: value}}), 400, field)
    assert stored() == before
    assert api("POST", f"/tasks/{task.id}/complete",
               json={"data": REMINDER_DATA}).status_code == 200


@pytest.mark.parametrize("field,value", [
    ("new_maturity_on", "9999-12-31"), ("new_maturity_on", "0001-01-01"),
    ("new_maturity_on", "2999-01-01"), ("proposed_rate", "NaN"), ("proposed_rate", "1e30"),
    ("reason", "why\x00"), ("reason", "\u202ereason")])
def test_malformed_extension_requests(api, field, value):
    before = stored()
    body = {"new_maturity_on": "2027-03-02", "proposed_rate": "0.05", "reason": "late buyer",
            field: value}
    refused(api("POST", "/loans/FZ-2/extensions", json=body), 400, field)
    assert stored() == before


def test_unknown_paths_and_methods_answer_json(api):
    refused(api("GET", "/nothing/here"), 404)
    refused(api("GET", "/tasks/-1"), 404)
    refused(api("GET", "/cases/a%0Ab/history/x"), 404)
    wrong = api("DELETE", "/tasks")
    refused(wrong, 405)
    assert "GET" in wrong.headers["Allow"]
    # A role the token lacks is a JSON 403 (it was the web's HTML page).
    refused(api("POST", "/reversals/1/decision", json={"decision": "approve"},
                headers={"Authorization": "Bearer nope"}), 401)
