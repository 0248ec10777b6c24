"""SpiffWorkflow parsing and (de)serialization. Only workflows/ imports SpiffWorkflow."""
import datetime as dt
import json
from decimal import Decimal

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser, VALIDATOR
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from workflows.scripting import make_engine
from workflows.services import REGISTRY

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
    subprocess_specs, so a version carries a snapshot of what it calls."""
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
