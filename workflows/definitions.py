"""Deploying BPMN files and their forms as versioned definitions."""
import hashlib
import json
from pathlib import Path

from audit.operations import record
from extensions import db
from workflows.engine import parse_processes, spec_to_json
from workflows.errors import DeployError
from workflows.models import FormDefinition, ProcessDefinition
from workflows.validation import Problem, deployed_owners, load_forms, validate, validate_files


def task_properties(task_spec):
    return task_spec.extensions.get("properties", {}) if hasattr(task_spec, "extensions") else {}


def _form_keys(spec):
    return {task_properties(ts)["formKey"] for ts in spec.task_specs.values()
            if task_properties(ts).get("formKey")}


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


def deploy_xml(xml: bytes, filename: str, forms_dir: Path | None, actor=None, comment="",
               forms: dict | None = None):
    """Validate and deploy every process in one BPMN document; returns the definitions.

    `forms` (form key -> spec, e.g. a browser draft's) replaces the files of forms_dir.
    Raises DeployError with every problem found (workflows.validation.Problem objects);
    nothing is written in that case.
    """
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    if forms is None:
        forms = load_forms(forms_dir)
    problems = validate(xml, forms, filename, deployed=deployed_owners())
    if problems:
        raise DeployError(problems)
    return _deploy_valid(xml, filename, forms, actor, comment)


def _deploy_valid(xml, filename, forms, actor, comment):
    try:
        processes = parse_processes(xml, filename)
    except Exception as exc:  # noqa: BLE001 — validate() passed, so this is unexpected
        raise DeployError([Problem(None, None, "bpmn_invalid", str(exc),
                                   "Fix the diagram", filename=filename)]) from exc
    return [_store(xml, filename, process_id, spec, subs,
                   {key: forms[key] for key in sorted(_form_keys(spec))}, actor=actor,
                   comment=comment)
            for process_id, (spec, subs) in processes.items()]


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
    """Deploy several files in one transaction: all or nothing, every problem listed."""
    paths = list(dict.fromkeys(Path(p).resolve() for p in paths))
    items = [(path.read_bytes(), path.name) for path in paths]
    forms = load_forms(forms_dir)
    problems = validate_files(items, forms, deployed_owners())
    if problems:
        db.session.rollback()
        raise DeployError(problems)
    try:
        results = [d for xml, name in items for d in _deploy_valid(xml, name, forms, actor,
                                                                   comment)]
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    return results


def latest_definition(process_key):
    return (ProcessDefinition.query.filter_by(process_key=process_key)
            .order_by(ProcessDefinition.version.desc()).first())
