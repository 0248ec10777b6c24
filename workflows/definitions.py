"""Deploying BPMN files and their forms as versioned definitions."""
import hashlib
import json
from pathlib import Path

from SpiffWorkflow.exceptions import SpiffWorkflowException
from lxml import etree

from accounts.roles import ROLES
from audit.operations import record
from extensions import db
from forms.builder import check_spec
from workflows.engine import parse_processes, spec_to_json
from workflows.errors import DeployError
from workflows.models import FormDefinition, ProcessDefinition
from workflows.scripting import ScriptError, compile_expression, compile_script
from workflows.services import REGISTRY


def task_properties(task_spec):
    return task_spec.extensions.get("properties", {}) if hasattr(task_spec, "extensions") else {}


def _form_keys(spec):
    return {task_properties(ts)["formKey"] for ts in spec.task_specs.values()
            if task_properties(ts).get("formKey")}


def check_definition(process_id, spec, form_specs):
    """Problems that would make the process fail at run time, each naming its element."""
    problems = []
    for ts in spec.task_specs.values():
        props = task_properties(ts)
        where = f"{process_id}/{getattr(ts, 'bpmn_id', None) or ts.name}"
        if ts.manual and ts.lane not in ROLES:
            problems.append(f"{where}: lane '{ts.lane}' is not a role ({', '.join(ROLES)})")
        key = props.get("formKey")
        if key and key not in form_specs:
            problems.append(f"{where}: form '{key}' not found in bpmn/forms/")
        for source, compiler in ((getattr(ts, "script", None), compile_script),
                                 (getattr(ts, "prescript", None), compile_script),
                                 (getattr(ts, "postscript", None), compile_script)):
            if source:
                try:
                    compiler(source)
                except (ScriptError, SyntaxError) as exc:
                    problems.append(f"{where}: script does not compile: {exc}")
        for condition, _target in getattr(ts, "cond_task_specs", []):
            expression = getattr(condition, "args", [None])[0]
            if expression:
                try:
                    compile_expression(expression)
                except (ScriptError, SyntaxError) as exc:
                    problems.append(f"{where}: condition '{expression}' does not compile: {exc}")
        operation = getattr(ts, "operation_name", None)
        if operation and operation not in REGISTRY:
            problems.append(f"{where}: service operation '{operation}' does not exist "
                            f"(known: {', '.join(sorted(REGISTRY))})")
        due = props.get("dueInWorkingDays")
        if due is not None and not str(due).isdigit():
            problems.append(f"{where}: dueInWorkingDays must be a whole number")
    return problems


def _load_form_specs(forms_dir: Path, keys):
    specs, problems = {}, []
    for key in sorted(keys):
        path = forms_dir / f"{key}.json"
        if not path.exists():
            continue
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            problems.append(f"form {key}: not valid JSON: {exc}")
            continue
        problems += [f"form {key}: {p}" for p in check_spec(spec)]
        specs[key] = spec
    return specs, problems


def _deploy_form(key, spec):
    body = json.dumps(spec, sort_keys=True, ensure_ascii=False)
    sha = hashlib.sha256(body.encode()).hexdigest()
    existing = FormDefinition.query.filter_by(form_key=key, sha256=sha).first()
    if existing:
        return existing
    latest = (db.session.query(db.func.max(FormDefinition.version))
              .filter_by(form_key=key).scalar() or 0)
    form = FormDefinition(form_key=key, version=latest + 1, sha256=sha, spec=spec)
    db.session.add(form)
    db.session.flush()
    return form


def deploy_xml(xml: bytes, filename: str, forms_dir: Path, actor=None, comment=""):
    """Validate and deploy every process in one BPMN document; returns the definitions.

    Raises DeployError with every problem found; nothing is written in that case.
    """
    try:
        processes = parse_processes(xml, filename)
    except (SpiffWorkflowException, etree.XMLSyntaxError, ValueError) as exc:
        raise DeployError([f"{filename}: {exc}"]) from exc
    if not processes:
        raise DeployError([f"{filename}: no executable process"])
    deployed, problems = [], []
    for process_id, (spec, subs) in processes.items():
        form_specs, form_problems = _load_form_specs(forms_dir, _form_keys(spec))
        problems += form_problems + check_definition(process_id, spec, form_specs)
        deployed.append((process_id, spec, subs, form_specs))
    if problems:
        raise DeployError(problems)
    return [_store(xml, filename, *item, actor=actor, comment=comment) for item in deployed]


def _store(xml, filename, process_id, spec, subs, form_specs, actor, comment):
    forms = {key: _deploy_form(key, fs) for key, fs in form_specs.items()}
    # A version is identified by its diagram and the forms it uses.
    digest = hashlib.sha256(xml)
    for key in sorted(forms):
        digest.update(f"{key}:{forms[key].sha256}".encode())
    sha = digest.hexdigest()
    existing = ProcessDefinition.query.filter_by(process_key=process_id, sha256=sha).first()
    if existing:
        return existing
    latest = (db.session.query(db.func.max(ProcessDefinition.version))
              .filter_by(process_key=process_id).scalar() or 0)
    definition = ProcessDefinition(
        process_key=process_id, version=latest + 1, name=spec.description or process_id,
        filename=filename, sha256=sha, bpmn_xml=xml.decode("utf-8"),
        spec_json=spec_to_json(spec, subs), forms={k: f.id for k, f in forms.items()},
        deployed_by_id=getattr(actor, "id", None), comment=comment)
    db.session.add(definition)
    db.session.flush()
    record("process.deployed", actor=actor,
           data={"process": process_id, "version": definition.version, "sha256": sha,
                 "comment": comment})
    return definition


def deploy_paths(paths, forms_dir: Path, actor=None, comment=""):
    """Deploy several files in one transaction: all or nothing."""
    results, problems = [], []
    for path in paths:
        try:
            results += deploy_xml(Path(path).read_bytes(), Path(path).name, forms_dir, actor,
                                  comment)
        except DeployError as exc:
            problems += exc.problems
    if problems:
        db.session.rollback()
        raise DeployError(problems)
    db.session.commit()
    return results


def latest_definition(process_key):
    return (ProcessDefinition.query.filter_by(process_key=process_key)
            .order_by(ProcessDefinition.version.desc()).first())
