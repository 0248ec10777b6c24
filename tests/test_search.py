"""Compliance search and export: the three standing questions, late completions, the CSV
(BOM, columns), the export's own audit event, and who may look."""
import csv
import datetime as dt
import io

from audit.models import AuditEvent
from compliance.search import Filters, all_rows, last_quarter, presets
from tests.conftest import HANDOVER_DATA, login
from tests.test_collection import CALL, at, do, overdue, ready, staff  # noqa: F401 (fixtures)
from tests.test_extension import approve, bosses, review  # noqa: F401 (fixture)
from tests.test_servicing import serviced  # noqa: F401 (fixture)
from extension_requests.operations import request_extension
from workflows import clock
from workflows.inbox import open_tasks_of_case
from workflows.tasks import complete_task

UTC = dt.timezone.utc
DUE = dt.datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # the handover's first task (management tests)
REQUEST = {"new_maturity_on": "2026-12-15", "proposed_rate": "0.0500", "reason": "late buyer"}


def found(**filters):
    return [row[0] for row in all_rows(Filters(**filters))]


def only_task(loan):
    (task,) = open_tasks_of_case(loan.id)
    return task


def test_last_quarter():
    assert last_quarter(dt.date(2026, 7, 15)) == (dt.date(2026, 4, 1), dt.date(2026, 6, 30))
    assert last_quarter(dt.date(2026, 2, 1)) == (dt.date(2025, 10, 1), dt.date(2025, 12, 31))


def test_litigation_approvals_last_quarter(app, overdue, staff):
    loan = overdue()
    collector, leader = staff["collector"], staff["leader"]
    propose = dict(CALL, answered_by="nobody", collection_result="no_answer",
                   next_step="propose_visit", visit_reason="no answer for a week")
    do(loan, "phone_collection", collector, **propose)
    do(loan, "approve_visit", leader, visit_decision="approve", visit_comment="go")
    do(loan, "visit_report", collector, visit_address="杭州市西湖区", visit_met="借款人妻子",
       visit_findings="shop closed", visit_situation="wilful_default",
       visit_photos_note="4 photos")
    task = ready(loan, "approve_litigation")
    do(loan, "approve_litigation", leader, litigation_decision="approve",
       litigation_comment="sue")
    # In May (the second quarter) the preset asks about the first quarter: nothing.
    assert found(**presets()["litigation"]) == []
    at(dt.date(2026, 7, 15), 10)
    (event,) = found(**presets()["litigation"])
    assert (event.action, event.task_id, event.actor_id) == ("task.completed", task.id,
                                                             leader.id)
    assert event.data["data"]["litigation_decision"] == "approve"
    # The role and loan filters narrow the same question; another loan matches nothing.
    assert found(**presets()["litigation"], role="dept_head", loan=loan.loan_no) == [event]
    assert found(**presets()["litigation"], role="collector") == []
    assert found(**presets()["litigation"], loan="NOPE") == []
    assert found(**presets()["litigation"], stage=loan.stage) == [event]
    client = app.test_client()
    login(client, "compliance")
    page = client.get("/compliance/search?preset=x").get_data(as_text=True)
    assert "preset-litigation" in page and "approve_litigation" in page  # preset link
    page = client.get("/compliance/search", query_string=presets()["litigation"])
    assert page.status_code == 200
    assert f'data-id="{event.id}"' in page.get_data(as_text=True)


def test_tasks_a_user_completed_late(app, new_loan, users):
    on_time = new_loan()
    complete_task(only_task(on_time).id, users["am"], data=HANDOVER_DATA)
    late_loan = new_loan("L-002", manager="am2")
    task = only_task(late_loan)
    clock.set_now(DUE + dt.timedelta(hours=1))
    complete_task(task.id, users["am2"], data=HANDOVER_DATA)
    (event,) = found(user="am2", **presets()["late"])
    assert (event.action, event.task_id) == ("task.completed", task.id)
    assert found(user="am", **presets()["late"]) == []
    assert [e.action for e in found(user="am", action="task.completed", late="on_time")] == [
        "task.completed"]
    assert found(**presets()["late"]) == [event]


def test_extensions_approved_by_the_general_manager(app, serviced, bosses):
    loan = serviced()
    request_extension(loan, REQUEST, bosses["am"])
    review(loan, bosses["dh"])
    approve(loan, bosses["gm"])
    other = serviced(loan_no="L-OTHER")
    request_extension(other, REQUEST, bosses["am"])
    review(other, bosses["dh"])
    approve(other, bosses["gm2"], decision="reject")
    (event,) = found(**presets()["gm_extensions"])
    assert (event.action, event.case_id, event.actor_id) == (
        "extension.approved", loan.id, bosses["gm"].id)
    # The same question through the task: the GM's approval completions with "approve".
    completions = found(process="extension", step="gm_approval", action="task.completed")
    assert sorted((e.case_id, e.data["data"]["approval_decision"]) for e in completions) == [
        (loan.id, "approve"), (other.id, "reject")]
    assert found(**presets()["gm_extensions"], user="gm2") == []


def test_csv_export_has_a_bom_the_columns_and_is_audited(app, new_loan, users):
    loan = new_loan(borrower_name="杭州明远贸易有限公司")
    complete_task(only_task(loan).id, users["am"], data=HANDOVER_DATA)
    client = app.test_client()
    login(client, "compliance")
    response = client.get("/compliance/search.csv?action=task.completed&user=am&late=on_time",
                          headers={"Accept-Language": "en"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    body = response.data
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:11] == ["Time (Beijing)", "User", "Roles", "Action", "Process", "Step",
                            "Loan", "Stage", "Late", "Details (JSON)", "Hash"]
    assert rows[0][11:] == ["Who", "What", "Process name", "Step name", "Stage name",
                            "Details"]
    (row,) = rows[1:]
    event = AuditEvent.query.filter_by(action="task.completed").one()
    assert row[1:9] == ["am", "account_manager", "task.completed", "handover",
                        event.data["bpmn_id"], loan.loan_no, loan.stage, "no"]
    assert row[0] == "2026-03-02 10:00:00" and row[10] == event.hash
    assert '"bpmn_id"' in row[9]
    (export,) = AuditEvent.query.filter_by(action="export.search").all()
    assert export.actor_id == users["compliance"].id
    assert export.data == {"filters": {"action": "task.completed", "user": "am",
                                       "late": "on_time"}, "rows": 1}


def test_who_may_search(app, new_loan, users):
    new_loan()
    client = app.test_client()
    login(client, "collector")
    for url in ("/compliance/search", "/compliance/search.csv", "/compliance/audit"):
        assert client.get(url).status_code == 403
    assert AuditEvent.query.filter_by(action="export.search").count() == 0
    login(client, "compliance")
    for url in ("/compliance/search", "/compliance/audit"):
        response = client.get(url)
        assert response.status_code == 200, url
    created = AuditEvent.query.filter_by(action="case.created").one()
    assert f'data-id="{created.id}"' in response.get_data(as_text=True)
    for url in ("/compliance/search", "/compliance/search.csv", "/compliance/audit"):
        assert client.post(url).status_code in (403, 405)
