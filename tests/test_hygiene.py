"""Modelling hygiene (workflows/hygiene.py): each rule fires on the smallest diagram that has
the fault, is quiet on its corrected twin, names the element, and the shipped diagrams have no
warning. A process whose owner set warningsBlockDeploy cannot be deployed while it has
warnings, from the command line's deploy and from the studio; without it, it can."""
import time
from pathlib import Path

import pytest

from workflows.hygiene import blocking, warnings

ROOT = Path(__file__).resolve().parent.parent
ZH = ('<bpmn:extensionElements><spiffworkflow:properties>'
      '<spiffworkflow:property name="name_zh_CN" value="中文名" />{extra}'
      '</spiffworkflow:properties></bpmn:extensionElements>')


def diagram(body, extra=""):
    """A one-process document around `body`; the process has its Chinese name."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d"
    targetNamespace="http://daihou.example/bpmn">
  <bpmn:process id="p" name="P" isExecutable="true">{ZH.format(extra=extra)}
{body}
  </bpmn:process>
</bpmn:definitions>""".encode()


def node(kind, nid, name=None, inner=""):
    named = f' name="{name}"' if name is not None else ""
    return f'<bpmn:{kind} id="{nid}"{named}>{inner}</bpmn:{kind}>'


def flow(fid, source, target, condition=None):
    cond = (f"<bpmn:conditionExpression>{condition}</bpmn:conditionExpression>"
            if condition else "")
    return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}">{cond}' \
           f'</bpmn:sequenceFlow>'


def chain(*ids):
    """A start event, service tasks named after their ids, an end event, in a row."""
    parts = [node("startEvent", ids[0], "Start")]
    parts += [node("serviceTask", i, i) for i in ids[1:-1]]
    parts.append(node("endEvent", ids[-1], "End"))
    parts += [flow(f"f_{a}_{b}", a, b) for a, b in zip(ids, ids[1:])]
    return "\n".join(parts)


def found(xml):
    return sorted((p.code, p.element_id) for p in warnings(xml))


def test_a_clean_chain_has_no_warning():
    assert found(diagram(chain("s", "a", "b", "e"))) == []


@pytest.mark.parametrize("path", sorted((ROOT / "bpmn").glob("*.bpmn")), ids=lambda p: p.stem)
def test_the_shipped_diagrams_have_no_warning(path):
    assert found(path.read_bytes()) == []


def test_warnings_carry_templates_params_and_lines():
    xml = diagram(chain("s", "a", "e") + node("serviceTask", "lonely", "Lonely"))
    (problem,) = warnings(xml)
    assert (problem.code, problem.element_id, problem.process_id) == ("disconnected", "lonely",
                                                                      "p")
    assert problem.message == "the element is connected to nothing"
    assert problem.message_template == problem.message and problem.line > 1


def test_names_people_read():
    body = "\n".join([
        node("startEvent", "s"),  # a blank start event needs no name
        node("serviceTask", "svc"),
        node("intermediateCatchEvent", "wait",
             inner='<bpmn:timerEventDefinition id="t"><bpmn:timeDuration>"P1D"'
                   '</bpmn:timeDuration></bpmn:timerEventDefinition>'),
        node("exclusiveGateway", "gw"),
        node("endEvent", "e1", "Done"), node("endEvent", "e2", "Other"),
        flow("f1", "s", "svc"), flow("f2", "svc", "wait"), flow("f3", "wait", "gw"),
        flow("f4", "gw", "e1", "x &gt; 1"), flow("f5", "gw", "e2", "x &lt;= 1")])
    assert found(diagram(body)) == [("label_required", "gw"), ("label_required", "svc"),
                                    ("label_required", "wait")]
    # A gateway that only merges, or splits without conditions, asks no question.
    parallel = body.replace("exclusiveGateway", "parallelGateway").replace(
        "<bpmn:conditionExpression>x &gt; 1</bpmn:conditionExpression>", "").replace(
        "<bpmn:conditionExpression>x &lt;= 1</bpmn:conditionExpression>", "")
    assert ("label_required", "gw") not in found(diagram(parallel))


def test_a_user_task_without_a_name_is_left_to_validation():
    body = chain("s", "e").replace('<bpmn:sequenceFlow id="f_s_e" sourceRef="s" targetRef="e">',
                                   "") .replace("</bpmn:sequenceFlow>", "")
    body += node("userTask", "u", inner=ZH.format(extra="")) + flow("f1", "s", "u") + \
        flow("f2", "u", "e")
    assert found(diagram(body)) == []


def test_implicit_start_end_and_disconnected():
    body = chain("s", "a", "e") + "\n".join([
        node("serviceTask", "dead_end", "Dead end"), flow("f9", "a", "dead_end"),
        node("serviceTask", "from_nowhere", "From nowhere"), flow("f10", "from_nowhere", "e"),
        node("serviceTask", "island", "Island")])
    assert found(diagram(body)) == [
        ("disconnected", "island"), ("implicit_end", "dead_end"),
        ("implicit_split", "a"), ("implicit_start", "from_nowhere")]


def test_compensation_handlers_boundary_events_and_event_subprocesses_are_not_implicit():
    body = chain("s", "a", "e") + "\n".join([
        node("serviceTask", "undo", "Undo").replace('id="undo"',
                                                    'id="undo" isForCompensation="true"'),
        '<bpmn:boundaryEvent id="comp" name="Compensate" attachedToRef="a">'
        '<bpmn:compensateEventDefinition id="cd" /></bpmn:boundaryEvent>',
        '<bpmn:subProcess id="on_message" name="On message" triggeredByEvent="true">'
        + node("startEvent", "ms", "Message", '<bpmn:messageEventDefinition id="md" />')
        + node("endEvent", "me", "Done") + flow("mf", "ms", "me") + "</bpmn:subProcess>"])
    assert found(diagram(body)) == []


def test_a_boundary_event_going_nowhere_is_an_implicit_end():
    body = chain("s", "a", "e") + (
        '<bpmn:boundaryEvent id="late" name="Late" attachedToRef="a">'
        '<bpmn:timerEventDefinition id="t"><bpmn:timeDuration>"P1D"</bpmn:timeDuration>'
        '</bpmn:timerEventDefinition></bpmn:boundaryEvent>')
    assert found(diagram(body)) == [("implicit_end", "late")]


def test_no_end_event_in_the_process_or_a_subprocess():
    body = "\n".join([
        node("startEvent", "s", "Start"),
        '<bpmn:subProcess id="sub" name="Sub">' + node("startEvent", "ss", "In")
        + node("serviceTask", "st", "Work") + flow("sf", "ss", "st") + "</bpmn:subProcess>",
        flow("f1", "s", "sub")])
    assert found(diagram(body)) == [("implicit_end", "st"), ("implicit_end", "sub"),
                                    ("no_end_event", "p"), ("no_end_event", "sub")]


def test_a_rework_loop_is_no_fake_join_but_parallel_paths_into_a_task_are():
    rework = "\n".join([
        node("startEvent", "s", "Start"), node("serviceTask", "do", "Do"),
        node("exclusiveGateway", "ok", "OK?").replace('">', '" default="f_done">', 1),
        node("endEvent", "e", "End"),
        flow("f1", "s", "do"), flow("f2", "do", "ok"), flow("f_back", "ok", "do", "not ok"),
        flow("f_done", "ok", "e")])
    assert found(diagram(rework)) == []
    parallel = "\n".join([
        node("startEvent", "s", "Start"), node("parallelGateway", "split"),
        node("serviceTask", "left", "Left"), node("serviceTask", "right", "Right"),
        node("serviceTask", "after", "After"), node("endEvent", "e", "End"),
        flow("f1", "s", "split"), flow("f2", "split", "left"), flow("f3", "split", "right"),
        flow("f4", "left", "after"), flow("f5", "right", "after"), flow("f6", "after", "e")])
    assert found(diagram(parallel)) == [("fake_join", "after")]
    (join,) = warnings(diagram(parallel))
    assert join.params == {"count": 2}
    # Joined by a parallel gateway first: no fake join (and no gateway that forks and joins).
    joined = parallel.replace('targetRef="after">', 'targetRef="join">').replace(
        node("serviceTask", "after", "After"),
        node("serviceTask", "after", "After") + node("parallelGateway", "join")) + \
        flow("f7", "join", "after")
    assert found(diagram(joined)) == []


def test_a_non_interrupting_boundary_event_runs_beside_its_task():
    body = "\n".join([
        node("startEvent", "s", "Start"), node("serviceTask", "a", "A"),
        node("serviceTask", "both", "Both"), node("endEvent", "e", "End"),
        '<bpmn:boundaryEvent id="remind" name="Remind" attachedToRef="a" cancelActivity="false">'
        '<bpmn:timerEventDefinition id="t"><bpmn:timeDuration>"P1D"</bpmn:timeDuration>'
        '</bpmn:timerEventDefinition></bpmn:boundaryEvent>',
        flow("f1", "s", "a"), flow("f2", "a", "both"), flow("f3", "remind", "both"),
        flow("f4", "both", "e")])
    assert found(diagram(body)) == [("fake_join", "both")]
    interrupting = body.replace(' cancelActivity="false"', "")
    assert found(diagram(interrupting)) == []


def test_gateways_that_do_nothing_or_two_things_and_complex_ones():
    body = "\n".join([
        node("startEvent", "s1", "One"), node("startEvent", "s2", "Two",
                                              '<bpmn:messageEventDefinition id="m" />'),
        node("parallelGateway", "both"), node("exclusiveGateway", "pass"),
        node("complexGateway", "cx", "Complex"),
        node("endEvent", "e1", "End 1"), node("endEvent", "e2", "End 2"),
        flow("f1", "s1", "both"), flow("f2", "s2", "both"),
        flow("f3", "both", "pass"), flow("f4", "both", "cx"),
        flow("f5", "pass", "e1"), flow("f6", "cx", "e2")])
    assert found(diagram(body)) == [("complex_gateway", "cx"), ("gateway_join_fork", "both"),
                                    ("superfluous_gateway", "cx"),
                                    ("superfluous_gateway", "pass")]


def test_duplicate_flows_same_source_target_and_condition():
    body = "\n".join([
        node("startEvent", "s", "Start"),
        node("exclusiveGateway", "gw", "Which?").replace('">', '" default="f_a">', 1),
        node("endEvent", "e", "End"),
        flow("f0", "s", "gw"), flow("f_a", "gw", "e"), flow("f_b", "gw", "e", "x == 1"),
        flow("f_c", "gw", "e", " x  ==  1 ")])
    (dup,) = [p for p in warnings(diagram(body)) if p.code == "duplicate_flow"]
    assert (dup.element_id, dup.params) == ("f_c", {"other": "f_b"})


def test_unpaired_link_events():
    link = '<bpmn:linkEventDefinition id="{id}" name="{name}" />'
    body = "\n".join([
        node("startEvent", "s", "Start"), node("serviceTask", "a", "A"),
        node("intermediateThrowEvent", "go", "Go on", link.format(id="l1", name="page2")),
        node("intermediateCatchEvent", "arrive", "Arrive", link.format(id="l2", name="page3")),
        node("endEvent", "e", "End"),
        flow("f1", "s", "a"), flow("f2", "a", "go"), flow("f3", "arrive", "e")])
    assert found(diagram(body)) == [("link_unpaired", "arrive"), ("link_unpaired", "go")]
    throw = next(p for p in warnings(diagram(body)) if p.element_id == "go")
    assert throw.params == {"link": "page2"} and "catch" in throw.message
    assert found(diagram(body.replace("page3", "page2"))) == []


def test_several_blank_starts_and_events_with_several_definitions():
    body = "\n".join([
        node("startEvent", "s1", "One"), node("startEvent", "s2", "Two"),
        node("intermediateCatchEvent", "either", "Either",
             '<bpmn:messageEventDefinition id="m" /><bpmn:signalEventDefinition id="g" />'),
        node("endEvent", "e", "End"),
        flow("f1", "s1", "either"), flow("f2", "s2", "either"), flow("f3", "either", "e")])
    assert found(diagram(body)) == [("blank_start_events", "s2"),
                                    ("event_definitions", "either")]


def test_chinese_names_are_still_warned():
    xml = diagram(chain("s", "e")).replace(ZH.format(extra="").encode(), b"")
    xml = xml.replace(b'<bpmn:endEvent id="e"', b'<bpmn:userTask id="u" name="U" />'
                      b'<bpmn:endEvent id="e"')
    problems = [p for p in warnings(xml) if p.code == "name_zh_missing"]
    assert [p.element_id for p in problems] == ["p", "u"]
    assert problems[0].hint == "Add the Chinese name in the side panel"


def test_bad_input_gives_no_warning_and_never_raises():
    assert warnings(b"<not xml") == [] and blocking(b"") == []
    assert warnings("<bpmn:definitions xmlns:bpmn='http://www.omg.org/spec/BPMN/20100524/MODEL'"
                    "><bpmn:process><bpmn:task/><bpmn:sequenceFlow/></bpmn:process>"
                    "</bpmn:definitions>") is not None


def test_a_gbk_file_is_read():
    xml = diagram(chain("s", "a", "e")).decode().replace('encoding="UTF-8"', 'encoding="GBK"')
    xml = xml.replace(node("serviceTask", "a", "a"), node("serviceTask", "a"))
    assert found(xml.encode("gbk")) == [("label_required", "a")]


def test_linear_time_on_a_big_diagram():
    """5,000 tasks, 500 parallel splits with their joins, a rework loop in each: the fake-join
    analysis follows each branch only to its join, so this takes well under a second."""
    parts = [node("startEvent", "s", "Start")]
    last = "s"
    for i in range(500):
        ids = [f"t{i}_{k}" for k in range(10)]
        parts.append(node("parallelGateway", f"split{i}"))
        parts.append(flow(f"fs{i}", last, f"split{i}"))
        parts += [node("serviceTask", t, t) for t in ids]
        parts.append(flow(f"fa{i}", f"split{i}", ids[0]))
        parts.append(flow(f"fb{i}", f"split{i}", ids[5]))
        parts += [flow(f"f{a}", a, b) for a, b in zip(ids[:4], ids[1:5]) if a != ids[2]]
        # A rework loop: ids[1] has two incoming flows from the same branch.
        parts.append(node("exclusiveGateway", f"ok{i}", "OK?").replace(
            '">', f'" default="fok{i}">', 1))
        parts += [flow(f"fr{i}", ids[2], f"ok{i}"), flow(f"fok{i}", f"ok{i}", ids[3]),
                  flow(f"fback{i}", f"ok{i}", ids[1], "again")]
        parts += [flow(f"f{a}", a, b) for a, b in zip(ids[5:9], ids[6:10])]
        parts.append(node("parallelGateway", f"join{i}"))
        parts.append(flow(f"fj{i}a", ids[4], f"join{i}"))
        parts.append(flow(f"fj{i}b", ids[9], f"join{i}"))
        last = f"join{i}"
    parts.append(node("endEvent", "e", "End"))
    parts.append(flow("fe", last, "e"))
    xml = diagram("\n".join(parts))
    started = time.perf_counter()
    result = found(xml)
    elapsed = time.perf_counter() - started
    assert result == [] and elapsed < 3, elapsed
    # A branch of the last split that bypasses its join makes the loop's step a fake join.
    crossing = xml.replace(b"</bpmn:process>", flow("fx", "t499_7", "t499_1").encode()
                           + b"</bpmn:process>")
    assert found(crossing) == [("fake_join", "t499_1"), ("implicit_split", "t499_7")]


def test_blocking_only_when_the_owner_chose_so():
    flag = '<spiffworkflow:property name="warningsBlockDeploy" value="true" />'
    body = chain("s", "a", "e") + node("serviceTask", "lonely", "Lonely")
    assert blocking(diagram(body)) == []
    problems = blocking(diagram(body, extra=flag))
    assert [(p.code, p.element_id) for p in problems] == [
        ("warnings_block_deploy", "p"), ("disconnected", "lonely")]
    assert problems[0].params == {"count": 1}
    assert blocking(diagram(chain("s", "a", "e"), extra=flag)) == []
    assert blocking(diagram(body, extra=flag.replace("true", "false"))) == []


# --- the process owner's choice, at deploy -------------------------------------------------

FLAG = b'<spiffworkflow:property name="warningsBlockDeploy" value="true" />'
HANDOVER = (ROOT / "bpmn" / "handover.bpmn").read_bytes()
ZH_PROCESS = '<spiffworkflow:property name="name_zh_CN" value="放款后交接" />'.encode()
# A valid diagram with one warning: the check step has no Chinese name.
WARNED = HANDOVER.replace('value="核对贷款档案"'.encode(), b'value=""')


def flagged(xml):
    assert ZH_PROCESS in xml
    return xml.replace(ZH_PROCESS, ZH_PROCESS + FLAG)


def test_deploy_refuses_warnings_only_when_the_owner_chose_so(app):
    from workflows.definitions import deploy_xml
    from workflows.errors import DeployError
    from workflows.models import ProcessDefinition
    forms = ROOT / "bpmn" / "forms"
    with pytest.raises(DeployError) as refused:
        deploy_xml(flagged(WARNED), "handover.bpmn", forms)
    assert [(p.code, p.element_id, p.filename) for p in refused.value.problems] == [
        ("warnings_block_deploy", "handover", "handover.bpmn"),
        ("name_zh_missing", "check_file", "handover.bpmn")]
    assert ProcessDefinition.query.count() == 0
    # The same warning without the choice deploys; the choice without warnings deploys too.
    assert deploy_xml(WARNED, "handover.bpmn", forms)[0].version == 1
    assert deploy_xml(flagged(HANDOVER), "handover.bpmn", forms)[0].version == 2


def test_bpmn_deploy_on_the_command_line_refuses_them_too(app, tmp_path):
    from workflows.models import ProcessDefinition
    path = tmp_path / "handover.bpmn"
    path.write_bytes(flagged(WARNED))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["bpmn", "deploy", str(path)])
    assert result.exit_code == 1, result.output
    assert "[warnings_block_deploy]" in result.output and "element check_file" in result.output
    assert ProcessDefinition.query.count() == 0
    path.write_bytes(WARNED)
    result = runner.invoke(args=["bpmn", "deploy", str(path)])
    assert result.exit_code == 0 and "handover: version 1" in result.output


def test_bpmn_validate_shows_warnings_and_refuses_as_deploy_would(app, tmp_path):
    path = tmp_path / "handover.bpmn"
    path.write_bytes(WARNED)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["bpmn", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: " in result.output and "element check_file" in result.output
    path.write_bytes(flagged(WARNED))
    result = runner.invoke(args=["bpmn", "validate", str(path)])
    assert result.exit_code == 1 and "[warnings_block_deploy]" in result.output
