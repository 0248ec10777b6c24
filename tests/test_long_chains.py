"""A chain of 2,000 tasks in a row parses, deploys and runs (issue 15). The engine walks a
diagram recursively; before workflows.engine.deeply a chain of about 450 elements failed in
its parser with a RecursionError reported on a random element, and past the 1,000th task in
a row its task iterators no longer found the next ready task. Longer chains than
engine.MAX_CHAIN are refused by validation on the element where the limit is passed."""
import json
import time

import pytest

from accounts.operations import create_user
from extensions import db
from tests.conftest import PASSWORD
from workflows import engine
from workflows.definitions import _deploy_valid
from workflows.engine import dump_state, load_state, parse_processes
from workflows.models import HumanTask
from workflows.service import _save, start_process
from workflows.tasks import complete_task
from workflows.validation import CallLibrary, validate
from SpiffWorkflow.util.task import TaskState

LENGTH = 2000


def chain(length, process_id="long_chain"):
    """start → step_1 → … → step_<length> → end, every step a user task of one lane."""
    nodes, flows = [], []
    previous = "start"
    for i in range(1, length + 1):
        nodes.append(f'<bpmn:userTask id="step_{i}" name="Step {i}"><bpmn:incoming>f{i}'
                     f'</bpmn:incoming><bpmn:outgoing>f{i + 1}</bpmn:outgoing></bpmn:userTask>')
        flows.append(f'<bpmn:sequenceFlow id="f{i}" sourceRef="{previous}" '
                     f'targetRef="step_{i}" />')
        previous = f"step_{i}"
    refs = "".join(f"<bpmn:flowNodeRef>step_{i}</bpmn:flowNodeRef>"
                   for i in range(1, length + 1))
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    id="defs_chain" targetNamespace="http://daihou.example/test">
  <bpmn:process id="{process_id}" name="Long chain" isExecutable="true">
    <bpmn:laneSet id="lanes"><bpmn:lane id="lane_plo" name="post_loan_officer">{refs}
    </bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    {"".join(nodes)}
    <bpmn:endEvent id="end"><bpmn:incoming>f{length + 1}</bpmn:incoming></bpmn:endEvent>
    {"".join(flows)}
    <bpmn:sequenceFlow id="f{length + 1}" sourceRef="{previous}" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>'''.encode()


def test_chain_of_2000_tasks_parses_deploys_and_runs(app, capsys):
    xml = chain(LENGTH)
    moment = time.perf_counter()
    (spec, _subs), = parse_processes(xml, "long_chain.bpmn").values()
    parsed = time.perf_counter() - moment
    assert len(spec.task_specs) > LENGTH
    moment = time.perf_counter()
    definition, = _deploy_valid(xml, "long_chain.bpmn", {}, None, "", CallLibrary())
    db.session.commit()
    deployed = time.perf_counter() - moment

    plo = create_user("plo", PASSWORD, ["post_loan_officer"])
    moment = time.perf_counter()
    instance = start_process("long_chain")
    db.session.commit()
    started = time.perf_counter() - moment
    assert instance.status == "running"

    def complete_through_facade():
        (row,) = HumanTask.query.filter_by(instance_id=instance.id, state="ready").all()
        complete_task(row.id, plo, data={})
        return row.bpmn_id

    moment = time.perf_counter()
    assert [complete_through_facade() for _ in range(3)] == ["step_1", "step_2", "step_3"]
    per_completion = (time.perf_counter() - moment) / 3

    # The middle of the chain runs in the engine itself, saved and restored once half way
    # (each facade completion loads, scans and saves the whole 2,000-task state).
    moment = time.perf_counter()
    db.session.refresh(instance)
    workflow = load_state(definition, instance.state_json)
    (task,) = workflow.get_tasks(state=TaskState.READY, manual=True)
    for done in range(3, LENGTH - 3):
        assert task.task_spec.bpmn_id == f"step_{done + 1}"
        task.run()
        (task,) = task.children  # a user task's successor is ready at once
        if done == LENGTH // 2:
            workflow = load_state(definition, dump_state(workflow))
            task = workflow.get_task_from_id(task.id)
    workflow.do_engine_steps()
    _save(instance, workflow, None)
    db.session.commit()
    middle = time.perf_counter() - moment

    # The last tasks, past the 1,000th in a row, through the facade again.
    assert [complete_through_facade() for _ in range(3)] == [
        f"step_{LENGTH - 2}", f"step_{LENGTH - 1}", f"step_{LENGTH}"]
    db.session.refresh(instance)
    assert instance.status == "completed"
    completed = load_state(definition, instance.state_json)
    assert completed.completed and completed.data["completed_by"][f"step_{LENGTH}"] == "plo"
    with capsys.disabled():
        print(f"\n{LENGTH} tasks in a row: parse {parsed:.2f} s, deploy {deployed:.2f} s, "
              f"start {started:.2f} s, a completion through the facade "
              f"{per_completion:.3f} s, {LENGTH - 6} completions in the engine with a save "
              f"and load half way: {middle:.2f} s; state {len(instance.state_json)} bytes")


def test_chain_of_2000_tasks_validates():
    assert validate(chain(LENGTH), {}) == []


def test_chain_longer_than_the_limit_is_refused_on_the_element_past_it():
    problems = validate(chain(engine.MAX_CHAIN + 5), {})
    found = [p for p in problems if p.code == "chain_too_long" and p.params.get("limit")]
    # The element past the limit (the start event is the first of the chain).
    assert [p.element_id for p in found] == [f"step_{engine.MAX_CHAIN}"]
    assert str(engine.MAX_CHAIN) in found[0].message


def test_deep_calls_give_back_the_recursion_limit_and_errors():
    import sys
    before = sys.getrecursionlimit()

    def depth(n):
        return 0 if n == 0 else 1 + depth(n - 1)

    assert engine.deeply(depth, 5000) == 5000
    assert sys.getrecursionlimit() == before
    with pytest.raises(ZeroDivisionError):
        engine.deeply(lambda: 1 / 0)
    assert json.loads(engine.deeply(json.dumps, {"a": 1})) == {"a": 1}
