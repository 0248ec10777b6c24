"""The JSON API with bearer tokens."""
import threading

from tests.conftest import HANDOVER_DATA, loan_payload
from workflows.inbox import open_tasks_of_case
from workflows.models import HumanTask


def test_token_required(app):
    client = app.test_client()
    assert client.get("/api/v1/tasks").status_code == 401
    response = client.get("/api/v1/tasks", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert "error" in response.get_json()


def test_create_loan_validation_and_duplicates(app, deployed, users, token_for):
    client, admin = app.test_client(), token_for("admin")
    missing = client.post("/api/v1/loans", json={"loan_no": "A-1"}, headers=admin)
    assert missing.status_code == 400
    body = missing.get_json()
    assert {"borrower_name", "principal", "account_manager"} <= set(body["field_errors"])
    bad = client.post("/api/v1/loans", json=loan_payload("A-1", principal="-5",
                                                         disbursed_on="2026-02-30"),
                      headers=admin)
    assert set(bad.get_json()["field_errors"]) == {"principal", "disbursed_on"}
    created = client.post("/api/v1/loans", json=loan_payload("A-1"), headers=admin)
    assert created.status_code == 201
    assert created.get_json()["open_tasks"][0]["bpmn_id"] == "handover_file"
    # Idempotent on the loan number (tests/test_intake.py has the details).
    again = client.post("/api/v1/loans", json=loan_payload("A-1"), headers=admin)
    assert again.status_code == 200
    different = client.post("/api/v1/loans", json=loan_payload("A-1", principal="1"),
                            headers=admin)
    assert different.status_code == 409
    collector = client.post("/api/v1/loans", json=loan_payload("A-2"),
                            headers=token_for("collector"))
    assert collector.status_code == 403
    not_json = client.post("/api/v1/loans", data="x", headers=admin)
    assert not_json.status_code == 400


def test_handover_through_the_api(app, new_loan, users, token_for):
    loan = new_loan()
    client, am, plo = app.test_client(), token_for("am"), token_for("plo")
    # The file is the account manager's from the start: in "mine", not the pool.
    assert client.get("/api/v1/tasks?scope=available", headers=am).get_json()["total"] == 0
    listing = client.get("/api/v1/tasks?scope=mine", headers=am).get_json()
    assert listing["total"] == 1
    item = listing["items"][0]
    assert {"id", "process", "bpmn_id", "name", "role", "loan_no", "claimed_by",
            "due_at"} <= set(item)
    assert (item["process"], item["role"], item["loan_no"]) == (
        "handover", "account_manager", loan.loan_no)
    detail = client.get(f"/api/v1/tasks/{item['id']}", headers=am).get_json()
    documents = next(f for f in detail["fields"] if f["name"] == "documents")
    assert documents["required"] and "contract" in documents["choices"]
    assert client.post(f"/api/v1/tasks/{item['id']}/claim", headers=am).status_code == 200
    mine = client.get("/api/v1/tasks?scope=mine", headers=am).get_json()
    assert mine["items"][0]["claimed_by"] == "am"
    invalid = client.post(f"/api/v1/tasks/{item['id']}/complete",
                          json={"data": {"documents": ["nonsense"]}}, headers=am)
    assert invalid.status_code == 400
    assert "documents" in invalid.get_json()["field_errors"]
    no_body = client.post(f"/api/v1/tasks/{item['id']}/complete", json={}, headers=am)
    assert no_body.status_code == 400
    done = client.post(f"/api/v1/tasks/{item['id']}/complete", json={"data": HANDOVER_DATA},
                       headers=am)
    assert done.status_code == 200
    twice = client.post(f"/api/v1/tasks/{item['id']}/complete", json={"data": HANDOVER_DATA},
                        headers=am)
    assert twice.status_code == 409

    check = client.get(f"/api/v1/tasks?scope=available&loan_no={loan.loan_no}",
                       headers=plo).get_json()["items"][0]
    assert check["bpmn_id"] == "check_file"
    assert client.post(f"/api/v1/tasks/{check['id']}/complete",
                       json={"data": {"check_result": "complete"}}, headers=plo).status_code == 200
    case = client.get(f"/api/v1/cases/{loan.loan_no}", headers=plo).get_json()
    assert case["open_tasks"][0]["bpmn_id"] == "register_loan"
    history = client.get(f"/api/v1/cases/{loan.loan_no}/history", headers=plo).get_json()
    completed = [e for e in history["events"] if e["action"] == "task.completed"]
    assert [e["actor"] for e in completed] == ["am", "plo"]
    assert completed[0]["data"]["data"]["purpose"] == "working capital"


def test_api_permissions(app, new_loan, users, token_for):
    loan = new_loan()
    task = open_tasks_of_case(loan.id)[0]
    client = app.test_client()
    wrong_role = client.post(f"/api/v1/tasks/{task.id}/complete",
                             json={"data": HANDOVER_DATA}, headers=token_for("plo"))
    assert wrong_role.status_code == 403
    assert client.get(f"/api/v1/cases/{loan.loan_no}", headers=token_for("am2")).status_code == 403
    assert client.get("/api/v1/cases/NOPE", headers=token_for("plo")).status_code == 404
    assert client.get("/api/v1/tasks/999999", headers=token_for("plo")).status_code == 404
    bad_scope = client.get("/api/v1/tasks?scope=all", headers=token_for("plo"))
    assert bad_scope.status_code == 400


def test_four_eyes_in_the_api(app, new_loan, users, token_for):
    loan = new_loan(manager="dual")
    client, dual = app.test_client(), token_for("dual")
    first = client.get("/api/v1/tasks?scope=mine", headers=dual).get_json()["items"][0]
    client.post(f"/api/v1/tasks/{first['id']}/complete", json={"data": HANDOVER_DATA},
                headers=dual)
    check = open_tasks_of_case(loan.id)[0]
    assert client.get("/api/v1/tasks?scope=available", headers=dual).get_json()["total"] == 0
    refused = client.post(f"/api/v1/tasks/{check.id}/complete",
                          json={"data": {"check_result": "complete"}}, headers=dual)
    assert refused.status_code == 403
    assert "four eyes" in refused.get_json()["error"]
    claim = client.post(f"/api/v1/tasks/{check.id}/claim", headers=dual)
    assert claim.status_code == 403


def test_claimed_by_another_is_409(app, new_loan, users, token_for):
    loan = new_loan()
    client = app.test_client()
    client.post(f"/api/v1/tasks/{open_tasks_of_case(loan.id)[0].id}/complete",
                json={"data": HANDOVER_DATA}, headers=token_for("am"))
    check = open_tasks_of_case(loan.id)[0]
    assert client.post(f"/api/v1/tasks/{check.id}/claim",
                       headers=token_for("plo")).status_code == 200
    assert client.post(f"/api/v1/tasks/{check.id}/claim",
                       headers=token_for("plo2")).status_code == 409
    assert client.post(f"/api/v1/tasks/{check.id}/unclaim",
                       headers=token_for("plo2")).status_code == 403


def test_two_concurrent_completions_exactly_one_wins(app, new_loan, users, token_for):
    loan = new_loan()
    client = app.test_client()
    client.post(f"/api/v1/tasks/{open_tasks_of_case(loan.id)[0].id}/complete",
                json={"data": HANDOVER_DATA}, headers=token_for("am"))
    check_id = open_tasks_of_case(loan.id)[0].id
    headers = [token_for("plo"), token_for("plo2")]
    results, barrier = [], threading.Barrier(2)

    def complete(h):
        with app.test_client() as c:
            barrier.wait()
            r = c.post(f"/api/v1/tasks/{check_id}/complete",
                       json={"data": {"check_result": "complete"}}, headers=h)
            results.append(r.status_code)

    threads = [threading.Thread(target=complete, args=(h,)) for h in headers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]
    tasks = HumanTask.query.filter_by(case_id=loan.id).all()
    assert sum(1 for t in tasks if t.bpmn_id == "register_loan") == 1
    assert sum(1 for t in tasks if t.bpmn_id == "check_file" and t.state == "completed") == 1
