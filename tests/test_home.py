"""The home page per role (issue 13 item 2): counts of my tasks, the pools of my roles,
overdue ones, approvals waiting, my open cases by stage, unread notifications; each a link to
its list; every figure a bounded COUNT without ORDER BY."""
import datetime as dt

from accounts.operations import create_user
from extension_requests.operations import request_extension
from home.operations import home_figures
from tests.conftest import HANDOVER_DATA, PASSWORD, login
from tests.test_extension import REQUEST
from tests.test_round_trips import counting
from tests.test_servicing import serviced  # noqa: F401  (fixture)
from workflows import clock
from workflows.models import HumanTask
from workflows.tasks import complete_task

EN = {"Accept-Language": "en"}


def figures(user):
    return {f.key: f for f in home_figures(user)}


def counts(user):
    return {key: f.count for key, f in figures(user).items()}


def task_of(loan, bpmn_id):
    return HumanTask.query.filter_by(case_id=loan.id, bpmn_id=bpmn_id, state="ready").one()


def test_account_manager_and_post_loan_officer(app, new_loan, users):
    first = new_loan("L-001")
    new_loan("L-002", manager="am2")
    am, plo = users["am"], users["plo"]
    assert counts(am) == {"mine": 1, "available": 0, "overdue": 0, "unread": 1, "cases": 1}
    assert figures(am)["cases"].parts == [("current", 1, False, "/cases?stage=current")]
    assert counts(plo) == {"mine": 0, "available": 0, "overdue": 0, "unread": 0, "cases": 2}
    complete_task(task_of(first, "handover_file").id, am, data=HANDOVER_DATA)
    assert counts(plo)["available"] == 1 and counts(am)["mine"] == 0
    clock.set_now(clock.now() + dt.timedelta(days=10))
    assert counts(plo)["overdue"] == 1  # the pool's check, past its due date
    assert counts(users["am2"])["overdue"] == 1  # L-002's file, held by am2


def test_approvals_waiting_for_a_department_head(app, serviced, users):
    head = create_user("head", PASSWORD, ["dept_head"])
    assert counts(head)["approvals"] == 0
    loan = serviced()
    request_extension(loan, REQUEST, users["am"])
    assert counts(head)["approvals"] == 2  # the review, and the risk warning it raised
    assert figures(head)["approvals"].url == "/manage"
    assert "approvals" not in counts(users["am"])  # no approver lane


def test_roles_without_a_case_list_see_no_case_figure(app, new_loan, users):
    owner = create_user("owner", PASSWORD, ["process_owner"])
    new_loan()
    assert "cases" not in counts(owner)
    assert counts(users["compliance"])["cases"] == 1  # reads every case


def test_home_page_links_each_figure_to_its_list(app, new_loan, users):
    new_loan()
    web = app.test_client()
    assert web.get("/").status_code == 302  # log in first
    login(web, "am")
    page = web.get("/", headers=EN)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for href in ('href="/inbox?tab=mine"', 'href="/inbox?tab=available"',
                 'href="/notifications"', 'href="/cases?stage=current"', 'href="/cases"'):
        assert href in html, href
    assert "My tasks" in html and "Current" in html and 'data-count="1"' in html
    assert "<script>" not in html and "style=" not in html  # strict CSP


def test_figures_are_bounded_counts_without_sorting(app, new_loan, users):
    head = create_user("head", PASSWORD, ["dept_head", "account_manager"])
    new_loan()
    assert head.roles  # loaded, as for the logged-in user of a request
    with counting(app) as seen:
        home_figures(head)
    assert len(seen["statements"]) == 1  # every count in one
    for sql in seen["statements"]:
        assert "ORDER BY" not in sql.upper() and "GROUP BY" not in sql.upper()


def test_the_case_figure_says_whose_cases_and_a_process_owner_gets_the_studio(app, new_loan,
                                                                              users):
    new_loan()
    create_user("owner", PASSWORD, ["process_owner"])
    pages = {}
    for name in ("am", "compliance", "owner"):
        web = app.test_client()
        login(web, name)
        pages[name] = web.get("/", headers=EN).get_data(as_text=True)
    assert "My open cases" in pages["am"] and "Open cases" not in pages["am"].replace(
        "My open cases", "")
    assert "Open cases" in pages["compliance"] and "My open cases" not in pages["compliance"]
    owner = pages["owner"]
    assert 'href="/studio/"' in owner and "Process designer" in owner
    # No case is a process owner's to see: no case list link, no loan search in the header.
    assert 'href="/cases"' not in owner and 'name="q"' not in owner
    assert 'href="/cases"' in pages["compliance"] and 'name="q"' in pages["compliance"]


def test_the_phone_menu_button_carries_the_unread_count(app, new_loan, users):
    new_loan()  # the handover file is assigned to am: one notification
    web = app.test_client()
    login(web, "am")
    html = web.get("/", headers=EN).get_data(as_text=True)
    assert 'aria-label="Menu, 1 unread notifications"' in html and "toggler-badge" in html
    other = app.test_client()
    login(other, "plo")
    assert 'aria-label="Menu"' in other.get("/", headers=EN).get_data(as_text=True)
