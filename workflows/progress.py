"""Where a case stands in its processes: the path an instance took (with loop counts) and,
per process version, how many running instances wait at each element (the heat map).

The only module of the process studio's read side that touches SpiffWorkflow objects; the
views get plain dicts and lists.
"""
import functools

from lxml import etree
from sqlalchemy import distinct, func, select
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.util.task import TaskState

from extensions import db
from workflows.engine import load_state
from workflows.models import HumanTask, ProcessInstance
from workflows.service import _timer_value

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CURRENT_STATES = TaskState.READY | TaskState.WAITING | TaskState.STARTED
# Elements where an instance waits for an event (timer, message) rather than for a person;
# only when a diagram has one of these (or a call activity, whose process we cannot see
# here) does the heat map load instance states.
EVENT_WAIT_TAGS = frozenset({"intermediateCatchEvent", "eventBasedGateway", "receiveTask",
                             "callActivity"})


# ---------------------------------------------------------------- the diagram's XML

@functools.lru_cache(maxsize=64)
def _diagram(sha256, xml):
    """{"flows": {(source, target): [flow ids]}, "elements": {id: (tag, name)}} of a
    diagram; process versions are immutable, so this is cached per content."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml, parser)
    flows, elements = {}, {}
    for node in root.iter():
        if not isinstance(node.tag, str) or not node.tag.startswith("{%s}" % BPMN_NS):
            continue
        tag = etree.QName(node).localname
        node_id = node.get("id")
        if not node_id:
            continue
        if tag == "sequenceFlow":
            flows.setdefault((node.get("sourceRef"), node.get("targetRef")), []).append(node_id)
        elements[node_id] = (tag, node.get("name") or "")
    return {"flows": flows, "elements": elements}


def diagram_elements(definition):
    """{bpmn id: {"kind": BPMN tag, "name": name}} of every element of a process version."""
    parsed = _diagram(definition.sha256, definition.bpmn_xml)
    return {k: {"kind": tag, "name": name} for k, (tag, name) in parsed["elements"].items()}


# ---------------------------------------------------------------- one instance

def _all_tasks(workflow):
    """Every task of the workflow and of its subprocesses (call activities, subProcesses)."""
    yield from workflow.tasks.values()
    for sub in workflow.subprocesses.values():
        yield from sub.tasks.values()


def _bpmn_id(task):
    return getattr(task.task_spec, "bpmn_id", None)


def _bpmn_parent(task):
    """The nearest ancestor that is a BPMN element (skipping the engine's own control tasks
    such as the boundary-event split or the end join)."""
    parent = task.parent
    while parent is not None and _bpmn_id(parent) is None:
        parent = parent.parent
    return parent


def _arrived(task):
    """The task's element was reached: done, in progress, or a parallel join branch that
    arrived and was merged into the branch that went on (the engine cancels those)."""
    if task.state & (TaskState.COMPLETED | CURRENT_STATES | TaskState.ERROR):
        return True
    return (task.state == TaskState.CANCELLED and isinstance(task.task_spec, Join)
            and task.parent is not None and task.parent.state == TaskState.COMPLETED)


def instance_progress(instance):
    """The path an instance took, from its stored state:

    {"completed": {bpmn_id: times completed}, "current": [bpmn_id, …] (ready, waiting or
    started), "errors": [bpmn_id, …], "flows": {sequence flow id: times taken},
    "cancelled": bool}. A count above 1 means the element or flow was passed in a loop.
    """
    workflow = load_state(instance.definition, instance.state_json)
    flows_by_pair = _diagram(instance.definition.sha256, instance.definition.bpmn_xml)["flows"]
    completed, current, errors, flows = {}, [], [], {}
    for task in _all_tasks(workflow):
        bpmn_id = _bpmn_id(task)
        if bpmn_id is None:
            continue
        if task.state == TaskState.COMPLETED:
            completed[bpmn_id] = completed.get(bpmn_id, 0) + 1
        elif task.state & CURRENT_STATES:
            if bpmn_id not in current:
                current.append(bpmn_id)
        elif task.state == TaskState.ERROR and bpmn_id not in errors:
            errors.append(bpmn_id)
        if not _arrived(task):
            continue
        parent = _bpmn_parent(task)
        if parent is None or parent.state != TaskState.COMPLETED:
            continue
        # Two flows between the same pair of elements cannot be told apart: the first counts.
        for flow_id in flows_by_pair.get((_bpmn_id(parent), bpmn_id), [])[:1]:
            flows[flow_id] = flows.get(flow_id, 0) + 1
    return {"completed": completed, "current": current, "errors": errors, "flows": flows,
            "cancelled": instance.status == "cancelled"}


# ---------------------------------------------------------------- the heat map

def _running(definition):
    return (select(ProcessInstance)
            .where(ProcessInstance.definition_id == definition.id,
                   ProcessInstance.status == "running")
            .order_by(ProcessInstance.id))


def _has_event_waits(definition):
    return any(tag in EVENT_WAIT_TAGS
               for tag, _name in _diagram(definition.sha256,
                                          definition.bpmn_xml)["elements"].values())


def _event_waits(definition):
    """(instance, bpmn_id, timer due or None) for every running instance of the version and every element where
    it waits for a timer or a message (not a person: those are in human_tasks).

    Loads the state of every running instance of this one version, and only when the diagram
    has an intermediate catch event, an event-based gateway, a receive task or a call
    activity. Fine at today's volumes (thousands of loans); a projection table like
    human_tasks would be the next step."""
    if not _has_event_waits(definition):
        return
    for instance in db.session.scalars(_running(definition)):
        workflow = load_state(definition, instance.state_json)
        seen = set()
        for task in _all_tasks(workflow):
            spec = task.task_spec
            bpmn_id = _bpmn_id(task)
            if (bpmn_id is None or task.state != TaskState.WAITING or bpmn_id in seen
                    or not isinstance(spec, CatchingEvent) or isinstance(spec, BoundaryEvent)):
                continue
            seen.add(bpmn_id)
            yield instance, bpmn_id, _timer_value(task)


def _ready_human_tasks(definition):
    return (select(HumanTask).join(ProcessInstance, HumanTask.instance_id == ProcessInstance.id)
            .where(ProcessInstance.definition_id == definition.id,
                   ProcessInstance.status == "running", HumanTask.state == "ready"))


def waiting_counts(definition):
    """{bpmn_id: number of running instances of this process version waiting there}: open
    user tasks from human_tasks, timers and messages from the instance states."""
    query = (_ready_human_tasks(definition).with_only_columns(
        HumanTask.bpmn_id, func.count(distinct(HumanTask.instance_id)))
        .group_by(HumanTask.bpmn_id))
    counts = {bpmn_id: n for bpmn_id, n in db.session.execute(query)}
    for _instance, bpmn_id, _due in _event_waits(definition):
        counts[bpmn_id] = counts.get(bpmn_id, 0) + 1
    return counts


def waiting_at(definition, bpmn_id):
    """The running instances of this version waiting at one element, longest waiting first:
    [{"instance_id", "case_id", "since", "holder_id", "task_id", "timer_at"}]."""
    element = diagram_elements(definition).get(bpmn_id)
    rows = []
    if element is None:
        return rows
    if element["kind"] in ("intermediateCatchEvent", "eventBasedGateway", "receiveTask"):
        for instance, waiting_id, due in _event_waits(definition):
            if waiting_id == bpmn_id:
                # The instance was last saved when it started waiting there.
                rows.append({"instance_id": instance.id, "case_id": instance.case_id,
                             "since": instance.updated_at, "holder_id": None, "task_id": None,
                             "timer_at": due})
    else:
        query = _ready_human_tasks(definition).where(HumanTask.bpmn_id == bpmn_id)
        for task in db.session.scalars(query):
            rows.append({"instance_id": task.instance_id, "case_id": task.case_id,
                         "since": task.created_at, "holder_id": task.claimed_by_id,
                         "task_id": task.id, "timer_at": None})
    return sorted(rows, key=lambda r: (r["since"] is None, r["since"], r["instance_id"]))
