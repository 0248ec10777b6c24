"""Deploying BPMN files and their forms as versioned definitions."""
import hashlib
import json
import time
from pathlib import Path

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, make_transient_to_detached

from audit.operations import record
from extensions import db
from workflows.calls import CallLibrary, resolve_calls
from workflows.encoding import to_utf8
from workflows.engine import parse_processes, spec_to_json
from workflows.errors import DeployError
from workflows.hygiene import blocking as blocking_warnings
from workflows.labels import labels_for
from workflows.models import FormDefinition, ProcessDefinition
from workflows.problems import N_
from workflows.validation import Problem, deployed_owners, form_keys_in, load_forms, validate, \
    validate_files


def task_properties(task_spec):
    return task_spec.extensions.get("properties", {}) if hasattr(task_spec, "extensions") else {}


def _form_keys(spec, subs=None):
    """Form keys of the process's user tasks, including those of its embedded subprocesses
    and of the processes it calls (their tasks run in this process's instances)."""
    specs = [spec, *(subs or {}).values()]
    return {task_properties(ts)["formKey"] for s in specs if s is not None
            for ts in s.task_specs.values() if task_properties(ts).get("formKey")}


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
    xml = xml.encode("utf-8") if isinstance(xml, str) else to_utf8(xml)
    if forms is None:
        forms = load_forms(forms_dir)
    library = CallLibrary()
    problems = validate(xml, forms, filename, deployed=deployed_owners(), library=library)
    # Warnings refuse the deploy only where the process owner chose so (workflows/hygiene.py).
    problems += _with_filename(blocking_warnings(xml), filename)
    if problems:
        raise DeployError(problems)
    return _deploy_valid(xml, filename, forms, actor, comment, library)


def _with_filename(problems, filename):
    for problem in problems:
        problem.filename = filename
    return problems


def _deploy_valid(xml, filename, forms, actor, comment, library):
    called = resolve_calls(xml, library).documents
    try:
        processes = parse_processes(xml, filename, [(d.xml, d.filename) for d in called])
    except Exception as exc:  # noqa: BLE001 — validate() passed, so this is unexpected
        raise DeployError([Problem.of(None, None, "bpmn_invalid",
                                      N_("the engine refuses the diagram: %(detail)s"),
                                      N_("Fix the diagram"), filename=filename,
                                      detail=str(exc))]) from exc
    # A called process deployed earlier brings the forms pinned by its version; the upload's
    # forms serve this file and the called files of the same upload.
    pinned = {key: spec for d in called if d.forms is not None for key, spec in d.forms.items()}
    uploaded = form_keys_in(xml).union(*(form_keys_in(d.xml) for d in called if d.forms is None))
    results = []
    for process_id, (spec, subs) in processes.items():
        keys = sorted(_form_keys(spec, subs))
        form_specs = {key: pinned[key] if key in pinned and key not in uploaded else forms[key]
                      for key in keys}
        calls = [d for d in called if set(d.process_ids) & set(subs)]
        results.append(_store(xml, filename, process_id, spec, subs, form_specs, calls,
                              actor=actor, comment=comment))
    return results


def _store(xml, filename, process_id, spec, subs, form_specs, called, actor, comment):
    forms = {key: _deploy_form(key, fs) for key, fs in form_specs.items()}
    # A version is identified by its diagram, the documents of the processes it calls (their
    # specs are part of it) and the forms it uses.
    digest = hashlib.sha256(xml)
    for document in sorted(called, key=lambda d: d.filename):
        digest.update(f"\0calls {document.filename}\0".encode() + document.xml)
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
        labels=labels_for(xml, process_id, [d.xml for d in called]),
        deployed_by_id=getattr(actor, "id", None), comment=comment)
    db.session.add(definition)
    db.session.info[_DEPLOYING] = True
    clear_latest_cache()
    db.session.flush()
    record("process.deployed", actor=actor,
           data={"process": process_id, "version": definition.version, "sha256": sha,
                 "comment": comment, **({"calls": sorted(pid for d in called
                                                         for pid in d.process_ids
                                                         if pid in subs)} if called else {})})
    return definition


def deploy_paths(paths, forms_dir: Path, actor=None, comment=""):
    """Deploy several files in one transaction: all or nothing, every problem listed."""
    paths = list(dict.fromkeys(Path(p).resolve() for p in paths))
    items = [(to_utf8(path.read_bytes()), path.name) for path in paths]
    forms = load_forms(forms_dir)
    # Call activities find their processes among these files first, whatever their order.
    library = CallLibrary(items)
    problems = validate_files(items, forms, deployed_owners(), library)
    for xml, name in items:
        problems += _with_filename(blocking_warnings(xml), name)
    if problems:
        db.session.rollback()
        raise DeployError(problems)
    try:
        results = [d for xml, name in items for d in _deploy_valid(xml, name, forms, actor,
                                                                   comment, library)]
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    return results


def latest_definition(process_key):
    """The newest deployed version of a process, or None. Every start needs it and it changes
    only at a deploy: memoized per app for DEFINITION_CACHE_SECONDS (default 30) as a detached
    copy that is attached to the session without a query. A deploy clears the memo of its
    own process at its commit or rollback; other processes (web workers, the worker) start new
    instances on a new version within that many seconds."""
    if not has_app_context():
        return _query_latest(process_key)
    memo = _latest_memo()
    snapshot = memo["rows"].get(process_key)
    if snapshot is not None:
        return db.session.merge(snapshot, load=False)
    definition = _query_latest(process_key)
    if definition is not None and not db.session.info.get(_DEPLOYING):
        memo["rows"][process_key] = _detached_copy(definition)
    return definition


def latest_labels(process_key):
    """The names of the newest version of a process and of its steps (`labels`), {} when
    none: read from the memo without attaching the definition to the session (the inbox and
    every task answer ask for them)."""
    if has_app_context():
        snapshot = _latest_memo()["rows"].get(process_key)
        if snapshot is not None:
            return snapshot.labels or {}
    definition = latest_definition(process_key)
    return (definition.labels or {}) if definition is not None else {}


def deployed_keys():
    """The keys of every deployed process, memoized with the latest versions (a deploy
    clears both)."""
    if not has_app_context():
        return frozenset(db.session.scalars(db.select(ProcessDefinition.process_key).distinct()))
    memo = _latest_memo()
    if "keys" not in memo:
        keys = frozenset(db.session.scalars(
            db.select(ProcessDefinition.process_key).distinct()))
        if db.session.info.get(_DEPLOYING):
            return keys
        memo["keys"] = keys
    return memo["keys"]


def _query_latest(process_key):
    return (ProcessDefinition.query.filter_by(process_key=process_key)
            .order_by(ProcessDefinition.version.desc()).first())


_DEPLOYING = "deploying_definitions"  # session.info flag: versions added, not yet committed
CACHE_SECONDS = 30


def _latest_memo():
    now = time.monotonic()
    memo = current_app.extensions.get("latest_definitions")
    ttl = current_app.config.get("DEFINITION_CACHE_SECONDS", CACHE_SECONDS)
    if memo is None or now - memo["at"] > ttl:
        memo = current_app.extensions["latest_definitions"] = {"at": now, "rows": {}}
    return memo


def clear_latest_cache():
    if has_app_context():
        current_app.extensions.pop("latest_definitions", None)


def _detached_copy(definition):
    """The row's loaded columns (not the deferred XML and spec) on a new object in the
    detached state, which Session.merge(load=False) attaches without SQL."""
    copy = ProcessDefinition(**{
        column.key: getattr(definition, column.key)
        for column in sa_inspect(ProcessDefinition).column_attrs if not column.deferred})
    make_transient_to_detached(copy)
    return copy


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _deploy_ended(session, *_args):
    if session.info.pop(_DEPLOYING, False):
        clear_latest_cache()
