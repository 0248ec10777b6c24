"""Diagrams the engine accepts but that break at run time: each check here refuses one with a
problem on the element that says why and how to fix it.

_Checker (workflows/validation.py) calls every function of DOCUMENT_CHECKS once per document
with (checker, root) and every function of PROCESS_CHECKS once per executable process with
(checker, process); a check reports through checker.add(...) (see workflows/problems.py).
Each trap was seen at run time first (tests/test_runtime_traps.py keeps the proofs).
"""
from workflows.bpmn_xml import BPMN_NS, CONTAINERS, FLOW_NODES, NS, local
from workflows.engine import MAX_CHAIN
from workflows.problems import N_

# What the engine runs a script as: Python, whatever scriptFormat says. These say so too.
PYTHON_FORMATS = {"", "python", "python3", "py", "text/python", "text/x-python",
                  "application/python", "application/x-python"}


def _q(name):
    return f"{{{BPMN_NS}}}{name}"


def process_without_id(checker, process):
    """The engine parses it as process None; deploy then fails in the database."""
    if (process.get("id") or "").strip():
        return
    # Validation reports an element without an id (id_missing); this says what it breaks.
    if not any(p.code == "id_missing" and p.line == process.sourceline for p in checker.problems):
        checker.add(None, None, "process_id_missing", N_("a process has no id"),
                    N_("Give the process an id (letters, digits and _), e.g. collection"),
                    el=process)


def script_tasks(checker, process):
    """The engine runs every script as Python (a JavaScript or Groovy script fails or, worse,
    runs as Python), and a script task without a script fails when it is reached."""
    for el in process.iter(_q("scriptTask")):
        nid = el.get("id")
        fmt = (el.get("scriptFormat") or "").strip()
        if fmt.lower() not in PYTHON_FORMATS:
            checker.add(nid, checker.pid, "script_not_python",
                        N_("the script is written in '%(format)s', but scripts run as Python"),
                        N_("Rewrite the script in Python and set its format to python (or "
                           "remove the format)"), el=el, format=fmt)
        script = el.find("bpmn:script", NS)
        if script is None or not (script.text or "").strip():
            checker.add(nid, checker.pid, "script_missing", N_("the script task has no script"),
                        N_("Write the Python script the task runs, or use another kind of "
                           "task"), el=el)


def lane_references(checker, process):
    """The engine matches a lane's flowNodeRef to ids exactly: ' task_1 ' puts task_1 in no
    lane, so it gets no role and nobody can ever take it."""
    for ref in process.iter(_q("flowNodeRef")):
        text = ref.text or ""
        if text and text != text.strip():
            lane = ref.getparent()
            target = text.strip()
            node = checker.elements.get(target)
            checker.add(target if node is not None else lane.get("id"), checker.pid,
                        "lane_reference_spaces",
                        N_("lane reference '%(reference)s' in lane '%(lane)s' has spaces "
                           "around the id, so the engine puts '%(id)s' in no lane"),
                        N_("Remove the spaces and line breaks around the id in the lane's "
                           "flowNodeRef"), el=ref, reference=text, lane=lane.get("name")
                        or lane.get("id") or "", id=target)


def called_elements(checker, process):
    """The engine looks up calledElement exactly; validation's call checks strip it."""
    for el in process.iter(_q("callActivity")):
        called = el.get("calledElement") or ""
        if called and called != called.strip():
            checker.add(el.get("id"), checker.pid, "called_element_spaces",
                        N_("calledElement '%(called)s' has spaces around the process id"),
                        N_("Remove the spaces around the id in calledElement"), el=el,
                        called=called)


def sequential_multi_instance(checker, process):
    """A sequential multi-instance merges each finished instance's data back into the task
    unless its results go to an output collection (loopDataOutputRef with an
    outputDataItem): the item variable is then already there, and the engine refuses to
    start the second instance ("Multiinstance input item … already exists")."""
    for loop in process.iter(_q("multiInstanceLoopCharacteristics")):
        if loop.get("isSequential") != "true":
            continue
        items = [loop.find(f"bpmn:{tag}", NS) for tag in ("inputDataItem", "outputDataItem")]
        if not any(i is not None for i in items):
            continue
        if loop.find("bpmn:loopDataOutputRef", NS) is not None and items[1] is not None:
            continue
        task = loop.getparent()
        item = next(i for i in items if i is not None)
        checker.add(task.get("id"), checker.pid, "multi_instance_stuck",
                    N_("this sequential multi-instance stops after its first instance: "
                       "without an output collection and output item, the item '%(item)s' is "
                       "copied back into the task data and the engine refuses to start the "
                       "next instance"),
                    N_("Add an output collection and an output item (the result of each "
                       "instance), or make the multi-instance parallel"), el=loop,
                    item=item.get("name") or item.get("id") or "")


def message_flows(checker, root):
    """A message flow between two executable pools deploys as two unrelated processes:
    the message is never delivered from one to the other, and the receiver waits forever."""
    executable = {p.get("id"): p.get("isExecutable", "true") == "true"
                  for p in root.iter(_q("process")) if p.get("id")}
    pool_process = {p.get("id"): p.get("processRef") for p in root.iter(_q("participant"))}
    owner = {}
    for process in root.iter(_q("process")):
        for el in process.iter():
            if local(el) in FLOW_NODES and el.get("id"):
                owner[el.get("id")] = process.get("id")

    def process_of(ref):
        return pool_process.get(ref) or owner.get(ref)

    for flow in root.iter(_q("messageFlow")):
        ends = [process_of(flow.get("sourceRef")), process_of(flow.get("targetRef"))]
        if None in ends or ends[0] == ends[1] or not all(executable.get(e) for e in ends):
            continue
        checker.add(flow.get("id"), None, "message_flow_between_processes",
                    N_("this message flow joins two executable processes, '%(source)s' and "
                       "'%(target)s': they are deployed as separate processes and the "
                       "message never reaches the other one, which waits forever"),
                    N_("Keep one executable process (mark the other pool not executable, "
                       "as a partner outside the system), or deliver the message through "
                       "the case (a service task)"), el=flow, source=ends[0], target=ends[1])


def long_chains(checker, root):
    """The engine's parser recurses along each chain of elements in a row: longer chains
    than MAX_CHAIN are refused on the element where the limit is passed (the depth is
    counted as the parser walks: depth-first from the start events, each element once)."""
    for container in root.iter(_q("process"), *(_q(c) for c in CONTAINERS)):
        nodes = {c.get("id"): c for c in container if local(c) in FLOW_NODES and c.get("id")}
        if len(nodes) <= MAX_CHAIN:
            continue
        targets = {}
        for flow in container:
            if local(flow) == "sequenceFlow":
                targets.setdefault(flow.get("sourceRef"), []).append(flow.get("targetRef"))
        seen = set()
        stack = [(nid, 1) for nid, el in nodes.items() if local(el) == "startEvent"]
        while stack:
            nid, depth = stack.pop()
            if nid in seen or nid not in nodes:
                continue
            seen.add(nid)
            if depth > MAX_CHAIN:
                process = container
                while local(process) != "process":
                    process = process.getparent()
                checker.add(nid, process.get("id"), "chain_too_long",
                            N_("more than %(limit)s elements in a row: the engine cannot "
                               "follow a chain this long"),
                            N_("Split the process into smaller ones joined by call "
                               "activities"), el=nodes[nid], limit=MAX_CHAIN)
                break
            stack += [(t, depth + 1) for t in reversed(targets.get(nid, ()))]


DOCUMENT_CHECKS = [message_flows, long_chains]
PROCESS_CHECKS = [process_without_id, script_tasks, lane_references, called_elements,
                  sequential_multi_instance]
