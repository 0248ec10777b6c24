"""Validation of BPMN diagrams before they are saved or deployed.

`validate(xml, forms)` returns every problem at once, each with the element id the browser
puts a marker on, a stable `code` the web layer translates, an English message and a hint.
It never raises on bad input. Deploy refuses a diagram while any problem remains.

Process ids. A process id is the key of its versions, so it must be unique:
- twice in one document, or in two files of one upload: refused (process_id_collision);
- a process id belongs to the file name it was last deployed from; deploying it from a file
  of another name is refused (rename the process id, or deploy from that file). The check runs
  when a real file name is given; `validate(xml, forms)` with the default DRAFT_FILENAME (an
  unsaved browser draft) skips it, deploy_xml always runs it.

Call activities. A calledElement not defined in the document is looked up in the other
documents of the same upload, then among the deployed processes (latest version), see
workflows/calls.py; one found nowhere is called_process_missing, a process that
calls itself, directly or through others, is call_cycle.
"""
from __future__ import annotations

import json
from pathlib import Path

from lxml import etree

from accounts.roles import ROLES
from forms.builder import check_spec
# CallLibrary is re-exported: callers build one for validate_files.
from workflows.bpmn_xml import (ACTIVITIES, CONTAINERS, EVENTS, FLOW_NODES, GATEWAYS,  # noqa: F401
                                HUMAN_TASKS, NS, SPIFF_NS, children as _children,
                                local as _local, text_of as _text)
from workflows.calls import BPMN_NS, CallLibrary, parse_xml, process_ids, resolve_calls
from workflows.encoding import to_utf8
from workflows import engine_messages, traps
from workflows.hygiene import warnings  # noqa: F401 — re-exported
# code_problem and timer_problem are re-exported.
from workflows.code_checks import CodeChecks, code_problem, timer_problem  # noqa: F401
# Problem and DRAFT_FILENAME are re-exported: callers import them from here.
from workflows.problems import DRAFT_FILENAME, N_, Problem, Text  # noqa: F401
from workflows.services import REGISTRY

PRIORITIES = ("high", "normal", "low")
# Column sizes of process_definitions / human_tasks (PostgreSQL refuses longer values).
MAX_KEY, MAX_NAME = 80, 200


# Elements the engine and the checks find by id: without one nothing can refer to them.
NEEDS_ID = FLOW_NODES | {"process", "sequenceFlow", "lane"}


def process_of(el):
    """The id of the process holding `el` (itself when it is one), else None."""
    while el is not None and _local(el) != "process":
        el = el.getparent()
    return el.get("id") if el is not None else None


BROKEN_FLOW = {
    ("sourceRef", False): N_("sequence flow sourceRef '%(ref)s' is not an element of this "
                             "process"),
    ("targetRef", False): N_("sequence flow targetRef '%(ref)s' is not an element of this "
                             "process"),
    ("sourceRef", True): N_("sequence flow sourceRef '%(ref)s' has spaces around the id"),
    ("targetRef", True): N_("sequence flow targetRef '%(ref)s' has spaces around the id")}
UNKNOWN_REFERENCE = {
    "notSameUserAs": N_("notSameUserAs names '%(other)s', which is not a user task of this "
                        "process"),
    "sameUserAs": N_("sameUserAs names '%(other)s', which is not a user task of this process")}
# The code checked in a task, by element: what a problem calls it.
SCRIPTS = {"preScript": Text(N_("preScript")), "postScript": Text(N_("postScript"))}
LOOP_EXPRESSIONS = {"loopCardinality": Text(N_("loopCardinality")),
                    "completionCondition": Text(N_("completionCondition")),
                    "loopCondition": Text(N_("loopCondition"))}


class FormLoadError(str):
    """Stands in for a form file that could not be read as JSON (see load_forms)."""


def load_forms(forms_dir) -> dict:
    """Every form spec in forms_dir by key; an unreadable file maps to a FormLoadError."""
    forms = {}
    for path in sorted(Path(forms_dir).glob("*.json")) if forms_dir else ():
        try:
            forms[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            forms[path.stem] = FormLoadError(str(exc))
    return forms


def deployed_owners() -> dict[str, str]:
    """process id -> file name of its latest deployed version (needs an app context)."""
    from workflows.models import ProcessDefinition
    from extensions import db
    owners = {}
    rows = db.session.query(ProcessDefinition.process_key, ProcessDefinition.version,
                            ProcessDefinition.filename).order_by(ProcessDefinition.version)
    for key, _version, filename in rows:
        owners[key] = filename
    return owners


def form_keys_in(xml) -> set:
    """The formKey values written in a document."""
    root = parse_xml(xml)
    if root is None:
        return set()
    return {p.get("value") for p in root.iter(f"{{{SPIFF_NS}}}property")
            if p.get("name") == "formKey" and p.get("value")}


class _Checker(CodeChecks):
    def __init__(self, filename, forms, deployed, library=None):
        self.filename, self.forms, self.deployed = filename, forms, deployed
        self.library = library
        self.problems, self.related, self.checked_forms, self.elements = [], set(), set(), {}
        self.sandbox_spent, self.at_line = 0.0, None

    def add(self, element_id, process_id, code, message, hint, el=None, line=None, **params):
        """Record a problem. `message` and `hint` are English templates marked with N_,
        filled from `params` (see workflows/problems.py); they are translated when shown."""
        if line is None and el is not None:
            line = el.sourceline
        self.problems.append(Problem.of(element_id, process_id, code, message, hint, line,
                                        self.filename, **params))

    # ---- document level ----------------------------------------------------------------

    def run(self, xml):
        if isinstance(xml, str):
            xml = xml.encode("utf-8")
        if not isinstance(xml, (bytes, bytearray)) or not xml.strip():
            self.add(None, None, "not_xml", N_("the file is empty"),
                     N_("Upload a BPMN 2.0 XML file"))
            return
        try:
            bytes(xml).decode("utf-8")
        except UnicodeDecodeError as exc:
            self.add(None, None, "not_xml", N_("the file is not UTF-8 text: %(detail)s"),
                     N_("Save the diagram as UTF-8 XML, or declare its encoding in the first "
                        'line (<?xml version="1.0" encoding="GBK"?>)'), detail=exc.reason)
            return
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        try:
            root = etree.fromstring(bytes(xml), parser)
        except etree.XMLSyntaxError as exc:
            self.add(None, None, "not_xml", N_("not well-formed XML: line %(lineno)s: %(detail)s"),
                     N_("Fix the XML or export the diagram again from the editor"),
                     line=exc.lineno, lineno=exc.lineno, detail=exc.msg)
            return
        if root.getroottree().docinfo.doctype:
            self.add(None, None, "not_bpmn", N_("a DOCTYPE is not allowed in a BPMN file"),
                     N_("Remove the <!DOCTYPE …> declaration"), line=1)
            return
        if root.tag != f"{{{BPMN_NS}}}definitions":
            self.add(None, None, "not_bpmn",
                     N_("the root element is <%(tag)s>, not a BPMN 2.0 <bpmn:definitions>"),
                     N_("Upload a BPMN 2.0 diagram (namespace %(namespace)s)"), el=root,
                     tag=etree.QName(root).localname, namespace=BPMN_NS)
            return
        self.root = root
        duplicates = self.check_ids(root)
        schema_ok = self.check_schema(root, duplicates)
        processes = [p for p in root.iter(f"{{{BPMN_NS}}}process")
                     if p.get("isExecutable", "true") == "true"]
        if not processes:
            self.add(None, None, "no_process", N_("the file has no executable process"),
                     N_('Add a process with isExecutable="true"'), el=root)
            return
        for process in processes:
            self.check_process(process)
        for check in traps.DOCUMENT_CHECKS:
            check(self, root)
        called = self.check_calls(xml)
        if schema_ok and not duplicates and not self.missing_ids:
            self.check_with_engine(xml, called)

    def check_ids(self, root):
        """Duplicate ids, and ids missing or with spaces around them. Returns the duplicates;
        elements without an id are in self.missing_ids."""
        seen, duplicates, missing = {}, set(), []
        for el in root.iter():
            if _local(el) is None:  # extension elements (e.g. service operators) are not ids
                continue
            ident = el.get("id")
            if not (ident or "").strip():
                if _local(el) in NEEDS_ID:
                    missing.append(el)
                continue
            if ident != ident.strip():
                # Flows, lanes and properties name it without the spaces: nothing would match.
                self.add(ident, process_of(el), "id_whitespace",
                         N_("the id '%(id)s' has spaces around it"),
                         N_("Remove the spaces from the id"), el=el, id=ident)
            if ident in seen:
                duplicates.add(ident)
                if _local(el) == "process" and _local(seen[ident]) == "process":
                    self.add(ident, ident, "process_id_collision",
                             N_("process id '%(id)s' appears twice in this file"),
                             N_("Give each process its own id"), el=el, id=ident)
                else:
                    self.add(ident, None, "duplicate_id",
                             N_("id '%(id)s' is used by more than one element (lines "
                                "%(first)s and %(second)s)"),
                             N_("Give every element its own id"), el=el, id=ident,
                             first=seen[ident].sourceline, second=el.sourceline)
            else:
                seen[ident] = el
        self.elements, self.missing_ids = seen, missing
        for el in missing:
            self.add(None, process_of(el), "id_missing",
                     N_("the element <bpmn:%(tag)s> on line %(lineno)s has no id"),
                     N_("Give it an id of its own (drawing it again in the editor gives one)"),
                     el=el, tag=_local(el), lineno=el.sourceline)
        return duplicates

    def check_schema(self, root, duplicates):
        from SpiffWorkflow.spiff.parser.process import VALIDATOR
        VALIDATOR.preprocess(root)  # as the engine does: renames one bpmn-js quirk
        if VALIDATOR.validator.validate(root):
            return True
        reported = False
        for error in VALIDATOR.validator.error_log:
            message = error.message.replace("{" + BPMN_NS + "}", "bpmn:").replace(
                "{" + SPIFF_NS + "}", "spiffworkflow:")
            if "xs:ID" in message and any(f"'{d}'" in message for d in duplicates):
                continue
            self.add(*self.element_at(error.line), "bpmn_invalid",
                     N_("not valid BPMN 2.0: line %(lineno)s: %(detail)s"),
                     N_("Fix the element at that line or export the diagram again"),
                     line=error.line, lineno=error.line, detail=message)
            reported = True
        return not reported

    def element_at(self, line):
        """(element id, process id) of the element at `line`, or of its nearest ancestor with
        an id."""
        if self.at_line is None:  # indexed at the first schema error
            self.at_line = {}
            for el in self.root.iter():
                if isinstance(el.tag, str):
                    self.at_line.setdefault(el.sourceline, el)
        el = self.at_line.get(line)
        if el is None:
            return None, None
        while el is not None and not el.get("id"):
            el = el.getparent()
        return (el.get("id") if el is not None else None, process_of(el))

    def check_calls(self, xml):
        """Call activities name a process found here, in the upload or deployed, and no
        process calls itself; returns the other documents the calls need."""
        resolution = resolve_calls(xml, self.library)
        for problem in resolution.problems:
            el, path = problem.element, problem.path
            nid, called = el.get("id"), path[1]
            chain = " → ".join(path)
            self.related.add(nid)
            if problem.code == "call_cycle":
                self.add(nid, problem.process_id, "call_cycle",
                         N_("calling '%(called)s' makes a cycle: %(chain)s"),
                         N_("A process may not call itself, directly or through other "
                            "processes: remove one of these calls"), el=el, called=called,
                         chain=chain)
            elif not called:
                self.add(nid, problem.process_id, "called_process_missing",
                         N_("the call activity names no process to call"),
                         N_("Set calledElement to the id of the process to call"), el=el)
            else:
                missing = path[-1]
                hint = N_("Deploy the file defining '%(missing)s' together with this one "
                          "(bpmn deploy without arguments deploys every file), or correct "
                          "calledElement")
                if len(path) == 2:
                    self.add(nid, problem.process_id, "called_process_missing",
                             N_("the called process '%(missing)s' is not defined in this "
                                "file, in the files deployed with it or among the deployed "
                                "processes"), hint, el=el, missing=missing)
                else:
                    self.add(nid, problem.process_id, "called_process_missing",
                             N_("'%(caller)s' (called through %(chain)s) calls '%(missing)s', "
                                "which is not defined in this file, in the files deployed "
                                "with it or among the deployed processes"), hint, el=el,
                             caller=path[-2], chain=chain, missing=missing)
        return resolution.documents

    def check_with_engine(self, xml, called=()):
        """What SpiffWorkflow itself refuses (it stops at its first problem per process); in a
        deep thread, as deploy parses, so a long chain of elements does not overflow."""
        from workflows.engine import deeply
        deeply(self._check_with_engine, xml, called)

    def _check_with_engine(self, xml, called):
        from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser, VALIDATOR
        parser = SpiffBpmnParser(validator=VALIDATOR)
        try:
            parser.add_bpmn_str(bytes(xml), filename=self.filename)
        except Exception as exc:  # noqa: BLE001 — whatever the engine refuses is a problem
            self.engine_problem(exc, None)
            return
        own = parser.get_process_ids()
        for document in called:
            try:
                parser.add_bpmn_str(document.xml, filename=document.filename)
            except Exception:  # noqa: BLE001 — that file's own validation reports it
                pass
        # The engine would only repeat an unresolved call without naming the element.
        unresolved = {p.process_id for p in self.problems
                      if p.code in ("called_process_missing", "call_cycle")}
        for process_id in own:
            try:
                parser.get_spec(process_id)
                if process_id not in unresolved:
                    parser.get_subprocess_specs(process_id)
            except Exception as exc:  # noqa: BLE001
                self.engine_problem(exc, process_id)

    def engine_problem(self, exc, process_id):
        """The engine's refusal, unless it only repeats a cause reported already: an element
        in self.related (a broken flow's ends, an unresolved call), or a flow from or to one."""
        element_id = getattr(exc, "id", None) or None
        el = self.elements.get(element_id) if element_id else None
        if element_id in self.related or (el is not None and _local(el) == "sequenceFlow" and (
                {el.get("sourceRef"), el.get("targetRef")} & self.related)):
            return
        line = getattr(exc, "line_number", None)
        code, message, hint, params = engine_messages.describe(exc)
        problem = Problem.of(element_id, process_id, code, message, hint,
                             line if isinstance(line, int) else None, self.filename, **params)
        if problem.line is None and el is not None:
            problem.line = el.sourceline
        if not any((p.code, p.element_id, p.message) == (code, element_id, problem.message)
                   for p in self.problems):
            self.problems.append(problem)

    # ---- per process -----------------------------------------------------------------------

    def check_process(self, process):
        pid = process.get("id")
        self.pid = pid
        if pid and len(pid) > MAX_KEY:
            self.add(pid, pid, "too_long", N_("process id is longer than %(limit)s characters"),
                     N_("Use a shorter process id"), el=process, limit=MAX_KEY)
        if len(process.get("name") or "") > MAX_NAME:
            self.add(pid, pid, "too_long",
                     N_("process name is longer than %(limit)s characters"),
                     N_("Use a shorter process name"), el=process, limit=MAX_NAME)
        if (pid and self.deployed is not None and pid in self.deployed
                and self.deployed[pid] != self.filename):
            other = self.deployed[pid]
            self.add(pid, pid, "process_id_collision",
                     N_("process id '%(id)s' already belongs to %(file)s"),
                     N_("Rename the process id, or deploy it from %(file)s"), el=process,
                     id=pid, file=other)
        # Indexed once: the checks below look elements up instead of scanning the process.
        self.nodes, self.outgoing, nodes, flows = {}, {}, [], []
        for el in process.iter():
            kind = _local(el)
            if kind in FLOW_NODES:
                nodes.append(el)
                if el.get("id"):
                    self.nodes[el.get("id")] = el
            elif kind == "sequenceFlow":
                flows.append(el)
                self.outgoing.setdefault(el.get("sourceRef"), []).append(el)
        self.check_lanes(process)
        self.check_container(process, top=True)
        for el in nodes:
            self.check_node(el, _local(el))
        for el in flows:
            self.check_flow(el)
        for check in traps.PROCESS_CHECKS:
            check(self, process)

    def check_lanes(self, process):
        lane_of = {}
        for ref in process.iter(f"{{{BPMN_NS}}}flowNodeRef"):
            if ref.text:
                lane_of[ref.text.strip()] = ref.getparent()
        memo = {}

        def lane_for(el):
            # As the engine does: a task inside a subprocess takes the subprocess's lane.
            # Memoised: each container's lane is found once (linear in the process size).
            if el in memo:
                return memo[el]
            parent = el.getparent()
            outer = lane_for(parent) if parent is not None and parent is not process else None
            memo[el] = outer if outer is not None else lane_of.get(el.get("id"))
            return memo[el]

        bad_lanes = {}
        for node_id, el in self.nodes.items():
            if _local(el) not in HUMAN_TASKS:
                continue
            lane = lane_for(el)
            if lane is None:
                self.add(node_id, self.pid, "no_lane",
                         N_("this task is in no lane, so nobody can take it"),
                         N_("Put it in a lane named after a role: %(roles)s"), el=el,
                         roles=", ".join(ROLES))
            elif lane.get("name") not in ROLES:
                bad_lanes.setdefault(lane.get("id") or node_id, lane)
        for lane_id, lane in bad_lanes.items():
            self.add(lane_id, self.pid, "unknown_lane",
                     N_("lane '%(lane)s' is not a role (%(roles)s)"),
                     N_("Name the lane after one of these role keys"), el=lane,
                     lane=lane.get("name") or "", roles=", ".join(ROLES))

    def check_container(self, container, top=False):
        """No start event; flow nodes not reachable from a start event by sequence flows."""
        cid = container.get("id")
        nodes = {c.get("id"): c for c in container if _local(c) in FLOW_NODES and c.get("id")}
        kind = _local(container)
        if kind == "adHocSubProcess":
            reachable = set(nodes)
        else:
            starts = [i for i, c in nodes.items() if _local(c) == "startEvent"]
            if not starts:
                if top:
                    self.add(cid, self.pid, "no_start_event",
                             N_("the process has no start event"),
                             N_("Add a start event to the process and connect it"),
                             el=container)
                else:
                    self.add(cid, self.pid, "no_start_event",
                             N_("the subprocess has no start event"),
                             N_("Add a start event to the subprocess and connect it"),
                             el=container)
                return
            targets = {}
            for flow in _children(container, {"sequenceFlow"}):
                targets.setdefault(flow.get("sourceRef"), []).append(flow.get("targetRef"))
            for c in nodes.values():
                if _local(c) == "boundaryEvent":
                    targets.setdefault(c.get("attachedToRef"), []).append(c.get("id"))
            links = {}
            for c in nodes.values():
                for link in c.findall("bpmn:linkEventDefinition", NS):
                    links.setdefault((_local(c), link.get("name")), []).append(c.get("id"))
            for (kind_, name), ids in links.items():
                if kind_ == "intermediateThrowEvent":
                    for throw in ids:
                        targets.setdefault(throw, []).extend(
                            links.get(("intermediateCatchEvent", name), []))
            # Event subprocesses start on their event; compensation handlers are run by a
            # compensation event (through an association), never by a sequence flow.
            seeds = starts + [i for i, c in nodes.items()
                              if (_local(c) in CONTAINERS and c.get("triggeredByEvent") == "true")
                              or c.get("isForCompensation") == "true"]
            reachable, todo = set(), list(seeds)
            while todo:
                current = todo.pop()
                if current in reachable or current not in nodes:
                    continue
                reachable.add(current)
                todo += targets.get(current, [])
            for node_id, el in nodes.items():
                if node_id not in reachable:
                    self.add(node_id, self.pid, "unreachable",
                             N_("not reachable from a start event"),
                             N_("Connect it with a sequence flow, or delete it"), el=el)
        for node_id in reachable:
            if _local(nodes[node_id]) in CONTAINERS:
                self.check_container(nodes[node_id])

    def check_flow(self, flow):
        fid = flow.get("id")
        for end in ("sourceRef", "targetRef"):
            ref = flow.get(end)
            if ref not in self.nodes:
                self.related.update({flow.get("sourceRef"), flow.get("targetRef")})
                spaced = bool(ref) and ref.strip() in self.nodes
                self.add(fid, self.pid, "broken_flow", BROKEN_FLOW[end, spaced],
                         N_("Remove the spaces from the reference") if spaced else
                         N_("Reconnect both ends of the flow"), el=flow, ref=ref)
        condition = flow.find("bpmn:conditionExpression", NS)
        if condition is not None and (condition.text or "").strip():
            self.check_code(fid, condition.text, "eval", Text(N_("condition")), flow)

    def check_node(self, el, kind):
        nid = el.get("id")
        if kind in HUMAN_TASKS:
            self.check_human_task(el, nid)
        if kind == "scriptTask":
            script = el.find("bpmn:script", NS)
            if script is not None and (script.text or "").strip():
                self.check_code(nid, script.text, "exec", Text(N_("script")), el)
        for tag, what in SCRIPTS.items():
            for s in el.findall(f"bpmn:extensionElements/spiffworkflow:{tag}", NS):
                if (s.text or "").strip():
                    self.check_code(nid, s.text, "exec", what, el)
        for tag, what in LOOP_EXPRESSIONS.items():
            for expr in el.findall(f"bpmn:multiInstanceLoopCharacteristics/bpmn:{tag}", NS) + \
                    el.findall(f"bpmn:standardLoopCharacteristics/bpmn:{tag}", NS):
                if (expr.text or "").strip():
                    self.check_code(nid, expr.text, "eval", what, el)
        if kind == "serviceTask":
            self.check_service(el, nid)
        if kind in ("exclusiveGateway", "inclusiveGateway"):
            self.check_gateway(el, nid)
        for timer in el.findall("bpmn:timerEventDefinition", NS):
            self.check_timer(el, nid, timer)

    def check_human_task(self, el, nid):
        if len(nid or "") > MAX_KEY:
            self.add(nid, self.pid, "too_long", N_("task id is longer than %(limit)s characters"),
                     N_("Use a shorter id"), el=el, limit=MAX_KEY)
        if len(el.get("name") or "") > MAX_NAME:
            self.add(nid, self.pid, "too_long",
                     N_("task name is longer than %(limit)s characters"),
                     N_("Use a shorter name"), el=el, limit=MAX_NAME)
        if not (el.get("name") or "").strip():
            # The inbox would show the bare id to the people who do the step.
            self.add(nid, self.pid, "name_missing", N_("the task has no name"),
                     N_("Give the task an English name (and a Chinese one)"), el=el)
        props = {p.get("name"): p.get("value") for p in el.findall(
            "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS)}
        key = props.get("formKey")
        if key:
            self.check_form(el, nid, key)
        due = props.get("dueInWorkingDays")
        if due is not None and not str(due).isdigit():
            self.add(nid, self.pid, "due_not_number",
                     N_("dueInWorkingDays must be a whole number, not '%(value)s'"),
                     N_("Enter the number of working days, e.g. 2"), el=el, value=due)
        priority = props.get("priority")
        if priority is not None and priority not in PRIORITIES:
            self.add(nid, self.pid, "priority_invalid",
                     N_("priority must be one of %(choices)s, not '%(value)s'"),
                     N_("Pick high, normal or low"), el=el, choices=", ".join(PRIORITIES),
                     value=priority)
        named = {}
        for prop in ("notSameUserAs", "sameUserAs"):
            named[prop] = {o.strip() for o in (props.get(prop) or "").split(",") if o.strip()}
            for other in sorted(named[prop]):
                if other not in self.nodes or _local(self.nodes[other]) not in HUMAN_TASKS:
                    self.add(nid, self.pid, "unknown_reference", UNKNOWN_REFERENCE[prop],
                             N_("List the ids of user tasks, separated by commas"), el=el,
                             other=other)
        both = named["notSameUserAs"] & named["sameUserAs"]
        if both:
            self.add(nid, self.pid, "same_and_not_same",
                     N_("the task must stay with, and may not be taken by, whoever did "
                        "'%(steps)s'"),
                     N_("Remove the step from sameUserAs or from notSameUserAs"), el=el,
                     steps=", ".join(sorted(both)))

    def check_form(self, el, nid, key):
        if key not in self.forms:
            self.add(nid, self.pid, "unknown_form", N_("form '%(form)s' not found"),
                     N_("Create the form or correct the formKey"), el=el, form=key)
            return
        if key in self.checked_forms:
            return
        self.checked_forms.add(key)
        spec = self.forms[key]
        if isinstance(spec, FormLoadError):
            self.add(nid, self.pid, "form_invalid", N_("form '%(form)s': not valid JSON: "
                                                      "%(detail)s"),
                     N_("Fix the form specification"), el=el, form=key, detail=str(spec))
            return
        # check_spec's findings are English texts of forms/builder.py, quoted as they are.
        found = check_spec(spec)
        if found:
            self.add(nid, self.pid, "form_invalid", N_("form '%(form)s': %(detail)s"),
                     N_("Fix the form specification"), el=el, form=key,
                     detail="; ".join(found))

    def check_service(self, el, nid):
        operator = el.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
        if operator is None:
            self.add(nid, self.pid, "unknown_service", N_("service task has no operation"),
                     N_("Choose one of: %(operations)s"), el=el,
                     operations=", ".join(sorted(REGISTRY)))
            return
        name = operator.get("id")
        if name not in REGISTRY:
            self.add(nid, self.pid, "unknown_service",
                     N_("service operation '%(operation)s' does not exist"),
                     N_("Choose one of: %(operations)s"), el=el, operation=name,
                     operations=", ".join(sorted(REGISTRY)))
        for param in operator.findall("spiffworkflow:parameters/spiffworkflow:parameter", NS):
            if param.get("value") is not None:
                self.check_code(nid, param.get("value"), "eval",
                                Text(N_("parameter '%(name)s'"), name=param.get("id")), el)

    def check_gateway(self, el, nid):
        outgoing = self.outgoing.get(nid, []) if nid else []
        default = el.get("default")
        if default and default not in {f.get("id") for f in outgoing}:
            self.related.add(nid)  # the engine's refusal of it says the same
            self.add(nid, self.pid, "gateway_no_default",
                     N_("the default flow '%(flow)s' does not leave this gateway"),
                     N_("Mark one of its outgoing flows as the default"), el=el, flow=default)
        if len(outgoing) < 2:
            return
        # A flow without an id is reported as such (id_missing).
        bare = [f.get("id") for f in outgoing if f.get("id") and f.get("id") != default and not (
            _text(f.find("bpmn:conditionExpression", NS)) or "").strip()]
        if bare:
            self.related.update(bare)  # the engine refuses each of them for the same reason
            self.add(nid, self.pid, "gateway_no_default",
                     N_("outgoing flow(s) %(flows)s have no condition and are not the default"),
                     N_("Give each outgoing flow a condition, or mark one as the default flow"),
                     el=el, flows=", ".join(bare))


def validate(xml: bytes, forms: dict[str, dict], filename: str = DRAFT_FILENAME,
             *, deployed: dict[str, str] | None = None,
             library: CallLibrary | None = None) -> list[Problem]:
    """Every problem of one BPMN document, each naming its element; [] when it may deploy.

    `forms` maps form key -> spec (bpmn/forms/ or a browser draft). `deployed` maps process
    id -> file name it was last deployed from; when None it is read from the database if the
    file has a real name (not DRAFT_FILENAME) and an app context is active. `library` resolves
    call activities (default: the deployed processes, when an app context is active).
    """
    if isinstance(xml, (bytes, bytearray)):
        xml = to_utf8(xml)  # a GBK, GB18030 or UTF-16 file, as UTF-8
    if deployed is None and filename != DRAFT_FILENAME:
        from flask import has_app_context
        if has_app_context():
            deployed = deployed_owners()
    checker = _Checker(filename, forms or {}, deployed,
                       library if library is not None else CallLibrary())
    try:
        checker.run(xml)
    except Exception as exc:  # noqa: BLE001 — never raise on bad input; say what happened
        checker.add(None, None, "bpmn_invalid", N_("the diagram could not be checked: %(detail)s"),
                    N_("Fix the diagram or report this message"), detail=repr(exc))
    return checker.problems


def validate_files(items, forms, deployed=None, library=None) -> list[Problem]:
    """validate() for several (xml, filename) documents of one upload, plus process ids that
    two of them define. Call activities find their processes in the other documents first."""
    items = [(to_utf8(xml) if isinstance(xml, (bytes, bytearray)) else xml, filename)
             for xml, filename in items]
    library = library if library is not None else CallLibrary(items)
    problems, owner = [], {}
    for xml, filename in items:
        problems += validate(xml, forms, filename, deployed=deployed, library=library)
        for pid, line in process_ids(xml):
            if pid in owner and owner[pid] != filename:
                problems.append(Problem.of(pid, pid, "process_id_collision",
                                           N_("process id '%(id)s' is also defined in %(file)s"),
                                           N_("Give each process its own id"), line, filename,
                                           id=pid, file=owner[pid]))
            owner.setdefault(pid, filename)
    return problems


def format_problem(problem: Problem) -> str:
    """One line for the command line: file, process, element, message, hint."""
    where = problem.filename or DRAFT_FILENAME
    if problem.line:
        where += f":{problem.line}"
    return (f"{where}: process {problem.process_id or '-'}: element {problem.element_id or '-'}:"
            f" {problem.message} [{problem.code}] — hint: {problem.hint}")
