"""Replay before deploy (issue 15 item 5): the recorded history of cases run on a draft, and
where the new version diverges."""
import datetime as dt
import json
import os

import pytest
from sqlalchemy import text

from accounts.operations import create_user
from audit.chaining import chain_head, chain_pending
from audit.checks import check_chain
from audit.models import AuditEvent
from audit.operations import record
from cases.models import Loan
from cases.operations import register_loan
from cases.staging import run_daily
from extensions import db
from ledger.repayments import post_repayment
from tests.conftest import PASSWORD, ROOT, login
from tests.test_browser import (  # noqa: F401  (fixture)
    CHROMIUM, CHROMIUM_ARGS, browser_login, live_server, require_chromium,
    screenshot_on_failure)
from tests.test_servicing import hand_over, three_installment_payload
from workflows import clock, migration, replay
from workflows.clock import BEIJING
from workflows.definitions import deploy_xml
from workflows.models import HumanTask, ProcessDraft
from workflows.service import start_process
from workflows.services import service
from workflows.tasks import complete_task
from workflows.timers import fire_due_timers
from workflows.validation import load_forms

UTC = dt.timezone.utc
COLLECTION = (ROOT / "bpmn" / "collection.bpmn").read_text(encoding="utf-8")
FORMS = load_forms(ROOT / "bpmn" / "forms")
CALL = {"number_called": "13800138000", "answered_by": "borrower",
        "collection_result": "reached", "next_step": "continue"}
THRESHOLD = "<bpmn:conditionExpression>dpd &gt; 90</bpmn:conditionExpression>"


def at(day, hour, minute=0):
    clock.set_now(dt.datetime.combine(day, dt.time(hour, minute), BEIJING).astimezone(UTC))


def with_threshold(days):
    assert COLLECTION.count(THRESHOLD) == 1
    return COLLECTION.replace(THRESHOLD, THRESHOLD.replace("90", str(days)))


def ready(loan_id, bpmn_id):
    return HumanTask.query.filter_by(case_id=loan_id, process_key="collection",
                                     bpmn_id=bpmn_id, state="ready").one()


@pytest.fixture
def collection_cases(deployed, users):
    """Three collection cases whose litigation check saw different DPDs: A only 2 (at the
    start; a partial repayment on 21 June), B 2 then 45 (20 June), C 2 then 96 (10 August:
    litigation proposed)."""
    users["leader"] = create_user("leader", PASSWORD, ["dept_head"])
    loans = {}
    for name in "ABC":
        loan = register_loan(three_installment_payload(loan_no=f"S-{name}"), users["admin"])
        loans[name] = hand_over(loan, users).id
    at(dt.date(2026, 5, 8), 10)
    assert run_daily(dt.date(2026, 5, 8))["overdue"] == 3
    collector = users["collector"]
    complete_task(ready(loans["B"], "phone_collection").id, collector, data=CALL)
    at(dt.date(2026, 6, 20), 10)
    run_daily(dt.date(2026, 6, 20))
    fire_due_timers()  # B's retry: DPD 45, phone collection again; everyone's monthly notice
    at(dt.date(2026, 6, 21), 10)
    complete_task(ready(loans["C"], "phone_collection").id, collector, data=CALL)
    # A partial repayment on A: the message `repayment`, noted by the event subprocess.
    post_repayment(db.session.get(Loan, loans["A"]), {
        "amount": "1000.00", "paid_at": "2026-06-21", "external_ref": "R-A1"}, users["admin"])
    db.session.commit()
    assert AuditEvent.query.filter_by(action="message.delivered").count() == 1
    at(dt.date(2026, 8, 10), 10)
    run_daily(dt.date(2026, 8, 10))
    fire_due_timers()  # C's retry: DPD 96, litigation proposed
    assert ready(loans["C"], "approve_litigation")
    assert ready(loans["B"], "phone_collection") and ready(loans["A"], "phone_collection")
    return {name: db.session.get(Loan, loan_id).loan_no for name, loan_id in loans.items()}


def run(xml, forms=FORMS, **select):
    draft = replay.load_draft(xml, forms, "collection.bpmn")
    instances, more = replay.select_instances(draft.process_keys, **select)
    return replay.replay(draft, instances, more)


def outcomes(report):
    return {row["loan_no"]: row["outcome"] for row in report["cases"]}


def test_the_same_diagram_replays_every_case_identically(collection_cases):
    report = run(COLLECTION)
    assert outcomes(report) == {"S-A": "identical", "S-B": "identical", "S-C": "identical"}, \
        [r["reason"] for r in report["cases"]]
    assert (report["total"], report["identical"], report["diverges"], report["fails"]) == (
        3, 3, 0, 0)
    assert all(row["live_services"] == [] for row in report["cases"])


def test_a_lower_litigation_threshold_diverges_exactly_the_cases_above_it(collection_cases):
    report = run(with_threshold(40))
    assert outcomes(report) == {"S-A": "identical", "S-B": "diverges", "S-C": "identical"}, \
        [r["reason"] for r in report["cases"]]
    reason = next(r["reason"] for r in report["cases"] if r["loan_no"] == "S-B")
    assert reason["code"] == "gateway" and reason["gateway"] == "litigation_check"
    assert reason["expected"] == ["phone_collection"]
    assert reason["actual"] == ["litigation_paused"]
    assert "approve_litigation" in reason["waiting"]
    draft = replay.load_draft(with_threshold(40), FORMS, "collection.bpmn")
    names = replay.Names(draft, locale="en")
    assert replay.describe(reason, names) == (
        "At Over 90 days past due? (litigation_check) the new version goes to Litigation "
        "rejected less than 30 days ago? (litigation_paused) instead of Phone collection "
        "(phone_collection); it then waits at Approve litigation (approve_litigation), "
        "Send the written collection notice (written_notice).")


def test_a_higher_litigation_threshold_diverges_the_case_proposed_for_litigation(
        collection_cases):
    report = run(with_threshold(100))
    assert outcomes(report) == {"S-A": "identical", "S-B": "identical", "S-C": "diverges"}
    reason = next(r["reason"] for r in report["cases"] if r["loan_no"] == "S-C")
    assert (reason["code"], reason["gateway"], reason["expected"], reason["actual"]) == (
        "gateway", "litigation_check", ["litigation_paused"], ["phone_collection"])


# ---------------------------------------------------------------- a small process

PROBE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="replay_probe_definitions" targetNamespace="http://daihou.example/test">
  <bpmn:process id="replay_probe" name="Replay probe" isExecutable="true">
    <bpmn:laneSet id="probe_lanes">
      <bpmn:lane id="lane_plo" name="post_loan_officer">
        <bpmn:flowNodeRef>review</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>sign</bpmn:flowNodeRef>
        <!--precheck lane-->
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start" name="Start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="prepare" name="Prepare">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>prepared = True</bpmn:script>
    </bpmn:scriptTask>
    <!--precheck-->
    <bpmn:userTask id="review" name="Review the file">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formKey" value="replay_review" />
        <spiffworkflow:property name="name_zh_CN" value="审查档案" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:scriptTask id="score" name="Score the decision">
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
      <bpmn:script>score = 1 if decision == "approve" else 0</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:exclusiveGateway id="decided" name="Approved?" default="f_no">
      <bpmn:incoming>f4</bpmn:incoming>
      <bpmn:outgoing>f_yes</bpmn:outgoing><bpmn:outgoing>f_no</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:userTask id="sign" name="Sign the decision">
      <bpmn:incoming>f_yes</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end" name="Signed"><bpmn:incoming>f5</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_no" name="Rejected"><bpmn:incoming>f_no</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="prepare" />
    <bpmn:sequenceFlow id="f2" sourceRef="prepare" targetRef="review" />
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="score" />
    <bpmn:sequenceFlow id="f4" sourceRef="score" targetRef="decided" />
    <bpmn:sequenceFlow id="f_yes" sourceRef="decided" targetRef="sign">
      <bpmn:conditionExpression>decision == "approve"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_no" sourceRef="decided" targetRef="end_no" />
    <bpmn:sequenceFlow id="f5" sourceRef="sign" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
REVIEW_FORM = {"key": "replay_review", "title": {"en": "Review", "zh_CN": "审查"},
               "fields": [{"name": "decision", "type": "select", "required": True,
                           "label": {"en": "Decision", "zh_CN": "决定"},
                           "choices": [{"value": "approve", "label": {"en": "Approve"}},
                                       {"value": "reject", "label": {"en": "Reject"}}]}]}
PROBE_FORMS = {"replay_review": REVIEW_FORM}


@service("replay_probe_stamp")
def _stamp(data):
    """A service that writes: a replay must leave no trace of it."""
    record("replay_probe.stamped", data={"loan_no": data.get("loan_no")})
    db.session.execute(text("UPDATE loans SET dpd = 999"))
    db.session.flush()
    return {"stamped": True}


@pytest.fixture
def probe_cases(new_loan, users):
    """P1 approved at review (waits at sign), P2 waits at review, P3 approved and signed."""
    deploy_xml(PROBE, "replay_probe.bpmn", None, forms=PROBE_FORMS)
    db.session.commit()
    loans = {}
    for name in ("P1", "P2", "P3"):
        loan = new_loan(loan_no=name)
        start_process("replay_probe", case_id=loan.id, data={"loan_no": name})
        loans[name] = loan.id
    db.session.commit()
    plo = users["plo"]
    for name in ("P1", "P3"):
        task = HumanTask.query.filter_by(case_id=loans[name], bpmn_id="review").one()
        complete_task(task.id, plo, data={"decision": "approve"})
    task = HumanTask.query.filter_by(case_id=loans["P3"], bpmn_id="sign").one()
    complete_task(task.id, users["plo2"], data={})
    return loans


def probe(xml=PROBE, forms=PROBE_FORMS, completed=5):
    draft = replay.load_draft(xml, forms, "replay_probe.bpmn")
    instances, more = replay.select_instances(draft.process_keys, completed=completed)
    return replay.replay(draft, instances, more)


def reasons(report):
    return {row["loan_no"]: (row["reason"] or {}).get("code") for row in report["cases"]}


def test_probe_replays_identically(probe_cases):
    report = probe()
    assert outcomes(report) == {"P1": "identical", "P2": "identical", "P3": "identical"}
    # Without completed cases only the running ones.
    assert outcomes(probe(completed=0)) == {"P1": "identical", "P2": "identical"}


def test_a_removed_step_diverges(probe_cases):
    xml = PROBE.replace('targetRef="sign">', 'targetRef="end">').replace(
        '<bpmn:flowNodeRef>sign</bpmn:flowNodeRef>', "")
    xml = xml[:xml.index('<bpmn:userTask id="sign"')] + xml[xml.index("</bpmn:userTask>", xml.index(
        '<bpmn:userTask id="sign"')) + len("</bpmn:userTask>"):]
    xml = xml.replace('<bpmn:sequenceFlow id="f5" sourceRef="sign" targetRef="end" />', "")
    xml = xml.replace('<bpmn:endEvent id="end" name="Signed"><bpmn:incoming>f5',
                      '<bpmn:endEvent id="end" name="Signed"><bpmn:incoming>f_yes')
    report = probe(xml)
    assert outcomes(report) == {"P1": "diverges", "P2": "identical", "P3": "diverges"}
    # P1 waits at the removed step, P3 did it.
    assert reasons(report) == {"P1": "step_removed", "P2": None, "P3": "step_removed"}
    assert {r["reason"]["step"] for r in report["cases"] if r["reason"]} == {"sign"}


def test_a_new_required_field_missing_from_the_recorded_data_diverges(probe_cases):
    form = json.loads(json.dumps(REVIEW_FORM))
    form["fields"].append({"name": "reason", "type": "text", "required": True,
                           "label": {"en": "Reason", "zh_CN": "理由"}})
    report = probe(forms={"replay_review": form})
    assert reasons(report) == {"P1": "field_required", "P2": None, "P3": "field_required"}
    reason = report["cases"][0]["reason"]
    assert (reason["step"], reason["field"]) == ("review", "reason")
    draft = replay.load_draft(PROBE, {"replay_review": form}, "replay_probe.bpmn")
    assert replay.describe(reason, replay.Names(draft, locale="en")) == (
        "Step Review the file (review): field Reason is now required and the recorded data "
        "lacks it.")
    # A choice no longer offered is another divergence of the form.
    form = json.loads(json.dumps(REVIEW_FORM))
    form["fields"][0]["choices"] = [{"value": "reject", "label": {"en": "Reject"}}]
    assert reasons(probe(forms={"replay_review": form}))["P1"] == "field_invalid"


def test_a_script_that_now_raises_fails(probe_cases):
    xml = PROBE.replace('score = 1 if decision == "approve" else 0',
                        'score = 1 / 0 if decision == "approve" else 0')
    report = probe(xml)
    assert outcomes(report) == {"P1": "fails", "P2": "identical", "P3": "fails"}
    reason = report["cases"][0]["reason"]
    assert reason["code"] == "script_failed" and reason["step"] == "score"
    assert "division by zero" in reason["error"]
    assert (report["identical"], report["diverges"], report["fails"]) == (1, 0, 2)


def test_a_new_user_task_diverges(probe_cases):
    xml = PROBE.replace("<!--precheck lane-->", "<bpmn:flowNodeRef>precheck</bpmn:flowNodeRef>")
    xml = xml.replace("<!--precheck-->", """<bpmn:userTask id="precheck" name="Pre-check">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f2b</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f2b" sourceRef="precheck" targetRef="review" />""")
    xml = xml.replace('<bpmn:sequenceFlow id="f2" sourceRef="prepare" targetRef="review" />',
                      '<bpmn:sequenceFlow id="f2" sourceRef="prepare" targetRef="precheck" />')
    xml = xml.replace("<bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>",
                      "<bpmn:incoming>f2b</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>")
    report = probe(xml)
    assert reasons(report) == {"P1": "new_task", "P2": "new_task", "P3": "new_task"}
    assert all(r["reason"]["step"] == "precheck" for r in report["cases"])


def _snapshot():
    tables = [t.name for t in db.metadata.sorted_tables]
    counts = {name: db.session.execute(text(f"SELECT count(*) FROM {name}")).scalar()
              for name in tables}
    dpd = sorted(db.session.execute(text("SELECT id, dpd FROM loans")).all())
    return counts, dpd


def test_replay_leaves_the_database_as_it_was(probe_cases):
    xml = PROBE.replace("<bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>",
                        "<bpmn:incoming>f3s</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>")
    xml = xml.replace('<bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="score" />', """
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="stamp" />
    <bpmn:serviceTask id="stamp" name="Stamp">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="replay_probe_stamp" resultVariable="stamped">
          <spiffworkflow:parameters/></spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f3s</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:sequenceFlow id="f3s" sourceRef="stamp" targetRef="score" />""")
    chain_pending()
    before = _snapshot(), chain_head()
    pending = list(db.session.info.get("audit_pending", []))
    report = probe(xml)
    # The new service task ran for real (no recorded effect) and wrote; all rolled back.
    assert outcomes(report) == {"P1": "identical", "P2": "identical", "P3": "identical"}
    assert {r["loan_no"]: r["live_services"] for r in report["cases"]} == {
        "P1": ["stamp"], "P2": [], "P3": ["stamp"]}
    db.session.commit()
    assert (_snapshot(), chain_head()) == before
    assert db.session.info.get("audit_pending", []) == pending
    assert AuditEvent.query.filter_by(action="replay_probe.stamped").count() == 0
    assert check_chain().ok


# ---------------------------------------------------------------- command line

def test_command_line_prints_a_line_per_case_and_exits_1_on_a_divergence(
        app, collection_cases, tmp_path):
    changed = tmp_path / "collection.bpmn"
    changed.write_text(with_threshold(40), encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["bpmn", "replay", str(changed)])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("S-A\tcollection v1 (running)\tidentical")
    assert lines[1].startswith("S-B\tcollection v1 (running)\tdiverges\tAt Over 90 days")
    assert lines[-1] == "3 case(s): 2 identical, 1 diverge, 0 fail"
    # Chosen cases, by loan number or case id.
    loan_c = Loan.query.filter_by(loan_no="S-C").one()
    result = runner.invoke(args=["bpmn", "replay", str(changed), "--cases", f"S-A,{loan_c.id}"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "2 case(s): 2 identical, 0 diverge, 0 fail"
    result = runner.invoke(args=["bpmn", "replay", str(changed), "--cases", "NOPE"])
    assert result.exit_code == 2 and "no such case: NOPE" in result.output
    broken = tmp_path / "broken" / "collection.bpmn"
    broken.parent.mkdir()
    broken.write_text(COLLECTION.replace("dpd &gt; 90", "dpd &gt;"), encoding="utf-8")
    result = runner.invoke(args=["bpmn", "replay", str(broken)])
    assert result.exit_code == 2 and "f_dpd_over" in result.output


# ---------------------------------------------------------------- the studio

def _draft(xml):
    draft = ProcessDraft(process_key="collection", bpmn_xml=COLLECTION, forms={})
    db.session.add(draft)
    db.session.commit()
    return draft.id


def test_studio_replays_the_modelers_diagram_for_process_owners_only(app, collection_cases):
    create_user("owner", PASSWORD, ["process_owner"])
    draft_id = _draft(COLLECTION)
    web = app.test_client()
    login(web, "owner")
    url = f"/studio/drafts/{draft_id}/replay"
    answer = web.post(url, json={"xml": with_threshold(40), "completed": 2},
                      headers={"Accept-Language": "en"}).get_json()
    assert answer["ok"] and (answer["total"], answer["identical"], answer["diverges"],
                             answer["fails"]) == (3, 2, 1, 0)
    assert answer["summary"] == ("Cases replayed: 3. Identical: 2; diverging: 1; "
                                 "failing: 0.")
    rows = {c["loan_no"]: c for c in answer["cases"]}
    assert rows["S-B"]["outcome_label"] == "Diverges" and rows["S-B"]["case_url"] == \
        "/cases/S-B"
    assert rows["S-B"]["reason"].startswith("At Over 90 days past due? (litigation_check) "
                                            "the new version goes to")
    assert rows["S-A"]["reason"] == "" and rows["S-A"]["status"] == "Running"
    # Without a diagram in the body, the draft's own (unchanged) one.
    assert web.post(url, json={}).get_json()["identical"] == 3
    # In Chinese, with the Chinese step names (the sentences are in the catalogs).
    answer = web.post(url, json={"xml": with_threshold(40)},
                      headers={"Accept-Language": "zh-CN"}).get_json()
    reason = {c["loan_no"]: c["reason"] for c in answer["cases"]}["S-B"]
    assert "逾期超过 90 天？ (litigation_check)" in reason and "审批诉讼" in reason
    # Bad input: a draft that would not deploy, a bad number of completed cases.
    bad = web.post(url, json={"xml": COLLECTION.replace("dpd &gt; 90", "dpd &gt;")})
    assert bad.status_code == 422
    assert [p["element_id"] for p in bad.get_json()["problems"]] == ["f_dpd_over"]
    assert web.post(url, json={"completed": 501}).status_code == 400
    assert web.post(url, json={"completed": "many"}).status_code == 400
    assert web.post(url, data="not json", content_type="application/json").status_code in (
        200, 400)
    assert web.post("/studio/drafts/999/replay", json={}).status_code == 404
    # Nobody but process owners.
    collector = app.test_client()
    login(collector, "collector")
    assert collector.post(url, json={}).status_code == 403
    assert AuditEvent.query.filter_by(action="permission.denied").count() >= 1


def test_migration_preview_shows_each_cases_replay_on_the_target(app, collection_cases):
    (v2,) = deploy_xml(with_threshold(40), "collection.bpmn", None, forms=FORMS,
                       comment="litigation from 40 days")
    db.session.commit()
    rows = {Loan.query.get(r["case_id"]).loan_no: r for r in migration.preview(v2)}
    assert {k: r["replay"]["outcome"] for k, r in rows.items()} == {
        "S-A": "identical", "S-B": "diverges", "S-C": "identical"}
    assert rows["S-B"]["replay"]["reason"]["gateway"] == "litigation_check"
    create_user("owner", PASSWORD, ["process_owner"])
    web = app.test_client()
    login(web, "owner")
    page = web.get(f"/studio/processes/collection/versions/{v2.version}/migrate",
                   headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "Replay on version 2" in page.text and "Diverges" in page.text
    assert "the new version goes to" in page.text


# ---------------------------------------------------------------- in a browser

# Select the litigation gateway's "yes" path on the canvas (clicking a thin flow line in a
# large diagram is brittle); its condition is then edited in the side panel as a person would.
SELECT_THRESHOLD = """() => {
  const modeler = window.studioModeler;
  modeler.get("selection").select(modeler.get("elementRegistry").get("f_dpd_over"));
}"""


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900},
                                      {"width": 390, "height": 844}], ids=["desktop", "phone"])
def test_owner_sees_which_running_cases_take_another_path_before_deploying(
        capsys, app, collection_cases, live_server, tmp_path, viewport):
    """Done when of issue 15: the owner lowers the litigation threshold in the studio's
    modeler and, before deploying, sees which running collection cases would now go to
    litigation (in Chinese, on a desktop and on a phone)."""
    require_chromium(capsys)
    create_user("owner", PASSWORD, ["process_owner"])
    shots = os.environ.get("REPLAY_SHOTS")  # e.g. /tmp/h4: keep the screenshots to look at
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server, locale="zh-CN",
                                      viewport=viewport)
        context.set_default_timeout(15000)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        def in_the_browser():
            browser_login(page, "owner")
            page.goto("/studio/processes/collection/edit")
            page.wait_for_selector("#studio.is-ready")
            page.evaluate(SELECT_THRESHOLD)
            condition = page.locator("#prop-condition")
            assert condition.input_value() == "dpd > 90"
            condition.fill("dpd > 40")
            condition.press("Enter")
            page.fill("#studio-replay-completed", "0")
            page.click("#studio-replay-run")
            page.wait_for_selector("#studio-replay-result:not([hidden])")
            rows = page.locator("#studio-replay-cases tbody tr:not(.replay-why-row)")
            assert rows.count() == 3
            diverging = page.locator("#studio-replay-cases tr.replay-diverges")
            assert diverging.count() == 1 and "S-B" in diverging.inner_text()
            assert "审批诉讼" in page.locator(".replay-why-diverges").inner_text()
            assert page.locator("#studio-replay-cases tr.replay-identical").count() == 2
            assert errors == []
            if shots:
                page.locator("#studio-replay").scroll_into_view_if_needed()
                name = "desktop" if viewport["width"] > 800 else "phone"
                page.screenshot(path=f"{shots}-{name}.png", full_page=False)
                page.locator("#studio-replay").screenshot(path=f"{shots}-{name}-section.png")

        try:
            screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)
        finally:
            browser.close()
