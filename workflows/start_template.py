"""The state of a new instance, computed once per process version and reused (issue 12).

Starting a process runs its engine from the start event to the first user tasks. When that
run cannot depend on the start data — only the start event runs (no event definition, no
script), and it stops at plain user or manual tasks (no pre-script, no timer, no data
associations) — every new instance of the version gets the same state but for its task ids and
its start data. The template runs the engine once with sentinel values for the data, checks
that each sentinel is stored exactly once (in the start task) and nowhere else, and then
builds each new state by filling in fresh task ids and the real values (JSON-encoded as the
serializer would). Any other process is run instance by instance, as before.
"""
import json
import re
import uuid

from SpiffWorkflow.bpmn.specs.control import BpmnStartTask
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.util.task import TaskState

from workflows.engine import dump_state, new_workflow

# Values the template can hold: JSON encodes them exactly as the serializer does.
PLAIN = (str, int, float, bool, type(None))
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TEMPLATES = {}  # (process key, sha256, data keys) -> StartTemplate, or None when not valid


class StartTemplate:
    """Fragments of the template state: text, ("id", n) and ("value", key) pieces."""

    def __init__(self, state, sentinels, ready):
        self.ids = []
        pieces, at = [], 0
        marks = {json.dumps(v): k for k, v in sentinels.items()}
        pattern = re.compile("|".join([_UUID.pattern] + [re.escape(m) for m in marks]))
        for match in pattern.finditer(state):
            pieces.append(state[at:match.start()])
            text = match.group()
            if text in marks:
                pieces.append(("value", marks[text]))
            else:
                if text not in self.ids:
                    self.ids.append(text)
                pieces.append(("id", self.ids.index(text)))
            at = match.end()
        pieces.append(state[at:])
        self.pieces = pieces
        # READY manual tasks: (index of its id, task spec); their data is the start data.
        self.ready = [(self.ids.index(str(task.id)), task.task_spec) for task in ready]

    def instantiate(self, data):
        """(state JSON, [(task guid, task spec)] of the READY user tasks) for new data."""
        ids = [str(uuid.uuid4()) for _ in self.ids]
        out = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
            elif piece[0] == "id":
                out.append(ids[piece[1]])
            else:
                out.append(json.dumps(data[piece[1]]))
        return "".join(out), [(ids[n], spec) for n, spec in self.ready]


def _plain_spec(spec):
    return (getattr(spec, "prescript", None) is None
            and getattr(spec, "postscript", None) is None
            and getattr(spec, "io_specification", None) is None
            and not getattr(spec, "data_input_associations", None)
            and not getattr(spec, "data_output_associations", None))


def _valid_run(workflow):
    """Whether the start run touched only a plain start and plain user tasks."""
    if workflow.completed:
        return False
    for task in workflow.get_tasks():
        spec = task.task_spec
        if task.state == TaskState.COMPLETED:
            plain_start = isinstance(spec, BpmnStartTask) or (
                isinstance(spec, StartEvent)
                and isinstance(spec.event_definition, NoneEventDefinition))
            if not (plain_start and _plain_spec(spec)):
                return False
        elif task.state == TaskState.READY:
            if not (spec.manual and type(spec).__name__ in ("UserTask", "ManualTask")
                    and _plain_spec(spec)):
                return False
        elif task.state & (TaskState.WAITING | TaskState.STARTED | TaskState.ERROR):
            return False
    return True


def start_template(definition, data):
    """The StartTemplate of this version for start data with these keys (in this order), or
    None when the start run may depend on the data (then run each instance)."""
    if not all(isinstance(k, str) and isinstance(v, PLAIN) for k, v in data.items()):
        return None
    key = (definition.process_key, definition.sha256, tuple(data))
    if key not in _TEMPLATES:
        _TEMPLATES[key] = _build(definition, tuple(data))
    return _TEMPLATES[key]


def _build(definition, keys):
    token = uuid.uuid4().hex
    sentinels = {k: f"daihou-template-{token}-{n}" for n, k in enumerate(keys)}
    workflow = new_workflow(definition)
    workflow.get_next_task(state=TaskState.READY).data.update(sentinels)
    try:
        workflow.do_engine_steps()
    except Exception:  # noqa: BLE001 — anything unusual: no template, run each instance
        return None
    if not _valid_run(workflow):
        return None
    state = dump_state(workflow)
    ready = workflow.get_tasks(state=TaskState.READY, manual=True)
    # Each sentinel stored once (the start data) and each READY task holding exactly the
    # start data: nothing was copied or computed from a value.
    if any(state.count(v) != 1 for v in sentinels.values()) or \
            any(task.data != sentinels for task in ready):
        return None
    return StartTemplate(state, sentinels, ready)
