"""The engine's own refusals (SpiffWorkflow parser and validator exceptions) in the product's
problem catalogue: a code, an English template with its values, a hint — never a Python repr.

The parser raises `ValidationException(message)` with the offending element's id and tag as
attributes, and wraps any other exception it meets while parsing an element in one whose
message is that exception's repr (`TypeError("…")`, `RecursionError('…')`). Each known
message is matched by a pattern below; anything else gets the generic entry with the text
cleaned of reprs, namespaces and memory addresses.
"""
import re

from workflows.problems import N_, Text

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
PREFIXES = {BPMN_NS: "bpmn", SPIFF_NS: "spiffworkflow",
            "http://www.omg.org/spec/BPMN/20100524/DI": "bpmndi",
            "http://www.omg.org/spec/DD/20100524/DC": "dc",
            "http://www.omg.org/spec/DD/20100524/DI": "di"}
# <Element {ns}tag at 0x7f…> (lxml), <SomeClass object at 0x7f…>, bare addresses.
ELEMENT_REPR = re.compile(r"<Element \{([^}]*)\}(\w+) at 0x[0-9a-fA-F]+>")
OBJECT_REPR = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")
ADDRESS = re.compile(r"\s*\bat 0x[0-9a-fA-F]+")
NAMESPACED = re.compile(r"\{([^}]*)\}(\w+)")
# An exception's repr as the parser wraps it: TypeError("…") or KeyError('…').
WRAPPED = re.compile(r"^(\w+(?:Error|Exception))\((['\"])(.*)\2\)$", re.DOTALL)

# What a definition the engine found without an id is, by the word in its message.
_DEFINITION_KINDS = {
    "Message": Text(N_("message")), "Signal": Text(N_("signal")),
    "Error": Text(N_("error")), "Escalation": Text(N_("escalation")),
    "Correlation": Text(N_("correlation")), "Data Store": Text(N_("data store")),
}

_EVENT_REFERENCE = (
    "event_reference_missing",
    N_("the event refers to a message, signal, error or escalation that is not defined in "
       "this file"),
    N_("Define it at the top level of the diagram (e.g. a bpmn:message with that id) or pick "
       "one that exists in the event's properties"))

# (pattern on the message, code, message template, hint template, params from the match)
_KNOWN = [
    (r"Cannot resolve data(Input|Output)Association", "data_association_unresolved",
     N_("a data association of this element points to something that is not a data object or "
        "a data store"),
     N_("Connect the association to a data object of this process, or delete it"), None),
    (r"Multiple outgoing flows are not supported for tasks of type", "task_multiple_outgoing",
     N_("more than one sequence flow leaves this element, which the engine does not allow "
        "here"),
     N_("Draw one flow to a gateway and the alternatives from the gateway (exclusive: one "
        "path, parallel: all paths)"), None),
    (r"raise_validation_exception\(\) got an unexpected keyword argument", *_EVENT_REFERENCE,
     None),
    (r"Expected an? (Message|Signal|Error|Escalation) node", *_EVENT_REFERENCE, None),
    (r"Could not find messageRef from message event definition: (?P<name>.*)",
     "event_reference_missing",
     N_("the event refers to message '%(name)s', which is not defined in this file"),
     N_("Define a bpmn:message with that id at the top level of the diagram, or pick an "
        "existing one"), "name"),
    (r"A multiinstance task must specify a cardinality or a loop input data reference",
     "multi_instance_no_input",
     N_("the multi-instance has neither a number of instances nor an input collection"),
     N_("Set the loop cardinality (how many times) or the input collection to take the items "
        "from (loopDataInputRef)"), None),
    (r"A multiinstance task must specify exactly one of cardinality", "multi_instance_no_input",
     N_("the multi-instance has both a number of instances and an input collection"),
     N_("Keep either the loop cardinality or the input collection, not both"), None),
    (r"The loop (?P<which>input|output) data reference is missing from the IO specification",
     "multi_instance_io_missing",
     N_("the %(which)s collection of the multi-instance is not declared in the element's "
        "input/output specification"),
     N_("Declare it as a data input/output of the element, or remove the element's "
        "input/output specification"), "which"),
    (r"A loopMaximum or loopCondition must be specified", "loop_unbounded",
     N_("the loop has neither a maximum number of iterations nor a condition"),
     N_("Set a loop maximum or a loop condition, so the loop ends"), None),
    (r"Cancel Events may only be used with transactions", "cancel_outside_transaction",
     N_("a cancel event may only be attached to or placed in a transaction"),
     N_("Make the subprocess a transaction, or use another event"), None),
    (r"There is no support implemented for this task type", "element_unsupported",
     N_("the engine does not support this kind of element"),
     N_("Replace it with a supported element: a complex gateway, for example, by an "
        "exclusive or inclusive gateway"), None),
    (r"Sequential ordering for ad hoc subprocesses not supported", "element_unsupported",
     N_("an ad hoc subprocess may not be sequential"),
     N_("Set its ordering to parallel"), None),
    (r"Ad hoc subprocesses may not contain start or end events", "element_unsupported",
     N_("an ad hoc subprocess may not contain start or end events"),
     N_("Remove the start and end events from the ad hoc subprocess"), None),
    (r"Data Store with name (?P<name>.*) has no implementation", "data_store_unknown",
     N_("data store '%(name)s' is not available in this system"),
     N_("Remove the data store; keep the data in task data (process variables) instead"),
     "name"),
    (r"Data Store name is missing", "data_store_unknown",
     N_("a data store has no name"),
     N_("Remove the data store; keep the data in task data (process variables) instead"), None),
    (r"(?P<kind>Message|Signal|Error|Escalation|Correlation|Data Store) identifier is missing",
     "definition_id_missing", N_("a %(kind)s definition of this file has no id"),
     N_("Give every message, signal, error and escalation definition an id"), "kind"),
    (r"Correlation is missing correlation property retrieval expressions: (?P<name>.*)",
     "correlation_incomplete",
     N_("correlation property '%(name)s' has no retrieval expression"),
     N_("Give the correlation property a retrieval expression for each message, or remove "
        "it"), "name"),
    (r"Message identifier is missing from correlation property: (?P<name>.*)",
     "correlation_incomplete",
     N_("correlation property '%(name)s' names no message"),
     N_("Give the correlation property a retrieval expression for each message, or remove "
        "it"), "name"),
    (r"Duplicate process ID: (?P<name>.*)", "process_id_collision",
     N_("process id '%(name)s' appears twice"), N_("Give each process its own id"), "name"),
    (r"The process '(?P<name>.*)' was not found", "called_process_missing",
     N_("the called process '%(name)s' is not defined in this file, in the files deployed "
        "with it or among the deployed processes"),
     N_("Correct calledElement (without spaces around the id), or deploy the file defining "
        "the process"), "name"),
    (r"No start event found", "no_start_event", N_("the process has no start event"),
     N_("Add a start event to the process and connect it"), None),
    (r"Process (?P<name>.*) is not executable", "no_process",
     N_("process '%(name)s' is not executable"),
     N_('Mark the process executable (isExecutable="true")'), "name"),
    (r"Invalid Script Task", "script_missing", N_("the script task has no script"),
     N_("Write the Python script the task runs, or use another kind of task"), None),
    (r"A Service Task must have an operator", "unknown_service",
     N_("service task has no operation"),
     N_("Choose the operation the service task calls"), None),
    (r"(Unknown Time Specification|Time Specification Error)", "timer_invalid",
     N_("the timer has no valid date, duration or cycle"),
     N_('Timer expressions are Python: quote literal durations like "P3D" and dates like '
        '"2026-01-05T09:00:00+08:00", or name a variable holding one'), None),
    (r"Conditional event definition with missing condition", "condition_missing",
     N_("the conditional event has no condition"),
     N_("Write the condition (a Python expression) that triggers the event"), None),
    (r"When looking for a task spec, we found two items.*\((?P<name>.*)\)", "broken_flow",
     N_("a sequence flow leads to '%(name)s', which is not an element of this process"),
     N_("Reconnect both ends of the flow"), "name"),
    (r"maximum recursion depth exceeded", "chain_too_long",
     N_("the diagram has too many elements in a row for the engine"),
     N_("Split the process into smaller ones joined by call activities"), None),
]
_KNOWN = [(re.compile(pattern, re.DOTALL), code, message, hint, group)
          for pattern, code, message, hint, group in _KNOWN]


def clean(text):
    """`text` without Python reprs, XML namespaces and memory addresses: an lxml element
    becomes its prefixed tag (bpmn:targetRef), a wrapped exception its message."""
    text = str(text).strip()
    wrapped = WRAPPED.match(text)
    if wrapped:
        text = wrapped.group(3)
    text = ELEMENT_REPR.sub(lambda m: _prefixed(m.group(1), m.group(2)), text)
    text = OBJECT_REPR.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = ADDRESS.sub("", text)
    text = NAMESPACED.sub(lambda m: _prefixed(m.group(1), m.group(2)), text)
    return text.rstrip(". ") or "?"


def _prefixed(namespace, tag):
    prefix = PREFIXES.get(namespace)
    return f"{prefix}:{tag}" if prefix else tag


def _message(exc):
    # str() of a SpiffWorkflowException appends ". " and its notes; the message is args[0].
    args = getattr(exc, "args", ())
    return str(args[0]) if args and isinstance(args[0], str) else str(exc)


def describe(exc):
    """(code, message template, hint template, params) for an exception the engine raised
    while parsing a diagram."""
    if isinstance(exc, RecursionError):
        text = "maximum recursion depth exceeded"
    else:
        text = _message(exc)
    wrapped = WRAPPED.match(text.strip())
    inner = wrapped.group(3) if wrapped else text
    for pattern, code, message, hint, group in _KNOWN:
        found = pattern.search(inner)
        if found is None:
            continue
        params = {}
        if group == "kind":
            params["kind"] = _DEFINITION_KINDS[found.group("kind")]
        elif group == "which":
            params["which"] = (Text(N_("input")) if found.group("which") == "input"
                               else Text(N_("output")))
        elif group:
            params[group] = clean(found.group(group))
        return code, message, hint, params
    if type(exc).__name__ == "ValidationException" and getattr(exc, "line_number", None) \
            and not getattr(exc, "id", None):
        # The engine's own schema check (ours runs first, so this is rare).
        return ("bpmn_invalid", N_("not valid BPMN 2.0: %(detail)s"),
                N_("Fix the element at that line or export the diagram again"),
                {"detail": clean(inner)})
    return ("bpmn_invalid", N_("the engine refuses the diagram: %(detail)s"),
            N_("Fix this element; the message says what is wrong"),
            {"detail": clean(inner)})
