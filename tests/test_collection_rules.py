"""Issue 11 rules on the collection process: it never silently ends while the loan is overdue
(rule 4), the risk manager's preservation starts the legal preservation step (rule 10), and
the thresholds and repayment handling are readable on the diagram (rule 14)."""
import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

from accounts.operations import create_user
from audit.models import AuditEvent
from cases.models import ContactLogEntry, RiskSignal
from cases.staging import run_daily
from collection.preservation import order_preservation
from tests.conftest import PASSWORD
from tests.test_browser import (  # noqa: F401  (fixtures)
    browser_login, live_server, open_page, require_chromium, screenshot_on_failure)
from tests.test_collection import (CALL, at, collection, db_loan, do, overdue,  # noqa: F401
                                   overdue_now, pay, ready, staff)
from tests.test_servicing import serviced  # noqa: F401 (fixture)
from workflows.definitions import deploy_paths
from workflows.models import HumanTask, ProcessInstance
from workflows.service import running_instances
from workflows.tasks import complete_task
from workflows.timers import fire_due_timers

ROOT = Path(__file__).resolve().parent.parent
DIAGRAM = ROOT / "bpmn" / "collection.bpmn"
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}


def conditions_out_of(gateway_id):
    root = ET.parse(DIAGRAM).getroot()
    return {f.get("targetRef"): (f.findtext("bpmn:conditionExpression", namespaces=NS) or "")
            for f in root.iter(f"{{{NS['bpmn']}}}sequenceFlow")
            if f.get("sourceRef") == gateway_id}


def deploy_edited(tmp_path, *replacements):
    """Deploy a copy of collection.bpmn with some text replaced, as a process owner would in
    the studio: a new version of the same process."""
    text = DIAGRAM.read_text()
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    copy = tmp_path / "collection.bpmn"
    copy.write_text(text)
    return deploy_paths([copy], ROOT / "bpmn" / "forms")


def to_litigation(loan, staff):
    """DPD 96 on 10 August: litigation proposed, approved, filed, assets preserved."""
    do(loan, "phone_collection", staff["collector"], **CALL)
    at(dt.date(2026, 8, 10), 10)
    run_daily(dt.date(2026, 8, 10))
    fire_due_timers()
    do(loan, "approve_litigation", staff["leader"], litigation_decision="approve",
       litigation_comment="sue")
    do(loan, "legal_filing", staff["lawyer"], court="杭州市西湖区人民法院",
       court_case_no="(2026)浙0106民初7号", filed_on="2026-08-10", filed_documents=["complaint"])
    do(loan, "legal_preservation", staff["lawyer"], preservation_ruling_no="(2026)浙0106财保8号",
       preservation_on="2026-08-10")


FOLLOW_UP = {"recovery_status": "enforcement_ongoing", "recovery_note": "法院执行中",
             "recovery_action": "continue"}


def test_rule_collection_never_silently_ends_while_the_loan_is_overdue(app, overdue, staff):
    """Issue 11 rule 4 [002 F]: after a legal outcome that leaves a balance, the monthly notice
    and a monthly recovery follow-up go on, a write-off can be proposed from it, and only
    clearing the overdue amount (or a write-off) ends collection."""
    loan = overdue()
    to_litigation(loan, staff)
    do(loan, "legal_outcome", staff["lawyer"], legal_outcome_kind="settlement",
       recovered_amount="1000.00", concluded_on="2026-08-10")
    assert collection(loan).status == "running"
    follow_up = ready(loan, "recovery_followup")
    assert follow_up.lane == "legal" and follow_up.form_key == "collection_recovery_followup"
    # The monthly notice branch was not killed: this month's notice is open, and once sent
    # next month's comes.
    assert ready(loan) == ["recovery_followup", "written_notice"]
    do(loan, "written_notice", staff["collector"], notice_sent_on="2026-08-10",
       notice_channel="in_person", notice_address="杭州市西湖区", receipt_status="refused")
    assert collection(loan).next_timer_at is not None
    at(dt.date(2026, 9, 10), 10, 1)
    run_daily(dt.date(2026, 9, 10))
    fire_due_timers()
    assert "written_notice" in ready(loan)
    # The follow-up recurs a month after it was done.
    at(dt.date(2026, 9, 10), 11)
    do(loan, "recovery_followup", staff["lawyer"], **FOLLOW_UP)
    assert "recovery_followup" not in ready(loan)
    at(dt.date(2026, 10, 10), 11, 1)
    fire_due_timers()
    ready(loan, "recovery_followup")
    # A write-off can be proposed from it; collection goes on while it is decided.
    do(loan, "recovery_followup", staff["lawyer"], **dict(
        FOLLOW_UP, recovery_action="propose_write_off", write_off_reason="无可执行财产"))
    assert running_instances(loan.id, "write_off")
    assert collection(loan).status == "running"
    assert AuditEvent.query.filter_by(action="collection.recovery_followed_up").count() == 2
    # Clearing the overdue amount ends collection: every task and timer goes.
    pay(loan, str(overdue_now(loan, accrue=True)), "R-CLEAR", staff["admin"])
    instance = collection(loan)
    assert instance.status == "completed" and instance.next_timer_at is None
    assert ready(loan) == []


def test_rule_collection_ends_when_the_loan_is_written_off(app, overdue, staff):
    """Issue 11 rule 4: the lawyer proposes a write-off from the follow-up; once it is approved,
    the next monthly check ends collection."""
    from tests.test_write_off import approve, review
    staff["gm"] = create_user("gm", PASSWORD, ["general_manager"])
    loan = overdue()
    to_litigation(loan, staff)
    do(loan, "legal_outcome", staff["lawyer"], legal_outcome_kind="settlement",
       recovered_amount="1000.00", concluded_on="2026-08-10")
    do(loan, "recovery_followup", staff["lawyer"], **dict(
        FOLLOW_UP, recovery_action="propose_write_off", write_off_reason="无可执行财产"))
    review(loan, staff["leader"])
    approve(loan, staff["gm"])
    assert collection(loan).status == "running"  # told at the next monthly check
    at(dt.date(2026, 9, 10), 11)
    fire_due_timers()
    assert collection(loan).status == "completed"
    assert ready(loan) == []  # the open notice task ends with it


def decide_preservation(loan, staff):
    """A risk signal, the leader's opinion and the risk manager's decision "preservation"."""
    from monitoring.risk import raise_signal
    signal = raise_signal(loan, staff["am"], 8, "抵押物被他人查封")
    opinion = HumanTask.query.filter_by(instance_id=signal.instance_id, bpmn_id="opinion",
                                        state="ready").one()
    complete_task(opinion.id, staff["leader"], data={"assessment": "需保全",
                                                     "recommended": "preservation"})
    decide = HumanTask.query.filter_by(instance_id=signal.instance_id, bpmn_id="decide",
                                       state="ready").one()
    complete_task(decide.id, staff["risk"], data={"decision": "preservation",
                                                  "decision_note": "立即申请保全"})
    return RiskSignal.query.get(signal.id)


def test_rule_preservation_decision_starts_the_legal_preservation_step(app, overdue, serviced,
                                                                        staff):
    """Issue 11 rule 10: the risk manager's "preservation" moves a running collection to asset
    preservation, or starts collection there."""
    staff["risk"] = create_user("risk", PASSWORD, ["risk_manager"])
    # Collection running, at phone collection: it moves to the legal preservation step.
    loan = overdue()
    phone = ready(loan, "phone_collection")
    assert decide_preservation(loan, staff).decision == "preservation"
    assert HumanTask.query.get(phone.id).state == "cancelled"
    task = ready(loan, "legal_preservation")
    assert task.lane == "legal"
    assert "written_notice" not in ready(loan) and collection(loan).status == "running"
    event = AuditEvent.query.filter_by(action="collection.preservation_ordered").one()
    assert event.data["effect"] == "moved" and event.data["ordered_by"] == "risk"
    # Ordered again while preservation is under way: nothing to move, recorded.
    assert order_preservation(db_loan(loan), staff["risk"], "again") == "under_way"
    assert ready(loan, "legal_preservation").id == task.id

    # No collection running (a performing loan): collection starts at preservation.
    other = serviced(loan_no="L-PRESERVE")
    assert running_instances(other.id, "collection") == []
    decide_preservation(other, staff)
    instance = ProcessInstance.query.filter_by(case_id=other.id).join(
        ProcessInstance.definition).filter_by(process_key="collection").one()
    assert instance.status == "running"
    assert [t.bpmn_id for t in HumanTask.query.filter_by(
        instance_id=instance.id, state="ready")] == ["legal_preservation"]


def test_rule_preservation_while_waiting_for_the_next_call_window(app, overdue, staff):
    """Issue 11 rule 10: also between two calls (the event gateway's message branch)."""
    loan = overdue()
    do(loan, "phone_collection", staff["collector"], **CALL)
    assert ready(loan) == []
    assert order_preservation(db_loan(loan), staff["leader"], "test") == "moved"
    assert ready(loan) == ["legal_preservation"]


def test_rule_litigation_threshold_and_stages_are_on_the_diagram(app, overdue, staff, tmp_path):
    """Issue 11 rule 14: the 90 days and the DPD stages are gateway conditions on `dpd` a
    process owner can read and change; changing them changes what happens."""
    threshold = conditions_out_of("litigation_check")
    assert "dpd > 90" in threshold["litigation_paused"]
    pause = conditions_out_of("litigation_paused")["phone_collection"]
    assert "litigation_rejected_on" in pause and "< 30" in pause
    stages = conditions_out_of("stage_by_dpd")
    assert stages["stage_dpd_1_3"] == "0 < dpd <= 3" and stages["stage_m3"] == "60 < dpd <= 90"
    root = ET.parse(DIAGRAM).getroot()
    scripts = {t.get("id"): t.findtext("bpmn:script", namespaces=NS)
               for t in root.iter(f"{{{NS['bpmn']}}}scriptTask")}
    assert scripts["stage_m3_plus"] == 'stage = "M3+"'
    # The service behind the gateway provides facts, not decisions.
    assert "litigation_due" not in DIAGRAM.read_text()

    # A process owner lowers the threshold to 60 days and moves the golden period to DPD 1.
    deploy_edited(tmp_path, ("dpd &gt; 90", "dpd &gt; 60"), (">0 &lt; dpd &lt;= 3<", ">0 &lt; dpd &lt;= 1<"),
                  (">3 &lt; dpd &lt;= 7<", ">1 &lt; dpd &lt;= 7<"))
    loan = overdue()
    assert collection(loan).definition.version > 1
    # DPD 2 is now the key period.
    assert ready(loan, "phone_collection").context["stage"] == "dpd_4_7"
    do(loan, "phone_collection", staff["collector"], **CALL)
    at(dt.date(2026, 7, 15), 10)
    run_daily(dt.date(2026, 7, 15))
    assert db_loan(loan).dpd == 70
    fire_due_timers()
    task = ready(loan, "approve_litigation")
    assert task.context["dpd"] == 70


def test_a_70_day_loan_is_not_sued_under_the_shipped_threshold(app, overdue, staff):
    loan = overdue()
    do(loan, "phone_collection", staff["collector"], **CALL)
    at(dt.date(2026, 7, 15), 10)
    run_daily(dt.date(2026, 7, 15))
    fire_due_timers()
    assert "approve_litigation" not in ready(loan)
    assert ready(loan, "phone_collection").context["stage"] == "M3"


def test_rule_repayment_interruptions_need_no_goto(app, overdue, staff):
    """Issue 11 rule 14: repayments are handled by a non-interrupting event subprocess; the
    open task stays open, no data-driven jump back; clearing ends collection."""
    text = DIAGRAM.read_text()
    assert "resume_at" not in text
    root = ET.parse(DIAGRAM).getroot()
    handler = root.find(".//bpmn:subProcess[@id='repayment_handling']", NS)
    assert handler.get("triggeredByEvent") == "true"
    assert handler.find("bpmn:startEvent", NS).get("isInterrupting") == "false"
    for boundary in root.iter(f"{{{NS['bpmn']}}}boundaryEvent"):
        definition = boundary.find("bpmn:messageEventDefinition", NS)
        assert definition.get("messageRef") != "msg_repayment"
    # System work sits in its own lane, outside the human lanes.
    lanes = {lane.get("name"): {r.text for r in lane.findall("bpmn:flowNodeRef", NS)}
             for lane in root.iter(f"{{{NS['bpmn']}}}lane")}
    for tag in ("serviceTask", "intermediateCatchEvent", "scriptTask"):
        for element in root.find("bpmn:process", NS).findall(f"bpmn:{tag}", NS):
            assert element.get("id") in lanes["system"], element.get("id")

    loan = overdue()
    do(loan, "phone_collection", staff["collector"], **dict(
        CALL, answered_by="nobody", collection_result="no_answer", next_step="propose_visit",
        visit_reason="no answer"))
    do(loan, "approve_visit", staff["leader"], visit_decision="approve", visit_comment="go")
    visit = ready(loan, "visit_report")
    # Two partial repayments during the visit report: both noted, the same task stays open.
    pay(loan, "1000.00", "R1", staff["admin"])
    pay(loan, "2000.00", "R2", staff["admin"])
    assert ready(loan) == ["visit_report"] and ready(loan, "visit_report").id == visit.id
    notes = ContactLogEntry.query.filter_by(loan_id=loan.id, kind="note").all()
    assert len(notes) == 2 and all("collection goes on" in n.note for n in notes)
    # The report is done as usual afterwards.
    do(loan, "visit_report", staff["collector"], visit_address="杭州市西湖区", visit_met="借款人",
       visit_findings="will pay", visit_situation="cooperative")
    assert ready(loan) == ["phone_collection"]
    # Clearing the overdue amount ends collection, phone task and notice timer included.
    pay(loan, str(overdue_now(loan, accrue=True)), "R3", staff["admin"])
    instance = collection(loan)
    assert instance.status == "completed" and instance.next_timer_at is None
    assert ready(loan) == []


def test_browser_the_studio_shows_collection_and_its_round_trip_validates(
        capsys, deployed, open_page, tmp_path):
    """Issue 11 rule 14: a process owner opens collection.bpmn in the studio (bpmn-js): the
    gateways with the thresholds and the repayment event subprocess are on the canvas, and the
    diagram the editor saves back validates."""
    require_chromium(capsys)
    create_user("owner", PASSWORD, ["process_owner"])
    page = open_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def in_the_browser():
        browser_login(page, "owner")
        page.goto("/studio/processes/collection/edit")
        page.wait_for_url("**/studio/drafts/*/edit")
        page.wait_for_selector("#studio.is-ready")
        for element in ("litigation_check", "litigation_paused", "stage_by_dpd", "stage_m3_plus",
                        "repayment_handling", "recovery_followup", "lane_system"):
            assert page.locator(f'.djs-element[data-element-id="{element}"]').count() == 1
        page.click("#studio-validate")
        page.wait_for_selector("#studio-status.good")
        page.screenshot(path=str(tmp_path / "collection.png"), full_page=True)
        assert errors == []

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)
