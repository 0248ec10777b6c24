"""Web pages through Flask's test client."""
import re

from tests.conftest import HANDOVER_DATA, login
from workflows.inbox import open_tasks_of_case
from workflows.models import HumanTask
from workflows.tasks import complete_task


def test_login_required_and_wrong_password(app, users):
    client = app.test_client()
    assert client.get("/inbox").status_code == 302
    response = login(client, "am", "wrong-password")
    assert "Wrong user name or password" in response.get_data(as_text=True) or \
        "用户名或密码错误" in response.get_data(as_text=True)
    assert client.get("/inbox").status_code == 302


def test_handover_through_the_web(app, new_loan, users):
    loan = new_loan()
    am = app.test_client()
    login(am, "am")
    # The file is the manager's from the start: in "mine", not in the pool.
    page = am.get("/inbox?tab=mine", headers={"Accept-Language": "en"})
    assert loan.loan_no in page.get_data(as_text=True)
    assert loan.loan_no not in am.get("/inbox?tab=available").get_data(as_text=True)
    task = open_tasks_of_case(loan.id)[0]
    assert am.post(f"/tasks/{task.id}/claim").status_code == 302  # claiming it is harmless
    mine = am.get("/inbox?tab=mine").get_data(as_text=True)
    assert f"/tasks/{task.id}" in mine
    # A form with a missing required field is refused and nothing changes.
    bad = am.post(f"/tasks/{task.id}", data={"purpose": "x"})
    assert bad.status_code == 400
    assert HumanTask.query.get(task.id).state == "ready"
    done = am.post(f"/tasks/{task.id}", data=HANDOVER_DATA, headers={"Accept-Language": "en"},
                   follow_redirects=True)
    assert done.status_code == 200
    assert "completed" in done.get_data(as_text=True)
    check = open_tasks_of_case(loan.id)[0]
    assert check.bpmn_id == "check_file"

    plo = app.test_client()
    login(plo, "plo")
    page = plo.get(f"/tasks/{check.id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "working capital" in page.get_data(as_text=True)  # the handed-over data is shown
    plo.post(f"/tasks/{check.id}", data={"check_result": "complete"})
    register = open_tasks_of_case(loan.id)[0]
    plo.post(f"/tasks/{register.id}", data={"ledger_no": "TZ-9", "risk_group": "low",
                                            "inspection_frequency": "quarterly"})
    case = plo.get(f"/cases/{loan.loan_no}", headers={"Accept-Language": "en"})
    html = case.get_data(as_text=True)
    assert case.status_code == 200
    for expected in ("Hand over the loan file", "Check the loan file", "TZ-9", "Process completed",
                     "working capital"):
        assert expected in html


def test_wrong_role_gets_403_on_task_and_case(app, new_loan, users):
    loan = new_loan()
    task = open_tasks_of_case(loan.id)[0]
    client = app.test_client()
    login(client, "am2")
    assert client.get(f"/tasks/{task.id}").status_code == 403
    assert client.get(f"/cases/{loan.loan_no}").status_code == 403
    response = client.post(f"/tasks/{task.id}", data=HANDOVER_DATA)
    assert response.status_code == 403
    assert HumanTask.query.get(task.id).state == "ready"


def test_four_eyes_refused_in_the_web(app, new_loan, users):
    loan = new_loan(manager="dual")
    complete_task(open_tasks_of_case(loan.id)[0].id, users["dual"], data=HANDOVER_DATA)
    check = open_tasks_of_case(loan.id)[0]
    client = app.test_client()
    login(client, "dual")
    available = client.get("/inbox?tab=available").get_data(as_text=True)
    assert f"/tasks/{check.id}" not in available
    page = client.get(f"/tasks/{check.id}", headers={"Accept-Language": "en"})
    assert "Four eyes" in page.get_data(as_text=True)
    response = client.post(f"/tasks/{check.id}", data={"check_result": "complete"},
                           headers={"Accept-Language": "en"}, follow_redirects=True)
    assert "Four eyes" in response.get_data(as_text=True)
    assert HumanTask.query.get(check.id).state == "ready"


def test_task_completed_meanwhile_gives_a_message(app, new_loan, users):
    loan = new_loan()
    complete_task(open_tasks_of_case(loan.id)[0].id, users["am"], data=HANDOVER_DATA)
    check = open_tasks_of_case(loan.id)[0]
    late = app.test_client()
    login(late, "plo2")
    late.get(f"/tasks/{check.id}")
    complete_task(check.id, users["plo"], data={"check_result": "complete"})
    response = late.post(f"/tasks/{check.id}", data={"check_result": "complete"},
                         headers={"Accept-Language": "en", "Referer": f"/tasks/{check.id}"},
                         follow_redirects=True)
    assert response.status_code == 200
    assert "no longer open" in response.get_data(as_text=True) or \
        "already completed" in response.get_data(as_text=True)


def tasks_in(html):
    """The distinct tasks a page links to (a row in "mine" links to its task twice)."""
    return set(re.findall(r'href="/tasks/(\d+)"', html))


def test_inbox_filters_and_pagination(app, new_loan, users):
    for i in range(25):
        new_loan(loan_no=f"P-{i:03d}")
    client = app.test_client()
    login(client, "am")
    first = client.get("/inbox?tab=mine").get_data(as_text=True)
    assert len(tasks_in(first)) == 20
    second = client.get("/inbox?tab=mine&page=2").get_data(as_text=True)
    assert len(tasks_in(second)) == 5
    only = client.get("/inbox?tab=mine&loan_no=P-007").get_data(as_text=True)
    assert len(tasks_in(only)) == 1
    none = client.get("/inbox?tab=mine&process=nothing").get_data(as_text=True)
    assert len(tasks_in(none)) == 0


def test_language_switch_and_accept_language(app, users):
    client = app.test_client()
    login(client, "am")
    zh = client.get("/inbox", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    en = client.get("/inbox", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "待办" in zh
    assert "Inbox" in en
    us = client.get("/inbox", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Inbox" in us.get_data(as_text=True)
    fr = client.get("/inbox", headers={"Accept-Language": "fr-FR, en-GB;q=0.8"})
    assert "Inbox" in fr.get_data(as_text=True)
    client.post("/language/en")
    forced = client.get("/inbox", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "Inbox" in forced


def test_register_loan_through_the_web(app, deployed, users):
    client = app.test_client()
    login(client, "admin")
    form = {"loan_no": "W-1", "borrower_name": "张伟", "principal": "100000",
            "interest_rate": "0.05", "disbursed_on": "2026-03-02", "maturity_on": "2026-01-01",
            "account_manager": "am"}
    refused = client.post("/cases/new", data=form)
    assert refused.status_code == 200  # re-rendered with the error
    from cases.models import Loan
    assert Loan.query.filter_by(loan_no="W-1").first() is None
    form["maturity_on"] = "2026-12-01"
    response = client.post("/cases/new", data=form)
    assert response.status_code == 302
    assert Loan.query.filter_by(loan_no="W-1").one().status == "handover"
    collector = app.test_client()
    login(collector, "collector")
    assert collector.get("/cases/new").status_code == 403


def test_logout(app, users):
    client = app.test_client()
    login(client, "am")
    assert client.get("/inbox").status_code == 200
    client.post("/logout")
    assert client.get("/inbox").status_code == 302


def test_task_page_with_an_id_beyond_64_bits_is_not_found(app, users):
    client = app.test_client()
    login(client, "plo")
    # Not a 500 (the id does not fit the database): "not found", back to the inbox.
    response = client.get("/tasks/9223372036854775808")
    assert response.status_code == 302 and response.location.endswith("/inbox")
