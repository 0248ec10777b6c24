"""Call activities naming a process of another file: resolved from the same upload (in any
order) or from the deployed processes, pinned into the caller's version with the forms of the
called process's tasks; missing processes and call cycles are problems on the call activity."""
import json

import pytest

from accounts.operations import create_user
from extensions import db
from tests.conftest import PASSWORD
from workflows.definitions import deploy_paths, deploy_xml
from workflows.engine import load_state
from workflows.errors import DeployError, NotAllowed
from workflows.inbox import inbox_page
from workflows.models import FormDefinition, HumanTask, HumanTaskExclusion, ProcessDefinition
from workflows.service import start_process
from workflows.tasks import check_can_take, complete_task
from workflows.validation import validate, validate_files
from tests.test_collection import overdue, staff  # noqa: F401  (fixtures)
from tests.test_servicing import serviced  # noqa: F401  (fixture)

HEAD = b'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="defs_%s" targetNamespace="http://daihou.example/test">'''

# The called process: a review and a four-eyes confirmation by post-loan officers, each with
# a form, then a result computed from the caller's data.
CALLEE = HEAD % b"callee" + b'''
  <bpmn:process id="callee_review" name="Review (called)" isExecutable="true">
    <bpmn:laneSet id="callee_lanes">
      <bpmn:lane id="callee_lane_plo" name="post_loan_officer">
        <bpmn:flowNodeRef>review</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>confirm</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="callee_start"><bpmn:outgoing>c1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="Review the loan">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formKey" value="callee_review_form" />
        <spiffworkflow:property name="dueInWorkingDays" value="2" />
        <spiffworkflow:property name="priority" value="high" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>c1</bpmn:incoming><bpmn:outgoing>c2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:userTask id="confirm" name="Confirm the review">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formKey" value="callee_confirm_form" />
        <spiffworkflow:property name="notSameUserAs" value="review" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>c2</bpmn:incoming><bpmn:outgoing>c3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:scriptTask id="conclude" name="Conclude">
      <bpmn:incoming>c3</bpmn:incoming><bpmn:outgoing>c4</bpmn:outgoing>
      <bpmn:script>callee_result = loan_no + ": " + review_note</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:endEvent id="callee_end"><bpmn:incoming>c4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="c1" sourceRef="callee_start" targetRef="review" />
    <bpmn:sequenceFlow id="c2" sourceRef="review" targetRef="confirm" />
    <bpmn:sequenceFlow id="c3" sourceRef="confirm" targetRef="conclude" />
    <bpmn:sequenceFlow id="c4" sourceRef="conclude" targetRef="callee_end" />
  </bpmn:process>
</bpmn:definitions>'''


def caller(called=b"callee_review", process_id=b"caller_main"):
    return HEAD % process_id + b'''
  <bpmn:process id="%s" name="Caller" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:callActivity id="call_review" name="Have it reviewed" calledElement="%s">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:callActivity>
    <bpmn:scriptTask id="after" name="Use the result">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>caller_saw = callee_result</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call_review" />
    <bpmn:sequenceFlow id="f2" sourceRef="call_review" targetRef="after" />
    <bpmn:sequenceFlow id="f3" sourceRef="after" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>''' % (process_id, called)


CALLER = caller()
FORMS = {
    "callee_review_form": {
        "key": "callee_review_form",
        "title": {"en": "Review the loan", "zh_CN": "审查贷款"},
        "show_data": [{"name": "loan_no", "label": {"en": "Loan", "zh_CN": "借款编号"}}],
        "fields": [{"name": "review_note", "type": "text", "required": True,
                    "label": {"en": "Finding", "zh_CN": "审查意见"}}]},
    "callee_confirm_form": {
        "key": "callee_confirm_form",
        "title": {"en": "Confirm the review", "zh_CN": "复核审查意见"},
        "fields": [{"name": "confirmed", "type": "boolean",
                    "label": {"en": "Confirmed", "zh_CN": "已复核"}}]},
}


@pytest.fixture
def files(tmp_path):
    """callee_review.bpmn, caller_main.bpmn and a forms directory in a temporary folder."""
    forms = tmp_path / "forms"
    forms.mkdir()
    for key, spec in FORMS.items():
        (forms / f"{key}.json").write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    (tmp_path / "callee_review.bpmn").write_bytes(CALLEE)
    (tmp_path / "caller_main.bpmn").write_bytes(CALLER)
    return tmp_path


def paths(files, *names):
    return [files / f"{name}.bpmn" for name in names]


def latest(key):
    return (ProcessDefinition.query.filter_by(process_key=key)
            .order_by(ProcessDefinition.version.desc()).first())


def codes(problems):
    return {(p.code, p.element_id) for p in problems}


@pytest.mark.parametrize("order", [("callee_review", "caller_main"),
                                   ("caller_main", "callee_review")])
def test_rule_call_activity_resolves_a_process_of_another_file_in_one_upload(app, files, order):
    deployed = deploy_paths(paths(files, *order), files / "forms")
    assert sorted(d.process_key for d in deployed) == ["callee_review", "caller_main"]
    definition = latest("caller_main")
    specs = json.loads(definition.spec_json)
    assert "callee_review" in specs["subprocess_specs"]  # a snapshot of the called process
    # The called process's forms are mapped for the caller's version too.
    assert set(definition.forms) == {"callee_review_form", "callee_confirm_form"}
    assert definition.forms == latest("callee_review").forms


def test_rule_call_activity_version_does_not_depend_on_file_order(app, files):
    first = deploy_paths(paths(files, "callee_review", "caller_main"), files / "forms")
    again = deploy_paths(paths(files, "caller_main", "callee_review"), files / "forms")
    assert [d.id for d in sorted(first, key=lambda d: d.process_key)] == \
        [d.id for d in sorted(again, key=lambda d: d.process_key)]
    assert ProcessDefinition.query.count() == 2


def test_rule_call_activity_resolves_the_deployed_version(app, files):
    """The callee deployed earlier; the caller deployed alone finds it in the database, with
    the same version (same content) as when both are deployed together."""
    (callee,) = deploy_paths(paths(files, "callee_review"), files / "forms")
    (alone,) = deploy_paths(paths(files, "caller_main"), files / "forms")
    assert "callee_review" in json.loads(alone.spec_json)["subprocess_specs"]
    assert alone.forms == callee.forms
    both = deploy_paths(paths(files, "caller_main", "callee_review"), files / "forms")
    assert {d.id for d in both} == {callee.id, alone.id}
    # deploy_xml (the studio's way) resolves from the database too.
    assert deploy_xml(CALLER, "caller_main.bpmn", None, forms={})[0].id == alone.id


def test_rule_called_process_forms_are_pinned_by_its_deployed_version(app, files):
    """Deployed alone, the caller takes the forms the callee's version was deployed with, not
    a newer file of the forms directory."""
    (callee,) = deploy_paths(paths(files, "callee_review"), files / "forms")
    changed = dict(FORMS["callee_review_form"], title={"en": "Changed", "zh_CN": "已修改"})
    (files / "forms" / "callee_review_form.json").write_text(json.dumps(changed), "utf-8")
    (alone,) = deploy_paths(paths(files, "caller_main"), files / "forms")
    assert alone.forms == callee.forms
    # Deployed together, both take the new form: new versions of both.
    both = {d.process_key: d for d in deploy_paths(paths(files, "caller_main", "callee_review"),
                                                   files / "forms")}
    assert both["caller_main"].version == 2 and both["callee_review"].version == 2
    assert both["caller_main"].forms == both["callee_review"].forms != callee.forms


def test_rule_called_process_change_makes_a_new_caller_version(app, files):
    deploy_paths(paths(files, "callee_review", "caller_main"), files / "forms")
    assert latest("caller_main").version == 1
    (files / "callee_review.bpmn").write_bytes(CALLEE.replace(b"Review the loan",
                                                              b"Review the whole loan"))
    deploy_paths(paths(files, "callee_review", "caller_main"), files / "forms")
    assert latest("callee_review").version == 2
    new = latest("caller_main")
    assert new.version == 2 and new.bpmn_xml == CALLER.decode()
    spec = json.loads(new.spec_json)["subprocess_specs"]["callee_review"]
    assert spec["task_specs"]["review"]["bpmn_name"] == "Review the whole loan"
    # Same content, same version: deploying again changes nothing.
    deploy_paths(paths(files, "caller_main", "callee_review"), files / "forms")
    assert ProcessDefinition.query.count() == 4


def test_rule_called_process_missing_is_a_problem_on_the_call_activity(app, files):
    problems = validate_files([(CALLER, "caller_main.bpmn")], FORMS)
    assert codes(problems) == {("called_process_missing", "call_review")}
    (problem,) = problems
    assert "'callee_review'" in problem.message and problem.process_id == "caller_main"
    assert problem.line and "calledElement" in problem.hint
    with pytest.raises(DeployError) as err:
        deploy_paths(paths(files, "caller_main"), files / "forms")
    assert [p.code for p in err.value.problems] == ["called_process_missing"]
    assert ProcessDefinition.query.count() == 0
    # Found through a process that calls a missing one: reported on the caller's activity.
    middle = caller(b"nowhere", b"middle")
    problems = validate_files([(caller(b"middle"), "caller_main.bpmn"),
                               (middle, "middle.bpmn")], FORMS)
    assert ("called_process_missing", "call_review") in codes(problems)
    assert any("nowhere" in p.message and p.filename == "caller_main.bpmn" for p in problems)
    empty = CALLER.replace(b' calledElement="callee_review"', b"")
    assert ("called_process_missing", "call_review") in codes(validate(empty, FORMS))


def test_rule_call_cycles_are_refused(app, files):
    itself = caller(b"caller_main")
    problems = validate(itself, FORMS, "caller_main.bpmn")
    assert codes(problems) == {("call_cycle", "call_review")}
    assert "caller_main → caller_main" in problems[0].message
    a, b = caller(b"proc_b", b"proc_a"), caller(b"proc_a", b"proc_b")
    problems = validate_files([(a, "proc_a.bpmn"), (b, "proc_b.bpmn")], FORMS)
    assert sorted((p.code, p.filename) for p in problems) == [
        ("call_cycle", "proc_a.bpmn"), ("call_cycle", "proc_b.bpmn")]
    assert any("proc_a → proc_b → proc_a" in p.message for p in problems)
    (files / "proc_a.bpmn").write_bytes(a)
    (files / "proc_b.bpmn").write_bytes(b)
    with pytest.raises(DeployError):
        deploy_paths(paths(files, "proc_a", "proc_b"), files / "forms")
    # A cycle through a deployed process: B deployed calling the callee, then changed.
    deploy_paths(paths(files, "callee_review"), files / "forms")
    (files / "proc_b.bpmn").write_bytes(caller(b"callee_review", b"proc_b"))
    deploy_paths(paths(files, "proc_b"), files / "forms")
    (files / "proc_b.bpmn").write_bytes(b)
    problems = validate_files([(b, "proc_b.bpmn"), (a, "proc_a.bpmn")], FORMS)
    assert {p.code for p in problems} == {"call_cycle"}


def test_rule_call_activity_runs_the_called_process_tasks_in_the_callers_instance(app, files):
    deploy_paths(paths(files, "caller_main", "callee_review"), files / "forms")
    plo = create_user("plo", PASSWORD, ["post_loan_officer"])
    plo2 = create_user("plo2", PASSWORD, ["post_loan_officer"])
    instance = start_process("caller_main", data={"loan_no": "L-042"})
    db.session.commit()
    (row,) = HumanTask.query.filter_by(instance_id=instance.id, state="ready").all()
    # The called process's task: its lane, form, due date and priority, in the inbox.
    assert (row.bpmn_id, row.lane, row.form_key, row.priority) == (
        "review", "post_loan_officer", "callee_review_form", 1)
    assert row.form_definition.spec["title"]["en"] == "Review the loan"
    assert row.due_at is not None and row.context == {"loan_no": "L-042"}
    rows, total = inbox_page(plo, "available")
    assert total == 1 and rows[0][0].id == row.id
    complete_task(row.id, plo, data={"review_note": "fine"})
    (confirm,) = HumanTask.query.filter_by(instance_id=instance.id, state="ready").all()
    assert confirm.form_definition.form_key == "callee_confirm_form"
    # Four eyes inside the called process: the reviewer may not confirm.
    assert HumanTaskExclusion.query.filter_by(task_id=confirm.id).one().user_id == plo.id
    with pytest.raises(NotAllowed):
        check_can_take(confirm, plo)
    complete_task(confirm.id, plo2, data={"confirmed": True})
    db.session.refresh(instance)
    assert instance.status == "completed"
    # Data went in (loan_no) and came back (callee_result) to the caller's script.
    data = load_state(instance.definition, instance.state_json).data
    assert data["caller_saw"] == "L-042: fine" and data["callee_result"] == "L-042: fine"


def test_rule_running_caller_keeps_the_called_version_it_started_with(app, files):
    """The caller's version pins the called process: a later callee change does not reach an
    instance already running."""
    deploy_paths(paths(files, "caller_main", "callee_review"), files / "forms")
    instance = start_process("caller_main", data={"loan_no": "L-7"})
    db.session.commit()
    (files / "callee_review.bpmn").write_bytes(CALLEE.replace(b'value="callee_review_form"',
                                                              b'value="callee_confirm_form"'))
    deploy_paths(paths(files, "caller_main", "callee_review"), files / "forms")
    assert latest("caller_main").version == 2
    (row,) = HumanTask.query.filter_by(instance_id=instance.id, state="ready").all()
    assert row.form_key == "callee_review_form"
    plo = create_user("plo", PASSWORD, ["post_loan_officer"])
    complete_task(row.id, plo, data={"review_note": "ok"})
    (confirm,) = HumanTask.query.filter_by(instance_id=instance.id, state="ready").all()
    assert confirm.bpmn_id == "confirm"
    assert FormDefinition.query.count() == 2


def test_repository_diagrams_with_call_activities_deploy(app):
    """Every file of bpmn/ deploys in one upload, in either order, to the same versions."""
    from tests.conftest import ROOT
    files = sorted((ROOT / "bpmn").glob("*.bpmn"))
    first = deploy_paths(files, ROOT / "bpmn" / "forms")
    again = deploy_paths(list(reversed(files)), ROOT / "bpmn" / "forms")
    assert {d.id for d in first} == {d.id for d in again}


def test_rule_studio_validates_a_caller_draft_against_deployed_processes(app, files):
    from studio.editor import validate as studio_validate
    (problem,) = studio_validate(CALLER.decode(), {}, "caller_main.bpmn")
    assert (problem["code"], problem["element_id"]) == ("called_process_missing", "call_review")
    assert problem["title"]
    deploy_paths(paths(files, "callee_review"), files / "forms")
    assert studio_validate(CALLER.decode(), {}, "caller_main.bpmn") == []


TIMED = HEAD % b"timed" + b'''
  <bpmn:process id="callee_timed" isExecutable="true">
    <bpmn:laneSet id="timed_lanes">
      <bpmn:lane id="timed_lane" name="post_loan_officer">
        <bpmn:flowNodeRef>wait_reply</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="t_start"><bpmn:outgoing>t1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="wait_reply" name="Record the reply">
      <bpmn:incoming>t1</bpmn:incoming><bpmn:outgoing>t2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="reply_deadline" attachedToRef="wait_reply">
      <bpmn:outgoing>t3</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>"P3D"</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:scriptTask id="no_reply" name="No reply">
      <bpmn:incoming>t3</bpmn:incoming><bpmn:outgoing>t4</bpmn:outgoing>
      <bpmn:script>callee_result = "no_response"</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:endEvent id="t_end_reply"><bpmn:incoming>t2</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="t_end_none"><bpmn:incoming>t4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="t1" sourceRef="t_start" targetRef="wait_reply" />
    <bpmn:sequenceFlow id="t2" sourceRef="wait_reply" targetRef="t_end_reply" />
    <bpmn:sequenceFlow id="t3" sourceRef="reply_deadline" targetRef="no_reply" />
    <bpmn:sequenceFlow id="t4" sourceRef="no_reply" targetRef="t_end_none" />
  </bpmn:process>
</bpmn:definitions>'''


def test_rule_timers_inside_a_called_process_fire(app, files):
    """guarantor_demand and repayment_plan wait on boundary timers: inside a call activity
    they set the caller's next_timer_at and fire through the sweep."""
    import datetime as dt

    from tests.conftest import T0
    from workflows import clock
    from workflows.models import ProcessInstance
    from workflows.timers import fire_due_timers
    (files / "callee_timed.bpmn").write_bytes(TIMED)
    (files / "caller_main.bpmn").write_bytes(caller(b"callee_timed"))
    deploy_paths(paths(files, "caller_main", "callee_timed"), files / "forms")
    instance = start_process("caller_main", data={"loan_no": "L-9"})
    db.session.commit()
    assert instance.next_timer_at is not None
    clock.set_now(T0 + dt.timedelta(days=4))
    assert fire_due_timers() == 1
    instance = db.session.get(ProcessInstance, instance.id)
    assert instance.status == "completed"
    assert load_state(instance.definition, instance.state_json).data["caller_saw"] == \
        "no_response"
    assert HumanTask.query.filter_by(instance_id=instance.id).one().state == "cancelled"


def test_rule_collection_style_call_runs_guarantor_demand_and_gets_its_result(app, overdue,
                                                                               staff):
    """A caller written as collection should call guarantor_demand: a bare call activity; the
    callee sees the caller's data (loan_no…) and the caller gets guarantor_demand_result."""
    from collection.guarantors import GuarantorDemand
    from tests.test_guarantor_demand import GUARANTORS
    loan = overdue(guarantors=GUARANTORS)
    probe = caller(b"guarantor_demand", b"collection_probe").replace(
        b"caller_saw = callee_result", b"caller_saw = guarantor_demand_result")
    (definition,) = deploy_xml(probe, "collection_probe.bpmn", None, forms={})
    assert {"guarantor_demand_notice", "guarantor_demand_response"} <= set(definition.forms)
    instance = start_process("collection_probe", case_id=loan.id, data={
        "loan_no": loan.loan_no, "dpd": loan.dpd, "stage": loan.stage,
        "overdue_amount": "0.00"})
    db.session.commit()
    notice = HumanTask.query.filter_by(instance_id=instance.id, state="ready").one()
    assert (notice.bpmn_id, notice.lane, notice.process_key, notice.form_key) == (
        "send_demand_notice", "collector", "collection_probe", "guarantor_demand_notice")
    assert "李强" in notice.context["guarantor_list"]
    complete_task(notice.id, staff["collector"], data={
        "demand_guarantor_no": 1, "demand_sent_on": "2026-05-08",
        "demand_channel": "registered_mail", "demand_receipt": "signed",
        "demand_receipt_note": "EMS 1234567890"})
    assert GuarantorDemand.query.one().instance_id == instance.id
    response = HumanTask.query.filter_by(instance_id=instance.id, state="ready").one()
    complete_task(response.id, staff["collector"], data={"demand_response": "refused"})
    db.session.refresh(instance)
    data = load_state(instance.definition, instance.state_json).data
    assert instance.status == "completed"
    assert data["caller_saw"] == data["guarantor_demand_result"] == "refused"
