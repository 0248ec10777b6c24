"""Modelling hygiene: what may deploy but should be fixed (warnings, not problems).

Rules in the spirit of bpmnlint's recommended set, written for our conventions: names people
read (the English `name`, a Chinese `name_zh_CN` property), paths that end or start without
an event, tasks used as joins or splits, gateways that do nothing or two things, duplicate
flows, unpaired link events, disconnected elements, complex gateways, several blank start
events, events with several definitions.

Each rule is one pass over the elements of a process or subprocess (dictionaries keyed by
id, no nested scans), so a diagram of thousands of elements costs milliseconds.

Warnings never refuse a deploy, unless the process owner chose so: the process property
`warningsBlockDeploy` = "true" (spiffworkflow:properties on the process, set in the studio's
side panel, so the choice is versioned with the diagram). `blocking(xml)` gives the warnings
that then refuse the deploy, as problems (workflows/definitions.py).
"""
from workflows.bpmn_xml import ACTIVITIES, CONTAINERS, EVENTS, FLOW_NODES, GATEWAYS, \
    HUMAN_TASKS, SPIFF_NS, local
from workflows.calls import BPMN_NS, parse_xml
from workflows.encoding import to_utf8
from workflows.problems import N_, Problem

BLOCK_PROPERTY = "warningsBlockDeploy"
NAME_HINT = N_("Give it a short English name, and a Chinese one, in the side panel")
_PROPERTIES = f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}properties/{{{SPIFF_NS}}}property"
# Gateways whose outgoing flows carry conditions (the question they ask deserves a name).
_DECIDING = {"exclusiveGateway", "inclusiveGateway", "complexGateway"}
_EVENT_DEFINITIONS = {"messageEventDefinition", "timerEventDefinition", "errorEventDefinition",
                      "escalationEventDefinition", "signalEventDefinition",
                      "compensateEventDefinition", "conditionalEventDefinition",
                      "linkEventDefinition", "terminateEventDefinition",
                      "cancelEventDefinition"}


def _root(xml):
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    return parse_xml(to_utf8(xml))


def process_property(process, name):
    """The value of one spiffworkflow:property of an element, stripped, or None."""
    for prop in process.findall(_PROPERTIES):
        if prop.get("name") == name:
            return (prop.get("value") or "").strip()
    return None


def blocks_deploy(process):
    """Whether the process owner chose that warnings refuse this process's deploy."""
    return (process_property(process, BLOCK_PROPERTY) or "").lower() == "true"


def warnings(xml) -> list[Problem]:
    """Every hygiene warning of a document, each on its element; [] when it does not parse
    (validate() reports that)."""
    root = _root(xml)
    if root is None:
        return []
    found = []
    for process in root.iter(f"{{{BPMN_NS}}}process"):
        found += _process_warnings(process)
    return found


def blocking(xml) -> list[Problem]:
    """The warnings that refuse a deploy: those of processes whose owner set
    warningsBlockDeploy, plus one problem on each such process saying why."""
    return review(xml)[0]


def review(xml) -> tuple[list[Problem], list[Problem]]:
    """(the warnings that refuse the deploy, as in `blocking`; the other warnings)."""
    root = _root(xml)
    if root is None:
        return [], []
    refusing, others = [], []
    for process in root.iter(f"{{{BPMN_NS}}}process"):
        own = _process_warnings(process)
        if not own or not blocks_deploy(process):
            others += own
            continue
        pid = process.get("id")
        refusing.append(Problem.of(
            pid, pid, "warnings_block_deploy",
            N_("the process owner chose that warnings block its deploy (warnings found: "
               "%(count)s)"),
            N_("Fix the warnings listed, or clear 'Warnings block deploy' in the "
               "process's side panel"), process.sourceline, count=len(own)))
        refusing += own
    return refusing, others


def _process_warnings(process):
    pid = process.get("id")
    found = _chinese_names(process, pid)
    # Subprocesses are scopes of their own: flows never cross their border.
    scopes = [process]
    while scopes:
        scope = scopes.pop()
        found += _scope_warnings(scope, pid, top=scope is process)
        scopes += [c for c in scope if local(c) in CONTAINERS]
    return found


def _chinese_names(process, pid):
    """A process or a task people do without a Chinese name (workflows/labels.py) is shown
    in English on the Chinese pages."""
    from workflows.labels import zh_name
    hint = N_("Add the Chinese name in the side panel")
    found = []
    if not zh_name(process):
        found.append(Problem.of(pid, pid, "name_zh_missing",
                                N_("the process has no Chinese name"), hint,
                                process.sourceline))
    for el in process.iter():
        if local(el) in HUMAN_TASKS and not zh_name(el):
            found.append(Problem.of(el.get("id"), pid, "name_zh_missing",
                                    N_("the task has no Chinese name"), hint,
                                    el.sourceline))
    return found


def _definitions(el):
    return [c for c in el if local(c) in _EVENT_DEFINITIONS]


def _named(el):
    return bool((el.get("name") or "").strip())


def _is_compensation(el, definitions):
    return el.get("isForCompensation") == "true" or any(
        local(d) == "compensateEventDefinition" for d in definitions)


def _is_link(definitions):
    return any(local(d) == "linkEventDefinition" for d in definitions)


def _condition(flow):
    expr = next((c for c in flow if local(c) == "conditionExpression"), None)
    return " ".join((expr.text or "").split()) if expr is not None else None


def _scope_warnings(scope, pid, top):
    nodes = [c for c in scope if local(c) in FLOW_NODES and c.get("id")]
    flows = [c for c in scope if local(c) == "sequenceFlow"]
    incoming, outgoing, conditional = {}, {}, set()
    seen_flows = {}
    found = []

    def warn(el, code, message, hint, **params):
        found.append(Problem.of(el.get("id"), pid, code, message, hint, el.sourceline,
                                **params))

    for flow in flows:
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        incoming[target] = incoming.get(target, 0) + 1
        outgoing[source] = outgoing.get(source, 0) + 1
        condition = _condition(flow)
        if condition is not None:
            conditional.add(source)
        key = (source, target, condition)
        if key in seen_flows:
            warn(flow, "duplicate_flow",
                 N_("the same sequence flow as %(other)s: same source, target and condition"),
                 N_("Delete one of them, or the next step runs twice"),
                 other=seen_flows[key])
        else:
            seen_flows[key] = flow.get("id")

    # Without flows between them, the children of an ad-hoc subprocess start and end freely.
    free = local(scope) == "adHocSubProcess"
    concurrent = _concurrent_joins(nodes, flows)
    blank_starts, has_end = [], False
    links = {}
    for el in nodes:
        kind, nid = local(el), el.get("id")
        definitions = _definitions(el)
        ins, outs = incoming.get(nid, 0), outgoing.get(nid, 0)
        compensation = _is_compensation(el, definitions)
        event_sub = kind in CONTAINERS and el.get("triggeredByEvent") == "true"
        has_end = has_end or kind == "endEvent"

        _label(el, kind, definitions, outs, nid in conditional, warn)
        if kind == "startEvent" and not definitions:
            blank_starts.append(el)
        if kind in EVENTS and len(definitions) > 1:
            warn(el, "event_definitions",
                 N_("the event has %(count)s event definitions, so it is unclear what "
                    "triggers it"),
                 N_("Keep one definition, or use one event for each"), count=len(definitions))
        if kind == "complexGateway":
            warn(el, "complex_gateway",
                 N_("a complex gateway: its rule is hidden in an expression few readers follow"),
                 N_("Use exclusive, inclusive or parallel gateways instead"))
        if _is_link(definitions) and kind in ("intermediateThrowEvent",
                                              "intermediateCatchEvent"):
            name = next((d.get("name") for d in definitions if local(d) == "linkEventDefinition"
                         and d.get("name")), None) or (el.get("name") or "").strip()
            links.setdefault(name, {}).setdefault(kind, []).append(el)

        if not free and not event_sub and not compensation:
            link = _is_link(definitions)
            if ins == 0 and outs == 0 and kind != "boundaryEvent":
                warn(el, "disconnected", N_("the element is connected to nothing"),
                     N_("Connect it with sequence flows, or delete it"))
                continue
            if ins == 0 and kind not in ("startEvent", "boundaryEvent") and not (
                    link and kind == "intermediateCatchEvent"):
                warn(el, "implicit_start",
                     N_("the flow starts here without a start event"),
                     N_("Connect a start event or an earlier step to it"))
            if outs == 0 and kind != "endEvent" and not (
                    link and kind == "intermediateThrowEvent"):
                warn(el, "implicit_end", N_("the flow ends here without an end event"),
                     N_("Connect it to an end event, so the path visibly ends on purpose"))
        if kind in ACTIVITIES and nid in concurrent:
            warn(el, "fake_join",
                 N_("%(count)s sequence flows enter the step without a gateway, some from "
                    "parallel paths: it runs once for each that arrives, it does not wait for "
                    "them all"),
                 N_("Join the parallel paths with a parallel gateway before the step"),
                 count=ins)
        if kind in ACTIVITIES and outs > 1:
            warn(el, "implicit_split",
                 N_("%(count)s sequence flows leave the step without a gateway: every one "
                    "whose condition holds is taken, several at once"),
                 N_("Put a gateway after the step: exclusive to take one path, parallel to "
                    "take them all"), count=outs)
        if kind in GATEWAYS and ins > 1 and outs > 1:
            warn(el, "gateway_join_fork", N_("the gateway both joins and splits flows"),
                 N_("Use two gateways: one that joins, then one that splits"))
        if kind in GATEWAYS and ins == 1 and outs == 1:
            warn(el, "superfluous_gateway",
                 N_("the gateway has one flow in and one out, so it does nothing"),
                 N_("Delete it and connect the flows directly"))

    if len(blank_starts) > 1:
        for el in blank_starts[1:]:
            warn(el, "blank_start_events",
                 N_("another start event without a trigger in the same process or "
                    "subprocess, besides %(first)s"),
                 N_("Keep one blank start event; give the others a message, timer or signal"),
                 first=blank_starts[0].get("id"))
    if not has_end and not free and nodes:
        message = N_("the process has no end event") if top else \
            N_("the subprocess has no end event")
        warn(scope, "no_end_event", message, N_("Add an end event where each path finishes"))
    for name, kinds in links.items():
        for kind, other in (("intermediateThrowEvent", "intermediateCatchEvent"),
                            ("intermediateCatchEvent", "intermediateThrowEvent")):
            if other in kinds:
                continue
            for el in kinds.get(kind, []):
                if kind == "intermediateThrowEvent":
                    warn(el, "link_unpaired",
                         N_("no link catch event named '%(link)s' in the same process: the "
                            "flow stops here"),
                         N_("Add a link catch event of the same name, or rename this one"),
                         link=name or "")
                else:
                    warn(el, "link_unpaired",
                         N_("no link throw event named '%(link)s' in the same process: "
                            "nothing ever arrives here"),
                         N_("Add a link throw event of the same name, or rename this one"),
                         link=name or "")
    return found


def _label(el, kind, definitions, outs, has_conditions, warn):
    """Names people read on the diagram and in the histories (bpmnlint's label-required).
    Unnamed tasks people do are refused by validation (name_missing), not warned here."""
    if _named(el) or kind in HUMAN_TASKS:
        return
    if kind in ACTIVITIES:
        warn(el, "label_required",
             N_("the step has no name, so the diagram and the case histories show its id"),
             NAME_HINT)
    elif kind in EVENTS and definitions:
        warn(el, "label_required",
             N_("the event has no name, so nobody can tell what it waits for or signals"),
             NAME_HINT)
    elif kind in _DECIDING and outs > 1 and has_conditions:
        warn(el, "label_required",
             N_("the gateway decides between conditional paths but has no name"),
             N_("Name it after the question it decides, e.g. 'Paid in full?'"))


# Work allowed for the fake-join analysis of one scope, in node and flow visits: each branch
# is followed only up to its join, so structured diagrams stay far below it. Past it every
# task with several incoming flows in a scope with parallel paths is warned (bpmnlint's
# plain rule) rather than spend quadratic time.
CONCURRENCY_BUDGET = 200_000
_FORKING = {"parallelGateway", "inclusiveGateway", "complexGateway"}


def _concurrent_joins(nodes, flows):
    """Ids of activities where sequence flows of different parallel paths arrive.

    Our diagrams send work back to an earlier step (a file returned for correction) by a
    second flow into that step: only one path is ever active there, so that is no fake join.
    It is one when the flows can carry tokens at the same time: they come from different
    branches of a parallel, inclusive or complex split, of a task with several outgoing
    flows, or of a non-interrupting boundary event and its task. Each branch is followed
    forward (not through a gateway that joins in parallel, nor back into its split)."""
    kinds = {el.get("id"): local(el) for el in nodes}
    out_flows, in_flows = {}, {}
    for flow in flows:
        edge = (flow.get("id"), flow.get("sourceRef"), flow.get("targetRef"))
        out_flows.setdefault(edge[1], []).append(edge)
        in_flows.setdefault(edge[2], []).append(edge)
    joins = {nid for nid, kind in kinds.items()
             if kind in ACTIVITIES and len(in_flows.get(nid, ())) > 1}
    if not joins:
        return set()
    splits = []  # (where the paths split, [first flows of each branch])
    for nid, kind in kinds.items():
        outs = out_flows.get(nid, [])
        if len(outs) > 1 and (kind in _FORKING or kind in ACTIVITIES):
            splits.append((nid, [[edge] for edge in outs]))
    for el in nodes:
        if local(el) == "boundaryEvent" and el.get("cancelActivity") == "false":
            task = el.get("attachedToRef")
            splits.append((el.get("id"), [out_flows.get(task, []),
                                          out_flows.get(el.get("id"), [])]))
    if not splits:
        return set()
    budget = CONCURRENCY_BUDGET
    syncing = {nid for nid, kind in kinds.items()
               if kind in ("parallelGateway", "inclusiveGateway")
               and len(in_flows.get(nid, ())) > 1}
    found = set()
    for split, branches in splits:
        reached = []
        for first in branches:
            seen, todo = set(), [target for _f, _s, target in first]
            while todo:
                current = todo.pop()
                if current in seen or current == split or current not in kinds:
                    continue
                seen.add(current)
                if current not in syncing:
                    nexts = out_flows.get(current, ())
                    budget -= 1 + len(nexts)
                    if budget < 0:
                        return set(joins)
                    todo += [target for _f, _s, target in nexts]
            reached.append(({f for f, _s, _t in first}, seen))
        # Only the joins this split's branches reach (the work stays within the budget).
        for nid in {n for _starts, seen in reached for n in seen} & joins:
            if nid in found:
                continue
            arriving = []  # for each incoming flow, the branches it may carry
            for fid, source, _t in in_flows[nid]:
                arriving.append({i for i, (starts, seen) in enumerate(reached)
                                 if fid in starts or source in seen})
            carrying = [a for a in arriving if a]
            # Two flows may carry different branches: all of them carry one and the same.
            if len(carrying) > 1 and len(set().union(*carrying)) > 1:
                found.add(nid)
    return found
