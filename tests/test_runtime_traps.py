"""Diagrams the engine accepts but that break at run time (issue 15): each is refused with a
problem on the element, and the proofs that each trap is real — the diagram deployed anyway
(past validation) and run through the facade — are kept where they are cheap."""
import pytest

from accounts.operations import create_user
from extensions import db
from tests.conftest import PASSWORD, ROOT
from workflows.definitions import _deploy_valid
from workflows.engine import load_state
from workflows.errors import InvalidData
from workflows.models import HumanTask, ProcessDefinition
from workflows.service import start_process
from workflows.tasks import complete_task
from workflows.validation import CallLibrary, load_forms, validate

TRAPS = ROOT / "tests" / "bpmn" / "traps"

# file -> (code, element id) of the problem that refuses it
EXPECTED = {
    "script_javascript.bpmn": ("script_not_python", "compute"),
    "script_missing.bpmn": ("script_missing", "compute"),
    "lane_spaces.bpmn": ("lane_reference_spaces", "review"),
    "sequential_mi.bpmn": ("multi_instance_stuck", "visit"),
    "message_flow_pools.bpmn": ("message_flow_between_processes", "payment_flow"),
    "self_call_subprocess.bpmn": ("call_cycle", "call_again"),
    "called_element_spaces.bpmn": ("called_element_spaces", "call_review"),
}


def trap(name):
    return (TRAPS / name).read_bytes()


def deploy_anyway(xml, filename):
    """Deploy past validation, as validation accepted these diagrams before."""
    return _deploy_valid(xml, filename, {}, None, "", CallLibrary([(xml, filename)]))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_trap_is_refused_on_its_element(name):
    problems = validate(trap(name), {}, name)
    code, element = EXPECTED[name]
    mine = [p for p in problems if p.code == code]
    assert [p.element_id for p in mine] == [element], problems
    # The only other problem allowed is the engine's own refusal of the same cause.
    assert {p.code for p in problems} <= {code, "called_process_missing"}, problems
    assert mine[0].hint and mine[0].line


def test_fixed_diagrams_validate():
    """The same diagrams with the trap removed pass: the checks are not over-eager."""
    fixes = {
        "script_javascript.bpmn": (b' scriptFormat="javascript"', b' scriptFormat="python"'),
        "script_missing.bpmn": (b'</bpmn:outgoing></bpmn:scriptTask>',
                                b'</bpmn:outgoing><bpmn:script>x = 1</bpmn:script>'
                                b'</bpmn:scriptTask>'),
        "lane_spaces.bpmn": (b"> review <", b">review<"),
        "sequential_mi.bpmn": (b'<bpmn:inputDataItem id="address" name="address" />',
                               b'<bpmn:loopDataOutputRef>visits</bpmn:loopDataOutputRef>'
                               b'<bpmn:inputDataItem id="address" name="address" />'
                               b'<bpmn:outputDataItem id="visit_note" name="visit_note" />'),
        "message_flow_pools.bpmn": (b'<bpmn:process id="trap_sender" name="Trap" '
                                    b'isExecutable="true"',
                                    b'<bpmn:process id="trap_sender" name="Trap" '
                                    b'isExecutable="false"'),
        "called_element_spaces.bpmn": (b'" trap_called_spaces_callee "',
                                       b'"trap_called_spaces_callee"'),
    }
    for name, (old, new) in fixes.items():
        xml = trap(name)
        assert old in xml, name
        assert validate(xml.replace(old, new), {}, name) == [], name


def test_script_format_python_spellings_pass():
    xml = trap("script_javascript.bpmn")
    for fmt in (b"python", b"Python", b"text/x-python", b"python3"):
        assert validate(xml.replace(b'="javascript"', b'="' + fmt + b'"'), {}) == []


def test_shipped_diagrams_have_no_trap(app):
    forms = load_forms(ROOT / "bpmn" / "forms")
    library = CallLibrary([(p.read_bytes(), p.name) for p in (ROOT / "bpmn").glob("*.bpmn")])
    for path in sorted((ROOT / "bpmn").glob("*.bpmn")):
        assert validate(path.read_bytes(), forms, path.name, library=library) == [], path.name


def test_process_without_id_is_refused_and_would_fail_in_the_database(app):
    xml = trap("process_without_id.bpmn")
    problems = validate(xml, {}, "process_without_id.bpmn")
    assert problems and all(p.element_id is None for p in problems)
    assert {p.code for p in problems} & {"id_missing", "process_id_missing"}
    line = xml.split(b"<bpmn:process")[0].count(b"\n") + 1
    assert any(p.line == line for p in problems)
    # Proof: past validation, deploy fails in the database (the process key is NULL).
    with pytest.raises(Exception) as failure:
        deploy_anyway(xml, "process_without_id.bpmn")
    assert "process_key" in str(failure.value) or "NULL" in str(failure.value).upper()
    db.session.rollback()


# ---- proofs at run time -----------------------------------------------------------------

def test_proof_lane_with_spaces_gives_a_task_nobody_can_take(app):
    deploy_anyway(trap("lane_spaces.bpmn"), "lane_spaces.bpmn")
    instance = start_process("trap_lane_spaces")
    db.session.commit()
    (row,) = HumanTask.query.filter_by(instance_id=instance.id).all()
    assert row.lane is None  # no role: no inbox shows it


def test_proof_script_task_without_script_stops_the_instance(app):
    deploy_anyway(trap("script_missing.bpmn"), "script_missing.bpmn")
    instance = start_process("trap_script_missing")
    assert instance.status == "error" and "compile()" in instance.error


def test_proof_javascript_runs_as_python(app):
    """The engine does not look at scriptFormat: JavaScript that happens to parse as Python
    runs as Python; any other JavaScript fails."""
    xml = trap("script_javascript.bpmn")
    deploy_anyway(xml, "script_javascript.bpmn")
    instance = start_process("trap_script_format")
    assert instance.status == "completed"
    assert load_state(instance.definition, instance.state_json).data["total"] == 1
    deploy_anyway(xml.replace(b"total = 1", b"var total = 1;"), "script_javascript.bpmn")
    assert start_process("trap_script_format").status == "error"


def test_proof_sequential_multi_instance_without_output_is_stuck(app):
    plo = create_user("plo", PASSWORD, ["post_loan_officer"])
    deploy_anyway(trap("sequential_mi.bpmn"), "sequential_mi.bpmn")
    instance = start_process("trap_sequential_mi", data={"addresses": ["a", "b", "c"]})
    db.session.commit()
    (first,) = HumanTask.query.filter_by(instance_id=instance.id, state="ready").all()
    with pytest.raises(InvalidData) as failure:
        complete_task(first.id, plo, data={})
    assert "already exists" in str(failure.value)
    db.session.rollback()
    assert HumanTask.query.filter_by(instance_id=instance.id, state="ready").count() == 1


def test_proof_message_flow_between_pools_never_arrives(app):
    deploy_anyway(trap("message_flow_pools.bpmn"), "message_flow_pools.bpmn")
    assert {d.process_key for d in ProcessDefinition.query} == {"trap_sender", "trap_receiver"}
    receiver = start_process("trap_receiver")
    sender = start_process("trap_sender")
    db.session.commit()
    assert sender.status == "completed"
    db.session.refresh(receiver)
    assert receiver.status == "running"  # and stays so: nothing routes the message to it


def test_proof_self_call_never_returns(app):
    """Before call_cycle caught it, a process calling itself (here from a subprocess) only
    stopped at the engine's step budget."""
    deploy_anyway(trap("self_call_subprocess.bpmn"), "self_call_subprocess.bpmn")
    instance = start_process("trap_self_call")
    assert instance.status == "error"
