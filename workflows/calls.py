"""Call activities: finding the processes a `calledElement` names, in the documents of the
same upload first (whatever their order), then among the deployed processes (latest version);
and the calls that cannot be resolved (called_process_missing) or go round (call_cycle).
Validation reports those problems; deploy stores the documents found with the caller."""
from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"


def parse_xml(xml):
    """The document's root element, or None when it does not parse (never raises)."""
    try:
        return etree.fromstring(bytes(xml), etree.XMLParser(resolve_entities=False,
                                                            no_network=True, load_dtd=False))
    except (etree.XMLSyntaxError, TypeError, ValueError):
        return None


def process_ids(xml) -> list[tuple[str, int | None]]:
    """(id, line) of the executable processes in a document; [] when it does not parse."""
    root = parse_xml(xml)
    if root is None:
        return []
    return [(p.get("id"), p.sourceline) for p in root.iter(f"{{{BPMN_NS}}}process")
            if p.get("isExecutable", "true") == "true" and p.get("id")]


@dataclass
class CalledDocument:
    """A document defining processes that a call activity names."""
    xml: bytes
    filename: str
    # Form specs pinned by the deployed version it comes from; None: the upload's forms.
    forms: dict | None = None

    @property
    def process_ids(self):
        return [pid for pid, _line in process_ids(self.xml)]


class CallLibrary:
    """Where a calledElement is looked up: first the documents of the same upload (their
    order does not matter), then the latest deployed version of the process."""

    def __init__(self, items=(), database=None):
        self.batch = {}
        for xml, filename in items:
            xml = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
            for pid, _line in process_ids(xml):
                self.batch.setdefault(pid, CalledDocument(xml, filename))
        if database is None:
            from flask import has_app_context
            database = has_app_context()
        self.database, self._deployed = database, {}

    def find(self, process_id) -> CalledDocument | None:
        if process_id in self.batch:
            return self.batch[process_id]
        if not self.database:
            return None
        if process_id not in self._deployed:
            self._deployed[process_id] = _deployed_document(process_id)
        return self._deployed[process_id]


def _deployed_document(process_id):
    from workflows.models import FormDefinition, ProcessDefinition
    definition = (ProcessDefinition.query.filter_by(process_key=process_id)
                  .order_by(ProcessDefinition.version.desc()).first())
    if definition is None:
        return None
    ids = list((definition.forms or {}).values())
    specs = {f.id: f.spec for f in FormDefinition.query.filter(FormDefinition.id.in_(ids))}
    return CalledDocument(definition.bpmn_xml.encode("utf-8"), definition.filename,
                          {key: specs[fid] for key, fid in definition.forms.items()
                           if fid in specs})


def _calls(root):
    """{process id: [(callActivity element, called process id)]} of one document."""
    return {process.get("id"): [(c, (c.get("calledElement") or "").strip())
                                for c in process.iter(f"{{{BPMN_NS}}}callActivity")]
            for process in root.iter(f"{{{BPMN_NS}}}process") if process.get("id")}


@dataclass
class CallProblem:
    element: object          # the callActivity element of the document
    process_id: str          # the process holding it
    code: str                # called_process_missing | call_cycle
    path: list               # process ids from process_id to the missing one or the repeat


@dataclass
class CallResolution:
    documents: list          # CalledDocument, every one needed, directly or not
    problems: list           # CallProblem, on the call activities of the document itself


def resolve_calls(xml, library: CallLibrary | None) -> CallResolution:
    """The documents that the call activities of `xml` need, transitively, and the calls that
    cannot be resolved or make a cycle (each reported on the call activity of `xml` that
    leads to it)."""
    root = parse_xml(xml)
    if root is None:
        return CallResolution([], [])
    own = _calls(root)
    graph, documents = dict(own), []
    todo = [called for calls in own.values() for _el, called in calls]
    while todo:
        pid = todo.pop(0)
        if not pid or pid in graph or library is None:
            continue
        document = library.find(pid)
        other = parse_xml(document.xml) if document is not None else None
        if other is None:
            continue
        calls = _calls(other)
        if pid not in calls or set(calls) & set(graph):
            continue  # a document redefining a process already known cannot be added
        graph.update(calls)
        documents.append(document)
        todo += [called for more in calls.values() for _el, called in more]
    problems = []
    for pid, calls in own.items():
        for el, called in calls:
            found = _bad_path(graph, [pid, called]) if called else [pid, ""]
            if found is not None:
                code = "call_cycle" if found[-1] in found[:-1] else "called_process_missing"
                problems.append(CallProblem(el, pid, code, found))
    return CallResolution(sorted(documents, key=lambda d: d.filename), problems)


def _bad_path(graph, path, done=None):
    """The first call path from path[-1] that reaches a missing process or repeats one."""
    done = set() if done is None else done
    node = path[-1]
    if node not in graph:
        return path
    for _el, called in graph[node]:
        if called in path:
            return path + [called]
        if called in done:
            continue
        found = _bad_path(graph, path + [called], done) if called else path + [called]
        if found is not None:
            return found
    done.add(node)
    return None
