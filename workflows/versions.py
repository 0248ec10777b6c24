"""Process versions: who deployed what when, how many cases run on each, and a readable diff
between two versions (diagram elements, sequence flows and the forms they use)."""
from lxml import etree
from sqlalchemy import and_, func, select

from accounts.models import User
from extensions import db
from workflows.models import FormDefinition, ProcessDefinition, ProcessInstance

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
# Containers whose direct children are the diagram's elements.
CONTAINERS = {"process", "subProcess", "transaction", "adHocSubProcess"}
SKIPPED = {"laneSet", "extensionElements", "documentation", "ioSpecification", "property"}
# Form field attributes compared between versions.
FIELD_ATTRIBUTES = ("label", "type", "required", "required_if", "choices", "max_length",
                    "not_past", "default")


# ---------------------------------------------------------------- version list

def version_rows(process_key):
    """Every version of a process, newest first, each with its running instance count."""
    running = func.count(ProcessInstance.id)
    rows = db.session.execute(
        select(ProcessDefinition, User.username, running)
        .outerjoin(User, User.id == ProcessDefinition.deployed_by_id)
        .outerjoin(ProcessInstance, and_(ProcessInstance.definition_id == ProcessDefinition.id,
                                         ProcessInstance.status == "running"))
        .where(ProcessDefinition.process_key == process_key)
        .group_by(ProcessDefinition.id, User.username)
        .order_by(ProcessDefinition.version.desc())).all()
    return [{"id": d.id, "version": d.version, "name": d.name, "filename": d.filename,
             "deployed_at": d.deployed_at, "deployed_by": username, "comment": d.comment,
             "sha256": d.sha256, "running": count, "definition": d}
            for d, username, count in rows]


def get_version(process_key, version):
    return ProcessDefinition.query.filter_by(process_key=process_key, version=version).first()


def form_specs(definition):
    """{form key: {"version": n, "spec": spec}} for the forms deployed with a version."""
    ids = dict(definition.forms or {})
    forms = {f.id: f for f in FormDefinition.query.filter(
        FormDefinition.id.in_(list(ids.values()))).all()} if ids else {}
    return {key: {"version": forms[fid].version, "spec": forms[fid].spec}
            for key, fid in sorted(ids.items()) if fid in forms}


# ---------------------------------------------------------------- reading a diagram

def _local(element):
    return etree.QName(element).localname


def _text(element):
    return (element.text or "").strip() if element is not None else None


def _lanes(process):
    lanes = {}
    for lane in process.iter(f"{{{BPMN}}}lane"):
        for ref in lane.findall(f"{{{BPMN}}}flowNodeRef"):
            lanes[_text(ref)] = lane.get("name") or lane.get("id")
    return lanes


def _describe(element, lanes):
    """The comparable properties of one diagram element, readable keys, string values."""
    props = {"type": _local(element)}
    if element.get("name"):
        props["name"] = element.get("name")
    if element.get("id") in lanes:
        props["lane"] = lanes[element.get("id")]
    for attr in ("sourceRef", "targetRef", "default", "calledElement", "attachedToRef",
                 "cancelActivity", "messageRef"):
        if element.get(attr) is not None:
            props[attr] = element.get(attr)
    for prop in element.iterfind(f"{{{BPMN}}}extensionElements/{{{SPIFF}}}properties/"
                                 f"{{{SPIFF}}}property"):
        props[f"property:{prop.get('name')}"] = prop.get("value")
    for tag, key in ((f"{{{BPMN}}}script", "script"),
                     (f"{{{BPMN}}}extensionElements/{{{SPIFF}}}preScript", "preScript"),
                     (f"{{{BPMN}}}extensionElements/{{{SPIFF}}}postScript", "postScript"),
                     (f"{{{BPMN}}}conditionExpression", "condition"),
                     (f"{{{BPMN}}}extensionElements/{{{SPIFF}}}instructionsForEndUser",
                      "instructions")):
        found = element.find(tag)
        if found is not None:
            props[key] = _text(found)
    operator = element.find(f"{{{BPMN}}}extensionElements/{{{SPIFF}}}serviceTaskOperator")
    if operator is not None:
        props["operation"] = operator.get("id")
        if operator.get("resultVariable"):
            props["resultVariable"] = operator.get("resultVariable")
        for param in operator.iter(f"{{{SPIFF}}}parameter"):
            props[f"parameter:{param.get('id')}"] = param.get("value")
    for definition in element:
        name = _local(definition)
        if not name.endswith("EventDefinition"):
            continue
        kind = name[:-len("EventDefinition")]
        detail = [f"{_local(child)}={_text(child)}" for child in definition
                  if isinstance(child.tag, str)]
        for attr in ("messageRef", "signalRef", "errorRef", "escalationRef"):
            if definition.get(attr):
                detail.append(f"{attr}={definition.get(attr)}")
        props["timer" if kind == "timer" else "event"] = \
            kind + (": " + ", ".join(detail) if detail else "")
    if element.find(f"{{{BPMN}}}multiInstanceLoopCharacteristics") is not None:
        loop = element.find(f"{{{BPMN}}}multiInstanceLoopCharacteristics")
        props["multiInstance"] = ("sequential" if loop.get("isSequential") == "true"
                                  else "parallel")
    return props


def read_elements(bpmn_xml, process_key):
    """{element id: properties} for the elements of one process (nested ones included)."""
    root = etree.fromstring(bpmn_xml.encode() if isinstance(bpmn_xml, str) else bpmn_xml)
    process = root.find(f"{{{BPMN}}}process[@id='{process_key}']")
    if process is None:
        return {}
    lanes = _lanes(process)
    elements = {}

    def walk(container):
        for child in container:
            if not isinstance(child.tag, str) or etree.QName(child).namespace != BPMN:
                continue
            name = _local(child)
            if name in SKIPPED or not child.get("id"):
                continue
            elements[child.get("id")] = _describe(child, lanes)
            if name in CONTAINERS:
                walk(child)

    walk(process)
    return elements


# ---------------------------------------------------------------- diffs

def _changes(before, after, keys=None):
    keys = keys or sorted(set(before) | set(after))
    return [{"property": k, "before": before.get(k), "after": after.get(k)}
            for k in keys if before.get(k) != after.get(k)]


def _diff_elements(old, new):
    added = [{"id": i, **new[i]} for i in new if i not in old]
    removed = [{"id": i, **old[i]} for i in old if i not in new]
    changed = []
    for i in old:
        if i in new:
            changes = _changes(old[i], new[i])
            if changes:
                changed.append({"id": i, "type": new[i]["type"],
                                "name": new[i].get("name") or old[i].get("name"),
                                "changes": changes})
    return added, removed, changed


def _label(value):
    if isinstance(value, dict):
        return value.get("en") or value.get("zh_CN") or next(iter(value.values()), "")
    return value


def diff_form(old_spec, new_spec):
    """Fields added, removed and changed (label, type, required, choices…) in one form."""
    old_fields = {f["name"]: f for f in (old_spec or {}).get("fields", [])}
    new_fields = {f["name"]: f for f in (new_spec or {}).get("fields", [])}
    result = {
        "added": [{"name": n, "label": _label(f.get("label")), "type": f.get("type"),
                   "required": bool(f.get("required"))}
                  for n, f in new_fields.items() if n not in old_fields],
        "removed": [{"name": n, "label": _label(f.get("label")), "type": f.get("type")}
                    for n, f in old_fields.items() if n not in new_fields],
        "changed": [],
        "other": _changes({k: v for k, v in (old_spec or {}).items() if k != "fields"},
                          {k: v for k, v in (new_spec or {}).items() if k != "fields"}),
    }
    for name, before in old_fields.items():
        after = new_fields.get(name)
        if after is None:
            continue
        changes = _changes(before, after, [a for a in FIELD_ATTRIBUTES
                                           if a in before or a in after])
        if changes:
            result["changed"].append({"name": name, "label": _label(after.get("label")),
                                      "changes": changes})
    return result


def diff_versions(old_def, new_def):
    """A structured, readable diff between two versions of one process."""
    old = read_elements(old_def.bpmn_xml, old_def.process_key)
    new = read_elements(new_def.bpmn_xml, new_def.process_key)
    flow = "sequenceFlow"
    old_nodes = {i: p for i, p in old.items() if p["type"] != flow}
    new_nodes = {i: p for i, p in new.items() if p["type"] != flow}
    added, removed, changed = _diff_elements(old_nodes, new_nodes)
    flows_added, flows_removed, flows_changed = _diff_elements(
        {i: p for i, p in old.items() if p["type"] == flow},
        {i: p for i, p in new.items() if p["type"] == flow})
    old_forms, new_forms = form_specs(old_def), form_specs(new_def)
    forms = []
    for key in sorted(set(old_forms) | set(new_forms)):
        before, after = old_forms.get(key), new_forms.get(key)
        if before and after and before["version"] == after["version"]:
            continue
        entry = {"key": key, "before": before and before["version"],
                 "after": after and after["version"]}
        entry.update(diff_form(before and before["spec"], after and after["spec"]))
        forms.append(entry)
    return {"from": old_def.version, "to": new_def.version,
            "elements": {"added": added, "removed": removed, "changed": changed},
            "flows": {"added": flows_added, "removed": flows_removed, "changed": flows_changed},
            "forms": forms,
            "empty": not (added or removed or changed or flows_added or flows_removed
                          or flows_changed or forms)}
