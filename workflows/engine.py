"""SpiffWorkflow parsing and (de)serialization. Only workflows/ imports SpiffWorkflow."""
import contextvars
import datetime as dt
import json
import sys
import threading
from decimal import Decimal

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser, VALIDATOR
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskIterator

from workflows.scripting import make_engine
from workflows.services import REGISTRY

# ---- long chains -------------------------------------------------------------------------
# The engine walks a diagram recursively: its parser follows each sequence flow to the next
# element (about two Python frames per element in a row) and a new workflow predicts its
# future tasks the same way (one frame per element). With Python's default limit of 1000
# frames a chain of about 450 elements in a row failed with a RecursionError reported on
# whatever element it reached. Such work runs in `deeply`: a thread of its own with a large
# stack and, while it runs, a recursion limit raised to fit. Longer chains than MAX_CHAIN are
# refused by validation (workflows/traps.py, chain_too_long): parsing is quadratic in the
# chain's length (2,000 elements 0.5 s, 10,000 elements 23 s).
MAX_CHAIN = 3000
DEEP_RECURSION_LIMIT = 4 * MAX_CHAIN + 2000
DEEP_STACK_BYTES = 256 * 1024 * 1024  # address space; only the pages touched are used
# A spec with more task specs than this may predict deeper than the default limit allows.
DEEP_SPEC_TASKS = 300
_deep_lock = threading.Lock()
_deep_running = [0, None]  # deep calls in progress, the recursion limit before the first

# The engine's task iterators stop descending at depth 1000 of the task tree, where each
# task is a child of the one before it: past the 1000th task in a row (or a loop gone round
# until its tasks reach that depth) the next ready task was never found and the instance
# stalled without an error. The tree is finite, so the bound is only lifted.
MAX_TASK_DEPTH = 10 ** 9
TaskIterator.__init__.__defaults__ = (None, MAX_TASK_DEPTH, True, None)
BpmnTaskIterator.__init__.__defaults__ = (None, MAX_TASK_DEPTH, True, False, None)


def deeply(fn, *args, **kwargs):
    """fn(*args, **kwargs) in a thread with a large stack and a raised recursion limit, in
    the caller's context (app context, session); its result, or its exception re-raised.

    The recursion limit is per interpreter, so it is raised only while a deep call runs and
    put back when the last one ends."""
    outcome = {}
    context = contextvars.copy_context()

    def target():
        try:
            outcome["value"] = context.run(fn, *args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 — handed to the caller's thread
            outcome["error"] = exc

    with _deep_lock:
        if _deep_running[0] == 0:
            _deep_running[1] = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_deep_running[1], DEEP_RECURSION_LIMIT))
        _deep_running[0] += 1
        previous = threading.stack_size(DEEP_STACK_BYTES)
        try:
            thread = threading.Thread(target=target, name="engine-deep", daemon=True)
            thread.start()
        finally:
            threading.stack_size(previous)
    try:
        thread.join()
    finally:
        with _deep_lock:
            _deep_running[0] -= 1
            if _deep_running[0] == 0:
                sys.setrecursionlimit(_deep_running[1])
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class _StateConverter(BpmnWorkflowConverter):
    """A workflow's state without its spec and subprocess specs: those are stored once per
    deployed version (process_definitions.spec_json), so converting them at every save only
    to drop them was half the cost of a save. Restoring is unchanged (load_state puts the
    cached spec objects back into the dict)."""

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct


_registry = BpmnWorkflowSerializer.configure({**SPIFF_CONFIG, BpmnWorkflow: _StateConverter})
_registry.register(dt.date, lambda v: {"value": v.isoformat()},
                   lambda v: dt.date.fromisoformat(v["value"]))
_registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))
serializer = BpmnWorkflowSerializer(_registry)
SERIALIZER_VERSION = serializer.VERSION


def parse_processes(xml: bytes, filename="diagram.bpmn", called=()):
    """Parse one BPMN document; {process_id: (spec, subprocess_specs)} for its executable
    processes. `called` lists (xml, filename) of the other documents defining the processes
    its call activities name (workflows.calls.resolve_calls): their specs go into
    subprocess_specs, so a version carries a snapshot of what it calls. Runs `deeply`: the
    parser recurses along every chain of elements."""
    return deeply(_parse_processes, xml, filename, called)


def _parse_processes(xml, filename, called):
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_str(xml, filename=filename)
    own = parser.get_process_ids()
    for other_xml, other_name in called:
        parser.add_bpmn_str(other_xml, filename=other_name)
    return {process_id: (parser.get_spec(process_id), parser.get_subprocess_specs(process_id))
            for process_id in own}


def spec_to_json(spec, subprocess_specs) -> str:
    return json.dumps({"spec": serializer.to_dict(spec),
                       "subprocess_specs": {k: serializer.to_dict(v)
                                            for k, v in subprocess_specs.items()}})


# Serialized specs by (process key, sha256): a deployed version never changes and its sha256
# names its content, so each is read from the database once per process.
_SPEC_JSON = {}


def _spec_dict(definition):
    key = (definition.process_key, definition.sha256)
    text = _SPEC_JSON.get(key)
    if text is None:
        text = _SPEC_JSON[key] = definition.spec_json
    # Parsed fresh each time: the serializer restores dicts in place.
    return json.loads(text)


# Form specs by (process key, sha256, form key): the sha256 of a deployed version covers the
# forms deployed with it, so the spec of a form key never changes under one key.
_FORM_SPECS = {}


def cached_form_spec(definition, form_key, load):
    key = (definition.process_key, definition.sha256, form_key)
    spec = _FORM_SPECS.get(key)
    if spec is None:
        spec = _FORM_SPECS[key] = load()
    return spec


# Spec objects by (process key, sha256): rebuilding them from JSON was nearly all the cost of
# loading an instance (collection: 5.5 of 5.7 ms). The engine only reads specs, so one set
# serves every instance of a version, in every thread; each workflow gets its own dict.
_SPECS = {}


def _specs(definition):
    key = (definition.process_key, definition.sha256)
    found = _SPECS.get(key)
    if found is None:
        specs = _spec_dict(definition)
        found = _SPECS[key] = (serializer.from_dict(specs["spec"]),
                               {k: serializer.from_dict(v)
                                for k, v in specs["subprocess_specs"].items()})
    return found


def new_workflow(definition):
    spec, subs = _specs(definition)
    size = len(spec.task_specs) + sum(len(s.task_specs) for s in subs.values())
    if size > DEEP_SPEC_TASKS:  # predicting its tasks may recurse along a long chain
        return deeply(BpmnWorkflow, spec, dict(subs), script_engine=make_engine(REGISTRY))
    return BpmnWorkflow(spec, dict(subs), script_engine=make_engine(REGISTRY))


def dump_state(workflow) -> str:
    """The instance's state without its spec (the spec is stored once per version)."""
    _registry._encoder_mode = True
    try:
        dct = serializer.to_dict(workflow)
    finally:
        _registry._encoder_mode = False
    dct[serializer.VERSION_KEY] = serializer.VERSION
    return json.dumps(dct, cls=serializer._encoder_cls)


def load_state(definition, state_json: str):
    dct = json.loads(state_json, cls=serializer.json_decoder_cls)
    if dct.get(serializer.VERSION_KEY) == serializer.VERSION:
        # Current format: the cached spec objects go in as they are (the serializer restores
        # only dicts, and passes objects through).
        dct.pop(serializer.VERSION_KEY)
        spec, subs = _specs(definition)
        dct["spec"], dct["subprocess_specs"] = spec, dict(subs)
    else:  # an older format: migrate it with the specs as dicts, as the serializer expects
        specs = _spec_dict(definition)
        dct["spec"], dct["subprocess_specs"] = specs["spec"], specs["subprocess_specs"]
        serializer.migrate(dct)
    workflow = serializer.from_dict(dct)
    workflow.script_engine = make_engine(REGISTRY)
    return workflow
