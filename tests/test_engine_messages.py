"""The engine's own refusals in the problem catalogue: a code, an English template with its
values and a hint, in both languages, never a Python repr or a memory address."""
import re

import pytest
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from workflows.engine_messages import clean, describe
from workflows.problems import Problem
from workflows.validation import validate

HEAD = '''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  id="defs" targetNamespace="http://daihou.example/test">%s
<bpmn:process id="p" name="P" isExecutable="true">
<bpmn:laneSet id="ls"><bpmn:lane id="lane" name="post_loan_officer">
<bpmn:flowNodeRef>t1</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
<bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
%s
<bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t1"/>
<bpmn:sequenceFlow id="f2" sourceRef="t1" targetRef="e"/>%s
</bpmn:process></bpmn:definitions>'''
IO = '<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'


def user_task(inner=""):
    return f'<bpmn:userTask id="t1" name="Do it">{IO}{inner}</bpmn:userTask>'


def event(kind, definition):
    return f'<bpmn:{kind} id="t1" name="E">{IO}{definition}</bpmn:{kind}>'


# name -> (top-level additions, the middle element, extra flows, expected code)
CASES = {
    "data_output_to_a_task": ("", user_task('<bpmn:dataOutputAssociation id="a"><bpmn:targetRef>'
                                            'e</bpmn:targetRef></bpmn:dataOutputAssociation>'),
                              "", "data_association_unresolved"),
    "two_flows_out_of_a_task": ("", user_task(), '<bpmn:sequenceFlow id="f3" sourceRef="t1" '
                                'targetRef="e"/>', "task_multiple_outgoing"),
    "message_not_defined": ("", event("intermediateCatchEvent", '<bpmn:messageEventDefinition '
                                      'id="d" messageRef="nothing"/>'), "",
                            "event_reference_missing"),
    "signal_not_defined": ("", event("intermediateCatchEvent", '<bpmn:signalEventDefinition '
                                     'id="d" signalRef="nothing"/>'), "",
                           "event_reference_missing"),
    "multi_instance_without_input": ("", user_task('<bpmn:multiInstanceLoopCharacteristics/>'),
                                     "", "multi_instance_no_input"),
    "loop_without_end": ("", user_task('<bpmn:standardLoopCharacteristics/>'), "",
                         "loop_unbounded"),
    "complex_gateway": ("", f'<bpmn:complexGateway id="t1" name="G">{IO}</bpmn:complexGateway>',
                        "", "element_unsupported"),
    "unknown_data_store": ('<bpmn:dataStore id="ds" name="ledger_db"/>',
                           user_task('<bpmn:dataOutputAssociation id="a"><bpmn:targetRef>dsr'
                                     '</bpmn:targetRef></bpmn:dataOutputAssociation>'),
                           '<bpmn:dataStoreReference id="dsr" dataStoreRef="ds"/>',
                           "data_store_unknown"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_refusals_have_a_code_and_no_repr(name):
    top, middle, extra, code = CASES[name]
    problems = validate((HEAD % (top, middle, extra)).encode(), {})
    mine = [p for p in problems if p.code == code]
    assert mine, problems
    for problem in problems:
        text = problem.message + problem.hint
        assert not re.search(r"0x[0-9a-f]{4,}|<Element|\{http|Error\(", text), text
    if code != "data_store_unknown":  # the engine names no element for a data store
        assert mine[0].element_id == "t1"


def test_messages_are_templates_the_studio_translates():
    problem = Problem.of("t1", "p", *describe(ValidationException(
        "Multiple outgoing flows are not supported for tasks of type"))[:3])
    assert problem.message_template.startswith("more than one sequence flow leaves")
    assert problem.hint_template and problem.message == problem.message_template


def test_unknown_message_is_cleaned_of_reprs():
    exc = ValidationException("Cannot frobnicate <Element {http://www.omg.org/spec/BPMN/"
                              "20100524/MODEL}task at 0x7f1234abcd> in <foo.Bar object at "
                              "0x7f99>")
    code, message, _hint, params = describe(exc)
    assert code == "bpmn_invalid"
    assert params["detail"] == "Cannot frobnicate bpmn:task in Bar"
    assert clean("KeyError('x')") == "x"
    assert clean('TypeError("f() got an unexpected keyword argument \'node\'")') == (
        "f() got an unexpected keyword argument 'node'")


def test_recursion_error_becomes_a_chain_problem():
    wrapped = ValidationException("RecursionError('maximum recursion depth exceeded while "
                                  "calling a Python object')")
    assert describe(wrapped)[0] == "chain_too_long"
    assert describe(RecursionError("maximum recursion depth exceeded"))[0] == "chain_too_long"


def test_known_messages_with_values():
    code, message, _hint, params = describe(ValidationException(
        "The process 'callee ' was not found. Did you mean one of the following: a, b?"))
    assert (code, params) == ("called_process_missing", {"name": "callee"})
    code, _message, _hint, params = describe(ValidationException(
        "The loop output data reference is missing from the IO specification"))
    assert code == "multi_instance_io_missing" and str(params["which"]) == "output"
    code, _message, _hint, params = describe(ValidationException(
        "Signal identifier is missing from bpmn xml"))
    assert code == "definition_id_missing" and str(params["kind"]) == "signal"
