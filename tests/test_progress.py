"""Where is my case: the path an instance took (loops counted), its diagram for everyone who
may see the case, and the heat map of where running cases wait, per process version."""
import datetime as dt
import json
import os

import pytest

from accounts.operations import create_user
from audit.models import AuditEvent
from extensions import db
from tests.conftest import HANDOVER_DATA, PASSWORD, T0, login
from tests.test_browser import browser_login, open_page, live_server, require_chromium  # noqa: F401 (fixtures)
from tests.test_browser import HOME, screenshot_on_failure
from tests.test_servicing import serviced  # noqa: F401 (fixture)
from workflows.inbox import open_tasks_of_case
from workflows import clock
from workflows.definitions import deploy_xml
from workflows.models import HumanTask, ProcessDefinition, ProcessInstance
from workflows.progress import instance_progress, waiting_at, waiting_counts
from workflows.service import cancel_instance, start_process
from workflows.tasks import claim_task, complete_task
from workflows.timers import fire_due_timers

INCOMPLETE = {"check_result": "incomplete", "missing_items": ["collateral"],
              "check_note": "no deed"}


def only_task(loan):
    (task,) = open_tasks_of_case(loan.id)
    return task


def handover_instance(loan):
    return (ProcessInstance.query.filter_by(case_id=loan.id)
            .join(ProcessInstance.definition)
            .filter(ProcessDefinition.process_key == "handover").one())


def sent_back(new_loan, users, loan_no="L-001", manager="am"):
    """Handed over, found incomplete: the file is back with the account manager."""
    loan = new_loan(loan_no, manager)
    complete_task(only_task(loan).id, users[manager], data=HANDOVER_DATA)
    complete_task(only_task(loan).id, users["plo"], data=INCOMPLETE)
    return loan


@pytest.fixture
def client(app):
    return app.test_client()


def definition(key, version=1):
    return ProcessDefinition.query.filter_by(process_key=key, version=version).one()


# ---------------------------------------------------------------- instance_progress

def test_progress_counts_the_incomplete_loop(new_loan, users):
    loan = sent_back(new_loan, users)
    progress = instance_progress(handover_instance(loan))
    assert progress["completed"] == {"start": 1, "handover_file": 1, "check_file": 1,
                                     "file_complete": 1}
    assert progress["current"] == ["handover_file"]
    assert progress["flows"] == {"flow_start": 1, "flow_to_check": 1, "flow_to_gateway": 1,
                                 "flow_incomplete": 1}
    assert progress["cancelled"] is False

    # The file handed over a second time: the loop shows in the counts.
    complete_task(only_task(loan).id, users["am"], data=HANDOVER_DATA)
    progress = instance_progress(handover_instance(loan))
    assert progress["completed"]["handover_file"] == 2
    assert progress["completed"]["check_file"] == 1
    assert progress["current"] == ["check_file"]
    assert progress["flows"]["flow_to_check"] == 2
    assert progress["flows"]["flow_incomplete"] == 1
    assert "flow_complete" not in progress["flows"]


def test_progress_of_a_finished_and_of_a_cancelled_instance(new_loan, users):
    loan = new_loan()
    complete_task(only_task(loan).id, users["am"], data=HANDOVER_DATA)
    complete_task(only_task(loan).id, users["plo"], data={"check_result": "complete"})
    complete_task(only_task(loan).id, users["plo"], data={
        "ledger_no": "TZ", "risk_group": "normal", "inspection_frequency": "monthly"})
    progress = instance_progress(handover_instance(loan))
    assert progress["current"] == []
    assert progress["completed"]["end"] == 1
    assert set(progress["flows"]) == {"flow_start", "flow_to_check", "flow_to_gateway",
                                      "flow_complete", "flow_to_plan", "flow_to_end"}
    assert set(progress["flows"].values()) == {1}

    other = new_loan("L-002")
    instance = cancel_instance(handover_instance(other), "test")
    progress = instance_progress(instance)
    assert progress["cancelled"] is True
    assert progress["current"] == []
    assert progress["completed"] == {"start": 1}


# ---------------------------------------------------------------- diagram.json

def test_diagram_json_for_everyone_who_may_see_the_case(client, new_loan, users):
    loan = sent_back(new_loan, users)
    instance_id = handover_instance(loan).id
    url = f"/studio/instances/{instance_id}/diagram.json"

    login(client, "am")  # the loan's own account manager
    response = client.get(url)
    assert response.status_code == 200
    body = response.get_json()
    assert body["xml"].startswith("<?xml") and 'id="flow_incomplete"' in body["xml"]
    assert body["progress"]["flows"]["flow_incomplete"] == 1
    assert body["progress"]["current"] == ["handover_file"]
    assert (body["process"], body["version"], body["status"]) == ("handover", 1, "running")

    client.post("/logout")
    login(client, "compliance")
    assert client.get(url).status_code == 200

    client.post("/logout")
    login(client, "am2")  # manages other loans only
    assert client.get(url).status_code == 403
    denial = AuditEvent.query.filter_by(action="permission.denied").one()
    assert denial.data["path"] == url

    assert client.get("/studio/instances/999999/diagram.json").status_code == 404


def test_diagram_json_requires_login(client, new_loan, users):
    loan = new_loan()
    response = client.get(f"/studio/instances/{handover_instance(loan).id}/diagram.json")
    assert response.status_code in (302, 401)


def test_case_page_lists_the_process_diagrams(client, new_loan, users):
    loan = sent_back(new_loan, users)
    instance_id = handover_instance(loan).id
    login(client, "am")
    html = client.get(f"/cases/{loan.loan_no}").get_data(as_text=True)
    assert 'href="#diagram"' in html  # the case page's diagram tab
    assert 'id="process-diagrams"' in html
    assert f'data-url="/studio/instances/{instance_id}/diagram.json"' in html
    assert "bpmn-navigated-viewer.production.min.js" in html
    assert "/static/diagrams.js" in html
    # The viewer is not loaded with the page, only when a diagram is opened.
    assert '<script src="/studio/vendor/bpmn-js' not in html
    # An account manager has no heat map link; a department head has.
    assert "/heatmap" not in html
    create_user("head", PASSWORD, ["dept_head"])
    client.post("/logout")
    login(client, "head")
    html = client.get(f"/cases/{loan.loan_no}").get_data(as_text=True)
    assert "/studio/processes/handover/versions/1/heatmap" in html


# ---------------------------------------------------------------- heat map

@pytest.fixture
def spread(new_loan, users):
    """Four handovers at three different steps."""
    at_file = new_loan("H-1")
    sent_back(new_loan, users, "H-2")  # back at handover_file
    at_check = new_loan("H-3", "am2")
    complete_task(only_task(at_check).id, users["am2"], data=HANDOVER_DATA)
    claim_task(only_task(at_check).id, users["plo2"])
    at_register = new_loan("H-4")
    complete_task(only_task(at_register).id, users["am"], data=HANDOVER_DATA)
    complete_task(only_task(at_register).id, users["plo"], data={"check_result": "complete"})
    return at_file, at_check, at_register


def test_waiting_counts_per_step(spread):
    assert waiting_counts(definition("handover")) == {"handover_file": 2, "check_file": 1,
                                                      "register_loan": 1}


def test_timer_waits_are_counted_from_the_instance_states(serviced, users):
    loan = serviced()
    reminders = definition("reminders")
    # Three installments, three reminder instances waiting for their reminder day.
    assert waiting_counts(reminders) == {"wait_reminder": 3}
    rows = waiting_at(reminders, "wait_reminder")
    assert [r["case_id"] for r in rows] == [loan.id] * 3
    assert all(r["holder_id"] is None and r["task_id"] is None for r in rows)
    # Each row carries its own timer (the reminder days of test_servicing).
    assert sorted(r["timer_at"] for r in rows) == [
        dt.datetime(2026, 4, 30, 1, 0, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 6, 18, 1, 0, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 9, 29, 1, 0, tzinfo=dt.timezone.utc)]


def test_heatmap_page_and_waiting_list(client, spread, users):
    _, at_check, _ = spread
    create_user("owner", PASSWORD, ["process_owner"])
    login(client, "owner")
    response = client.get("/studio/processes/handover/versions/1/heatmap")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="heatmap"' in html
    data = html.split('<script type="application/json" id="heatmap-data">')[1]
    data = json.loads(data.split("</script>")[0])
    assert data["counts"] == {"handover_file": 2, "check_file": 1, "register_loan": 1}
    assert 'id="handover_definitions"' in data["xml"]
    assert 'data-waiting-url="/studio/processes/handover/versions/1/waiting/__ID__"' in html
    assert '<a href="/studio/processes/handover/versions/1/waiting/handover_file">2</a>' in html

    waiting = client.get("/studio/processes/handover/versions/1/waiting/handover_file")
    assert waiting.status_code == 200
    text = waiting.get_data(as_text=True)
    assert "H-1" in text and "H-2" in text and "H-3" not in text
    # A process owner may not open cases: loan numbers without links or borrowers.
    assert "/cases/H-1" not in text
    assert "杭州明远贸易有限公司" not in text

    client.post("/logout")
    login(client, "compliance")
    text = client.get("/studio/processes/handover/versions/1/waiting/check_file").get_data(
        as_text=True)
    assert "H-3" in text and "H-1" not in text
    assert '/cases/H-3#process-diagrams' in text
    assert "杭州明远贸易有限公司" in text
    assert users["plo2"].label in text  # the holder

    assert client.get("/studio/processes/handover/versions/9/heatmap").status_code == 404
    assert client.get(
        "/studio/processes/handover/versions/1/waiting/nowhere").status_code == 404


def test_heatmap_is_for_owners_and_managers(client, spread):
    login(client, "am")
    assert client.get("/studio/processes/handover/versions/1/heatmap").status_code == 403
    assert client.get(
        "/studio/processes/handover/versions/1/waiting/handover_file").status_code == 403


# ---------------------------------------------------------------- in a browser

def test_case_diagram_shows_the_path_in_a_browser(capsys, new_loan, users, open_page, tmp_path):
    require_chromium(capsys)
    loan = sent_back(new_loan, users)
    complete_task(only_task(loan).id, users["am"], data=HANDOVER_DATA)
    instance_id, loan_no = handover_instance(loan).id, loan.loan_no
    page = open_page()

    def in_the_browser():
        browser_login(page, "am")
        page.wait_for_url(HOME)
        page.goto(f"/cases/{loan_no}")
        page.click("#diagram-tab")
        details = page.locator(f"#process-instance-{instance_id}")
        assert details.locator("svg").count() == 0  # nothing drawn before it is opened
        details.locator("summary").click()
        page.wait_for_selector(f"#process-instance-{instance_id}[data-state=ready]")
        svg = details.locator("svg")
        assert svg.locator('.dh-completed[data-element-id="handover_file"]').count() == 1
        assert svg.locator('.dh-current[data-element-id="check_file"]').count() == 1
        assert svg.locator('.dh-flow-taken[data-element-id="flow_incomplete"]').count() == 1
        # Passed twice: handover_file, the flow into the check, and the check (now again).
        assert details.locator(".dh-loop-badge").all_inner_texts() == ["×2"] * 3
        assert details.locator('.djs-overlays[data-container-id="flow_to_check"] '
                               '.dh-loop-badge').count() == 1
        if os.environ.get("DIAGRAM_SCREENSHOT"):
            details.screenshot(path=os.environ["DIAGRAM_SCREENSHOT"])

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)


def test_heatmap_in_a_browser(capsys, spread, open_page, tmp_path):
    require_chromium(capsys)
    create_user("owner", PASSWORD, ["process_owner"])
    page = open_page()

    def in_the_browser():
        browser_login(page, "owner")
        page.wait_for_url(HOME)
        page.goto("/studio/processes/handover/versions/1/heatmap")
        page.wait_for_selector("#heatmap[data-state=ready]")
        svg = page.locator("#heatmap svg")
        assert svg.locator('.dh-heat-5[data-element-id="handover_file"]').count() == 1
        assert svg.locator('.dh-heat-3[data-element-id="check_file"]').count() == 1
        link = page.locator('.djs-overlays[data-container-id="handover_file"] a.dh-count')
        assert link.inner_text() == "2"
        if os.environ.get("DIAGRAM_SCREENSHOT"):
            page.locator("#heatmap").screenshot(path=os.environ["DIAGRAM_SCREENSHOT"])
        link.click()
        page.wait_for_url("**/waiting/handover_file")
        assert page.locator("#waiting-cases tbody tr").count() == 2

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)


PARALLEL_SUB = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  id="probe_definitions" targetNamespace="http://daihou.example/test">
  <bpmn:process id="progress_probe" isExecutable="true">
    <bpmn:laneSet id="probe_lanes">
      <bpmn:lane id="lane_back_office" name="back_office">
        <bpmn:flowNodeRef>inner_task</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:parallelGateway id="split">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:parallelGateway>
    <bpmn:subProcess id="sub" name="Inner">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
      <bpmn:startEvent id="inner_start"><bpmn:outgoing>g1</bpmn:outgoing></bpmn:startEvent>
      <bpmn:userTask id="inner_task" name="Inner task">
        <bpmn:incoming>g1</bpmn:incoming><bpmn:outgoing>g2</bpmn:outgoing>
      </bpmn:userTask>
      <bpmn:endEvent id="inner_end"><bpmn:incoming>g2</bpmn:incoming></bpmn:endEvent>
      <bpmn:sequenceFlow id="g1" sourceRef="inner_start" targetRef="inner_task" />
      <bpmn:sequenceFlow id="g2" sourceRef="inner_task" targetRef="inner_end" />
    </bpmn:subProcess>
    <bpmn:intermediateCatchEvent id="wait" name="Later">
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>"P30D"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:parallelGateway id="join">
      <bpmn:incoming>f4</bpmn:incoming><bpmn:incoming>f5</bpmn:incoming>
      <bpmn:outgoing>f6</bpmn:outgoing>
    </bpmn:parallelGateway>
    <bpmn:endEvent id="end"><bpmn:incoming>f6</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="split" />
    <bpmn:sequenceFlow id="f2" sourceRef="split" targetRef="sub" />
    <bpmn:sequenceFlow id="f3" sourceRef="split" targetRef="wait" />
    <bpmn:sequenceFlow id="f4" sourceRef="sub" targetRef="join" />
    <bpmn:sequenceFlow id="f5" sourceRef="wait" targetRef="join" />
    <bpmn:sequenceFlow id="f6" sourceRef="join" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""


def test_subprocess_and_parallel_branches(users):
    (probe,) = deploy_xml(PARALLEL_SUB, "progress_probe.bpmn", None)
    instance = start_process("progress_probe")
    progress = instance_progress(instance)
    assert set(progress["current"]) == {"sub", "inner_task", "wait"}
    assert progress["completed"] == {"start": 1, "split": 1, "inner_start": 1}
    assert progress["flows"] == {"f1": 1, "f2": 1, "f3": 1, "g1": 1}
    assert waiting_counts(probe) == {"inner_task": 1, "wait": 1}
    (row,) = waiting_at(probe, "wait")
    assert row["instance_id"] == instance.id and row["task_id"] is None

    # Both branches done: the join merges them and both flows into it count.
    bo = create_user("bo", PASSWORD, ["back_office"])
    (task,) = HumanTask.query.filter_by(instance_id=instance.id, state="ready").all()
    complete_task(task.id, bo)
    clock.set_now(T0 + dt.timedelta(days=31))
    assert fire_due_timers() == 1
    instance = db.session.get(ProcessInstance, instance.id)
    assert instance.status == "completed"
    progress = instance_progress(instance)
    assert progress["current"] == []
    assert progress["flows"] == {f: 1 for f in ("f1", "f2", "f3", "f4", "f5", "f6", "g1", "g2")}
    assert progress["completed"]["join"] == 1 and progress["completed"]["end"] == 1
    assert waiting_counts(probe) == {}
