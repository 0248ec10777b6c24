"""Names and small helpers for reading BPMN 2.0 XML, shared by the diagram checks
(workflows/validation.py, traps.py, hygiene.py)."""
from workflows.calls import BPMN_NS

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}

ACTIVITIES = {"task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask",
              "receiveTask", "businessRuleTask", "callActivity", "subProcess", "transaction",
              "adHocSubProcess"}
EVENTS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent",
          "boundaryEvent"}
GATEWAYS = {"exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway",
            "complexGateway"}
FLOW_NODES = ACTIVITIES | EVENTS | GATEWAYS
CONTAINERS = {"subProcess", "transaction", "adHocSubProcess"}
# Tasks SpiffWorkflow hands to people (task_spec.manual): they become human tasks in a lane.
HUMAN_TASKS = {"userTask", "manualTask", "task"}


def local(el):
    """The BPMN local name of an element (userTask…), None for other namespaces."""
    tag = el.tag
    if not isinstance(tag, str) or not tag.startswith("{" + BPMN_NS + "}"):
        return None
    return tag[len(BPMN_NS) + 2:]


def children(el, names):
    return [c for c in el if local(c) in names]


def text_of(el):
    return el.text if el is not None else None
