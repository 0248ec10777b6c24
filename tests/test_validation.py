"""Validation on save and deploy: every problem at once, each with its element id and a code."""
import json

import pytest

from tests.conftest import ROOT
from workflows.definitions import deploy_paths, deploy_xml
from workflows.errors import DeployError
from workflows.models import ProcessDefinition
from workflows.validation import CallLibrary, Problem, load_forms, validate, validate_files

FORMS_DIR = ROOT / "bpmn" / "forms"
HANDOVER = (ROOT / "bpmn" / "handover.bpmn").read_bytes()
PROBE = (ROOT / "tests" / "bpmn" / "reminder_probe.bpmn").read_bytes()


@pytest.fixture
def forms():
    return load_forms(FORMS_DIR)


def handover(*pairs):
    xml = HANDOVER
    for old, new in zip(pairs[::2], pairs[1::2]):
        assert old in xml, old
        xml = xml.replace(old, new)
    return xml


def probe_timer(definition):
    """The probe process with its timer replaced, e.g. b'<bpmn:timeDuration>P3D</…>'."""
    old = b"<bpmn:timeDate>remind_at</bpmn:timeDate>"
    assert old in PROBE
    return PROBE.replace(old, definition)


def codes(problems):
    return {(p.code, p.element_id) for p in problems}


# Each broken diagram: (xml, expected (code, element id), a substring of the message).
ORPHAN = b'<bpmn:scriptTask id="orphan"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>'
BROKEN = {
    "not_xml": (b"not xml at all", ("not_xml", None), "not well-formed XML: line 1"),
    "truncated": (HANDOVER[:400], ("not_xml", None), "not well-formed XML"),
    "not_bpmn": (b"<root><process id='x'/></root>", ("not_bpmn", None), "not a BPMN 2.0"),
    "doctype": (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + HANDOVER[39:],
                ("not_bpmn", None), "DOCTYPE"),
    "schema": (handover(b"<bpmn:laneSet", b"<bpmn:bogus /><bpmn:laneSet"),
               ("bpmn_invalid", "handover"), "bpmn:bogus"),
    "not_executable": (handover(b'isExecutable="true"', b'isExecutable="false"'),
                       ("no_process", None), "no executable process"),
    "no_start_event": (handover(b"<bpmn:startEvent", b"<bpmn:intermediateThrowEvent",
                                b"</bpmn:startEvent>", b"</bpmn:intermediateThrowEvent>"),
                       ("no_start_event", "handover"), "no start event"),
    "unknown_lane": (handover(b'name="post_loan_officer"', b'name="janitor"'),
                     ("unknown_lane", "lane_post_loan_officer"), "lane 'janitor' is not a role"),
    "no_lane": (handover(b"<bpmn:flowNodeRef>check_file</bpmn:flowNodeRef>", b""),
                ("no_lane", "check_file"), "in no lane"),
    "unknown_form": (handover(b'value="handover_check"', b'value="no_such_form"'),
                     ("unknown_form", "check_file"), "form 'no_such_form' not found"),
    "condition_syntax": (handover(b'check_result == "complete"', b"check_result ==== 1"),
                         ("script_syntax", "flow_complete"), "condition does not compile"),
    "condition_dunder": (handover(b'check_result == "complete"', b"check_result.__class__"),
                         ("script_forbidden", "flow_complete"), "forbidden construct"),
    "condition_open": (handover(b'check_result == "complete"', b"open('/etc/passwd')"),
                       ("script_forbidden", "flow_complete"), "open() is not allowed"),
    "condition_eval": (handover(b'check_result == "complete"', b"eval('1')"),
                       ("script_forbidden", "flow_complete"), "eval() is not allowed"),
    "script_import": (PROBE.replace(b"remind_on = subtract", b"import os\nremind_on = subtract"),
                      ("script_forbidden", "compute"), "import is not allowed"),
    "script_syntax": (PROBE.replace(b"remind_on = subtract", b"remind_on = = subtract"),
                      ("script_syntax", "compute"), "script does not compile"),
    "script_exec": (PROBE.replace(b"remind_on = subtract", b"exec('x=1')\nremind_on = subtract"),
                    ("script_forbidden", "compute"), "exec() is not allowed"),
    "parameter_syntax": (handover(b'value="risk_group"', b'value="risk group"'),
                         ("script_syntax", "apply_monitoring_plan"), "parameter 'risk_group'"),
    "timer_unquoted": (probe_timer(b"<bpmn:timeDuration>P3D</bpmn:timeDuration>"),
                       ("timer_invalid", "wait"),
                       'timer expression does not evaluate: name '"'"'P3D'"'"' is not defined: '
                       'quote literal durations like "P3D"'),
    "timer_unquoted_cycle": (probe_timer(b"<bpmn:timeCycle>R3/PT1H</bpmn:timeCycle>"),
                             ("timer_invalid", "wait"), "quote literal durations"),
    "timer_unquoted_date": (probe_timer(b"<bpmn:timeDate>2026-01-05T09:00:00Z</bpmn:timeDate>"),
                            ("timer_invalid", "wait"), "is not quoted"),
    "timer_not_iso": (probe_timer(b'<bpmn:timeDuration>"3 days"</bpmn:timeDuration>'),
                      ("timer_invalid", "wait"), "not an ISO 8601 duration"),
    "timer_duration_as_date": (probe_timer(b'<bpmn:timeDate>"P3D"</bpmn:timeDate>'),
                               ("timer_invalid", "wait"), "not an ISO 8601 date-time"),
    "timer_syntax": (probe_timer(b"<bpmn:timeDate>remind_at +</bpmn:timeDate>"),
                     ("timer_invalid", "wait"), "does not evaluate"),
    "timer_empty": (probe_timer(b"<bpmn:timeDate></bpmn:timeDate>"),
                    ("timer_invalid", "wait"), "no date, duration or cycle"),
    "gateway_no_default": (handover(b' default="flow_incomplete"', b""),
                           ("gateway_no_default", "file_complete"), "flow_incomplete"),
    "gateway_bad_default": (handover(b'default="flow_incomplete"', b'default="flow_to_end"'),
                            ("gateway_no_default", "file_complete"), "does not leave"),
    "unreachable": (handover(b"<bpmn:endEvent", ORPHAN + b"<bpmn:endEvent"),
                    ("unreachable", "orphan"), "not reachable from a start event"),
    "process_id_twice": (handover(b"</bpmn:process>", b'</bpmn:process><bpmn:process '
                                  b'id="handover"><bpmn:startEvent id="s2" /></bpmn:process>'),
                         ("process_id_collision", "handover"), "appears twice"),
    "duplicate_id": (handover(b'<bpmn:userTask id="check_file"',
                              b'<bpmn:userTask id="handover_file"'),
                     ("duplicate_id", "handover_file"), "more than one element"),
    "broken_flow": (handover(b'sourceRef="register_loan" targetRef="apply_monitoring_plan"',
                             b'sourceRef="register_loan" targetRef="nowhere"'),
                    ("broken_flow", "flow_to_plan"), "'nowhere'"),
    "unknown_service": (handover(b'id="set_monitoring_plan"', b'id="launch_rockets"'),
                        ("unknown_service", "apply_monitoring_plan"),
                        "service operation 'launch_rockets' does not exist"),
    "due_not_number": (handover(b'name="dueInWorkingDays" value="3"',
                                b'name="dueInWorkingDays" value="three"'),
                       ("due_not_number", "register_loan"), "dueInWorkingDays"),
    "priority_invalid": (handover(b'<spiffworkflow:property name="dueInWorkingDays" value="3" />',
                                  b'<spiffworkflow:property name="dueInWorkingDays" value="3" />'
                                  b'<spiffworkflow:property name="priority" value="urgent" />'),
                         ("priority_invalid", "register_loan"), "urgent"),
    "unknown_reference": (handover(b'name="notSameUserAs" value="handover_file" />\n'
                                   b'          <spiffworkflow:property name="dueInWorkingDays" '
                                   b'value="3"', b'name="notSameUserAs" value="ghost" />\n'
                                   b'          <spiffworkflow:property name="dueInWorkingDays" '
                                   b'value="3"'),
                          ("unknown_reference", "register_loan"), "'ghost'"),
    "too_long": (handover(b'<bpmn:process id="handover"', b'<bpmn:process id="' + b"h" * 81 + b'"'),
                 ("too_long", "h" * 81), "longer than 80"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_bpmn_is_reported_with_code_and_element(app, forms, name):
    xml, expected, text = BROKEN[name]
    problems = validate(xml, forms, "handover.bpmn")
    assert expected in codes(problems), problems
    found = [p for p in problems if (p.code, p.element_id) == expected]
    assert any(text in p.message or text in p.hint for p in found), found
    for p in problems:
        assert isinstance(p, Problem) and p.message and p.hint
        assert p.filename == "handover.bpmn"
    with pytest.raises(DeployError) as err:
        deploy_xml(xml, "handover.bpmn", FORMS_DIR)
    assert expected in codes(err.value.problems)
    assert ProcessDefinition.query.count() == 0


def test_broken_form_spec_is_reported_on_the_task_using_it(app, forms):
    forms["handover_check"] = {"fields": [{"name": "1st", "type": "text"},
                                          {"name": "kind", "type": "select"}]}
    problems = validate(HANDOVER, forms)
    assert codes(problems) == {("form_invalid", "check_file")}
    assert "name must be an identifier" in problems[0].message
    assert "needs choices" in problems[0].message
    forms["handover_check"] = "not a dict"
    assert codes(validate(HANDOVER, forms)) == {("form_invalid", "check_file")}


def test_unreadable_form_file_is_reported(app, tmp_path):
    for path in FORMS_DIR.glob("handover_*.json"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "handover_register.json").write_text("{not json", encoding="utf-8")
    problems = validate(HANDOVER, load_forms(tmp_path))
    assert codes(problems) == {("form_invalid", "register_loan")}
    assert "not valid JSON" in problems[0].message


def test_all_problems_listed_at_once(app, forms):
    xml = handover(b'name="post_loan_officer"', b'name="janitor"',
                   b'value="handover_check"', b'value="no_such_form"',
                   b' default="flow_incomplete"', b"",
                   b'id="set_monitoring_plan"', b'id="launch_rockets"',
                   b"<bpmn:endEvent", ORPHAN + b"<bpmn:endEvent")
    assert {c for c, _ in codes(validate(xml, forms))} == {
        "unknown_lane", "unknown_form", "gateway_no_default", "unknown_service", "unreachable"}


@pytest.mark.parametrize("definition", [
    b'<bpmn:timeDuration>"P3D"</bpmn:timeDuration>',
    b'<bpmn:timeDuration>"PT2H30M"</bpmn:timeDuration>',
    b'<bpmn:timeCycle>"R3/PT1H"</bpmn:timeCycle>',
    b'<bpmn:timeDate>"2026-01-05T09:00:00+08:00"</bpmn:timeDate>',
    b'<bpmn:timeDate>at_local_time("2026-01-05", 9)</bpmn:timeDate>',
    # Task data cannot be known before run time: never reported.
    b"<bpmn:timeDate>remind_at</bpmn:timeDate>",
    b'<bpmn:timeDate>inspection["next_at"]</bpmn:timeDate>',
    b"<bpmn:timeDate>at_local_time(add_working_days(due_on, 3), 9)</bpmn:timeDate>",
    b'<bpmn:timeDuration>"P" + str(days) + "D"</bpmn:timeDuration>',
])
def test_good_timer_expressions_pass(app, forms, definition):
    assert validate(probe_timer(definition), forms) == []


def test_boundary_events_are_reachable_with_their_host(app, forms):
    xml = handover(b"<bpmn:endEvent", b'<bpmn:boundaryEvent id="late" attachedToRef="check_file">'
                   b'<bpmn:outgoing>flow_late</bpmn:outgoing><bpmn:timerEventDefinition>'
                   b'<bpmn:timeDuration>"P3D"</bpmn:timeDuration></bpmn:timerEventDefinition>'
                   b'</bpmn:boundaryEvent><bpmn:endEvent',
                   b"</bpmn:process>", b'<bpmn:sequenceFlow id="flow_late" sourceRef="late" '
                   b'targetRef="end" /></bpmn:process>')
    assert validate(xml, forms) == []
    # An unreachable host takes its boundary event with it.
    orphan = xml.replace(b'<bpmn:sequenceFlow id="flow_to_check" sourceRef="handover_file" '
                         b'targetRef="check_file" />', b"")
    assert {("unreachable", "check_file"), ("unreachable", "late")} <= codes(
        validate(orphan, forms))


@pytest.mark.parametrize("garbage", [b"", b"   ", b"\xff\xfe\x00<", "<a>text</a>", b"<a/>",
                                     b"<?xml version='1.0'?>", b"<bpmn:definitions/>",
                                     b"<definitions xmlns='http://www.omg.org/spec/BPMN/"
                                     b"20100524/MODEL'/>", None, 42])
def test_validate_never_raises(app, garbage):
    problems = validate(garbage, {})
    assert problems and all(isinstance(p, Problem) for p in problems)


def test_process_id_collisions(app, forms):
    other = handover(b"Check the loan file", b"Check the file")
    problems = validate_files([(HANDOVER, "handover.bpmn"), (other, "copy.bpmn")], forms, {})
    assert [(p.code, p.element_id, p.filename) for p in problems] == [
        ("process_id_collision", "handover", "copy.bpmn")]
    assert "also defined in handover.bpmn" in problems[0].message
    # A deployed process id belongs to the file it was deployed from.
    owned = validate(HANDOVER, forms, "copy.bpmn", deployed={"handover": "handover.bpmn"})
    assert codes(owned) == {("process_id_collision", "handover")}
    assert validate(HANDOVER, forms, "handover.bpmn", deployed={"handover": "handover.bpmn"}) == []
    # A browser draft without a file name is not checked against the deployed files.
    deploy_xml(HANDOVER, "handover.bpmn", FORMS_DIR)
    assert validate(HANDOVER, forms) == []
    assert codes(validate(HANDOVER, forms, "copy.bpmn")) == {("process_id_collision", "handover")}


def test_every_shipped_diagram_validates_clean(app, forms):
    paths = sorted((ROOT / "bpmn").glob("*.bpmn")) + [ROOT / "tests" / "bpmn" /
                                                      "reminder_probe.bpmn"]
    # Call activities name processes of other files (collection calls guarantor_demand).
    library = CallLibrary([(p.read_bytes(), p.name) for p in paths])
    for path in paths:
        assert validate(path.read_bytes(), forms, path.name, library=library) == [], path.name
    assert validate_files([(p.read_bytes(), p.name) for p in paths], forms) == []


def test_same_content_same_version(app):
    first = deploy_paths(sorted((ROOT / "bpmn").glob("*.bpmn")), FORMS_DIR)
    again = deploy_paths(sorted((ROOT / "bpmn").glob("*.bpmn")), FORMS_DIR)
    assert [(d.id, d.version) for d in first] == [(d.id, d.version) for d in again]
    assert {d.version for d in again} == {1}
    assert ProcessDefinition.query.count() == len(first)


def test_problem_as_text_and_dict():
    problem = Problem("check_file", "handover", "unknown_form", "form 'x' not found",
                      "Create the form", 40, "handover.bpmn")
    assert str(problem) == "check_file: form 'x' not found (Create the form)"
    assert problem.to_dict()["code"] == "unknown_form"
    assert json.dumps(problem.to_dict())


def test_cli_validate(app, tmp_path):
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["bpmn", "validate"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("ok")
    files = [str(p) for p in sorted((ROOT / "bpmn").glob("*.bpmn"))]
    assert runner.invoke(args=["bpmn", "validate", *files]).exit_code == 0
    bad = tmp_path / "handover.bpmn"
    bad.write_bytes(handover(b'name="post_loan_officer"', b'name="janitor"',
                             b' default="flow_incomplete"', b""))
    result = runner.invoke(args=["bpmn", "validate", str(bad)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "janitor" in line]
    assert lines and "handover.bpmn:" in lines[0] and "element lane_post_loan_officer" in lines[0]
    assert "process handover" in lines[0] and "hint:" in lines[0]
    assert "file_complete" in result.output and "2 problem(s)" in result.output
    broken_xml = tmp_path / "broken.bpmn"
    broken_xml.write_bytes(b"<bpmn:definitions")
    assert runner.invoke(args=["bpmn", "validate", str(broken_xml)]).exit_code == 1
    # Two files with the same process id in one run.
    copy = tmp_path / "copy.bpmn"
    copy.write_bytes(HANDOVER)
    clash = runner.invoke(args=["bpmn", "validate", str(ROOT / "bpmn" / "handover.bpmn"),
                                str(copy)])
    assert clash.exit_code == 1 and "also defined in handover.bpmn" in clash.output


def test_cli_deploy_lists_problems_and_deploys_nothing(app, tmp_path):
    bad = tmp_path / "handover.bpmn"
    bad.write_bytes(handover(b'id="set_monitoring_plan"', b'id="launch_rockets"'))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["bpmn", "deploy", str(ROOT / "bpmn" / "reminders.bpmn"),
                                 str(bad)])
    assert result.exit_code == 1
    assert "launch_rockets" in result.output and "element apply_monitoring_plan" in result.output
    assert ProcessDefinition.query.count() == 0


SUBPROCESS = b'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="defs" targetNamespace="http://daihou.example/test">
  <bpmn:process id="nested" isExecutable="true">
    <bpmn:laneSet id="lanes">
      <bpmn:lane id="lane_plo" name="post_loan_officer">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>sub</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:subProcess id="sub">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:startEvent id="sub_start"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>
      <bpmn:userTask id="inner" name="Inner step">
        <bpmn:extensionElements><spiffworkflow:properties>
          <spiffworkflow:property name="formKey" value="handover_check" />
        </spiffworkflow:properties></bpmn:extensionElements>
        <bpmn:incoming>s1</bpmn:incoming><bpmn:outgoing>s2</bpmn:outgoing>
      </bpmn:userTask>
      <bpmn:endEvent id="sub_end"><bpmn:incoming>s2</bpmn:incoming></bpmn:endEvent>
      <bpmn:sequenceFlow id="s1" sourceRef="sub_start" targetRef="inner" />
      <bpmn:sequenceFlow id="s2" sourceRef="inner" targetRef="sub_end" />
    </bpmn:subProcess>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="sub" />
    <bpmn:sequenceFlow id="f2" sourceRef="sub" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>'''


def test_embedded_subprocesses(app, forms):
    """Tasks in a subprocess take its lane; its own start event and reachability count."""
    assert validate(SUBPROCESS, forms) == []
    no_start = SUBPROCESS.replace(b'<bpmn:startEvent id="sub_start">',
                                  b'<bpmn:intermediateThrowEvent id="sub_start">').replace(
        b"</bpmn:outgoing></bpmn:startEvent>\n      <bpmn:userTask",
        b"</bpmn:outgoing></bpmn:intermediateThrowEvent>\n      <bpmn:userTask")
    assert ("no_start_event", "sub") in codes(validate(no_start, forms))
    orphan = SUBPROCESS.replace(b'<bpmn:sequenceFlow id="s1" sourceRef="sub_start" '
                                b'targetRef="inner" />', b"")
    assert ("unreachable", "inner") in codes(validate(orphan, forms))


MULTIPLE_OUT = (b'<bpmn:outgoing>flow_to_plan</bpmn:outgoing>',
                b'<bpmn:outgoing>flow_to_plan</bpmn:outgoing><bpmn:outgoing>flow_extra'
                b'</bpmn:outgoing>',
                b'<bpmn:sequenceFlow id="flow_to_end"',
                b'<bpmn:sequenceFlow id="flow_extra" sourceRef="register_loan" targetRef="end" />'
                b'<bpmn:sequenceFlow id="flow_to_end"')


def test_a_problem_on_an_element_does_not_hide_the_engines(app, forms):
    engine = {c for c, e in codes(validate(handover(*MULTIPLE_OUT), forms))
              if e == "register_loan"}
    assert engine, "the engine refuses a task with two outgoing flows"
    with pytest.raises(DeployError):
        deploy_xml(handover(*MULTIPLE_OUT), "handover.bpmn", FORMS_DIR)
    xml = handover(b'name="dueInWorkingDays" value="3"', b'name="dueInWorkingDays" value="x"',
                   *MULTIPLE_OUT)
    assert {("due_not_number", "register_loan")} | {(c, "register_loan") for c in engine} <= \
        codes(validate(xml, forms))
    # The same cause once: a gateway's bare flow is not repeated by the engine's refusal.
    bare = validate(handover(b' default="flow_incomplete"', b""), forms)
    assert codes(bare) == {("gateway_no_default", "file_complete")}


def test_engine_problems_without_an_element_are_kept(app, forms):
    from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
    from workflows.validation import _Checker
    checker = _Checker("handover.bpmn", forms, {})
    checker.add("check_file", "handover", "unknown_form", "form 'x' not found", "Create it")
    checker.engine_problem(ValidationException("the whole process is wrong"), "handover")
    checker.engine_problem(ValidationException("the whole process is wrong"), "handover")
    assert [(p.code, p.element_id) for p in checker.problems] == [
        ("unknown_form", "check_file"), ("bpmn_invalid", None)]
    assert "the whole process is wrong" in checker.problems[1].message


def test_missing_ids_and_spaces_around_ids_are_listed_with_the_rest(app, forms):
    xml = handover(b'<bpmn:userTask id="check_file"', b"<bpmn:userTask",
                   b'<bpmn:sequenceFlow id="flow_to_plan"', b"<bpmn:sequenceFlow",
                   b'<bpmn:endEvent id="end"', b'<bpmn:endEvent id=" end "',
                   b'value="handover_file"', b'value="no_such_form"')
    problems = validate(xml, forms)
    missing = [p for p in problems if p.code == "id_missing"]
    assert [(p.element_id, p.process_id, p.line) for p in missing] == [
        (None, "handover", 53), (None, "handover", 129)]
    assert "<bpmn:userTask> on line 53 has no id" in missing[0].message
    assert ("id_whitespace", " end ") in codes(problems)
    assert ("unknown_form", "handover_file") in codes(problems)
    spaced = validate(handover(b'sourceRef="handover_file" targetRef="check_file"',
                               b'sourceRef="handover_file" targetRef=" check_file"'), forms)
    assert any(p.code == "broken_flow" and "spaces around" in p.message for p in spaced)


def test_compensation_handlers_are_reachable(app, forms):
    xml = handover(b"<bpmn:endEvent", b'<bpmn:boundaryEvent id="undo" attachedToRef="register_loan">'
                   b'<bpmn:compensateEventDefinition /></bpmn:boundaryEvent>'
                   b'<bpmn:serviceTask id="unregister" name="Unregister" isForCompensation="true">'
                   b'<bpmn:extensionElements><spiffworkflow:serviceTaskOperator '
                   b'id="set_monitoring_plan" resultVariable="x"><spiffworkflow:parameters>'
                   b'<spiffworkflow:parameter id="risk_group" type="str" value="risk_group" />'
                   b'</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>'
                   b'</bpmn:extensionElements></bpmn:serviceTask><bpmn:endEvent',
                   b"</bpmn:process>", b'<bpmn:association id="undo_link" sourceRef="undo" '
                   b'targetRef="unregister" associationDirection="One" /></bpmn:process>')
    assert "unreachable" not in {c for c, _ in codes(validate(xml, forms))}
    # Without isForCompensation it is an orphan like any other.
    orphan = xml.replace(b' isForCompensation="true"', b"")
    assert ("unreachable", "unregister") in codes(validate(orphan, forms))


def test_problems_are_templates_with_values_in_any_language(app, forms):
    """Every problem carries its English template and values; the studio renders them through
    gettext (Problem.localized). Here a fake translation shows the mechanism: templates and
    word values (Text) are translated, ids and expressions are not."""
    from workflows.problems import render
    fake = {"form '%(form)s' not found": "找不到表单 '%(form)s'",
            "%(what)s does not compile: %(detail)s": "%(what)s 无法编译：%(detail)s",
            "condition": "条件",
            "line %(lineno)s: %(detail)s": "第 %(lineno)s 行：%(detail)s",
            "outgoing flow(s) %(flows)s have no condition and are not the default":
                "流出的顺序流 %(flows)s 没有条件，也不是默认流"}
    xml = handover(b'value="handover_check"', b'value="no_such_form"',
                   b'check_result == "complete"', b"check_result ==== 1",
                   b' default="flow_incomplete"', b"")
    problems = validate(xml, forms)
    rendered = {p.code: render(p.message_template, p.params, lambda t: fake.get(t, t))
                for p in problems}
    assert rendered["unknown_form"] == "找不到表单 'no_such_form'"
    assert rendered["script_syntax"].startswith("条件 无法编译：第 1 行：")
    assert rendered["gateway_no_default"].startswith("流出的顺序流 flow_incomplete")
    for p in problems:  # the English text is the template filled in
        assert p.message == render(p.message_template, p.params)
        assert p.hint == render(p.hint_template, p.params)


def test_every_message_of_the_validator_is_a_template(app, forms):
    """No message is built by hand: each problem of a broken diagram has a template."""
    for xml, _expected, _text in BROKEN.values():
        for p in validate(xml, forms, "handover.bpmn"):
            assert p.message_template and p.hint_template, p
