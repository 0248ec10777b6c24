"""Moving running instances to another version of their process, in batches.

The rule is spiff-arena's: an instance may move only if no COMPLETED or STARTED task of it
was changed or removed in the target version, and it is not waiting at an element that no
longer exists. `preview` says which can move and why not; `migrate` re-checks each one under
its lock, moves it, re-projects its open tasks onto the new version's forms, and audits the
outcome. Each instance runs in its own savepoint: one failure leaves the others alone, and a
refused instance is left untouched.
"""
import json
import uuid

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError
from SpiffWorkflow.bpmn.util.diff import SpecDiff, WorkflowDiff, migrate_workflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, TaskNotFoundException
from SpiffWorkflow.util.task import TaskState

from accounts.models import User
from audit.operations import record
from extensions import db
from workflows import clock
from workflows.definitions import task_properties
from workflows.engine import _registry, dump_state, load_state, serializer
from workflows.errors import InvalidData, NotAllowed
from forms.builder import to_json_value
from workflows.locks import lock_instance
from workflows.models import (FormDefinition, HumanTask, HumanTaskExclusion, ProcessDefinition,
                              ProcessInstance)
from workflows.service import PRIORITIES, _next_timer, _project_tasks

DONE = TaskState.COMPLETED | TaskState.STARTED
OPEN = TaskState.READY | TaskState.WAITING
# Serialized task-spec attributes → the words the report uses.
ATTRIBUTES = {"bpmn_name": "name", "lane": "lane", "extensions": "properties",
              "inputs": "incoming flows", "outputs": "outgoing flows", "script": "script",
              "prescript": "pre-script", "postscript": "post-script",
              "cond_task_specs": "conditions", "default_task_spec": "default flow",
              "event_definition": "event or timer", "typename": "element type",
              "operation_name": "service operation", "operation_params": "parameters",
              "result_variable": "result variable", "manual": "manual"}


class Refused(Exception):
    def __init__(self, reasons):
        super().__init__("; ".join(r["text"] for r in reasons))
        self.reasons = reasons


def _target_specs(definition):
    specs = json.loads(definition.spec_json)  # fresh: the serializer restores dicts in place
    return (serializer.from_dict(specs["spec"]),
            {k: serializer.from_dict(v) for k, v in specs["subprocess_specs"].items()})


def _task_label(task):
    spec = task.task_spec
    return getattr(spec, "bpmn_name", None) or getattr(spec, "bpmn_id", None) or spec.name


def _reason(code, text, **params):
    return {"code": code, "text": text, **params}


def _blockers(workflow_diff, spec_diff, where=""):
    reasons = []
    for task in workflow_diff.removed:
        label, state = where + _task_label(task), TaskState.get_name(task.state)
        if task.has_state(DONE):
            reasons.append(_reason("done_removed", f"task {label} ({state}) was removed in "
                                   "the new version", task=label, state=state))
        elif task.has_state(OPEN):
            reasons.append(_reason("open_removed", f"waiting at {label}, which no longer "
                                   "exists in the new version", task=label, state=state))
    for task in workflow_diff.changed:
        if not task.has_state(DONE):
            continue
        label, state = where + _task_label(task), TaskState.get_name(task.state)
        what = sorted({ATTRIBUTES.get(a, a) for a in spec_diff.changed.get(task.task_spec, [])})
        reasons.append(_reason("done_changed", f"task {label} ({state}) was changed in the new "
                               f"version ({', '.join(what)})", task=label, state=state,
                               changes=what))
    return reasons


def _diff(workflow, spec, subs):
    """(top (WorkflowDiff, SpecDiff), {subprocess id: (WorkflowDiff, SpecDiff) or None})."""
    spec_diff = SpecDiff(_registry, workflow.spec, spec)
    top = (WorkflowDiff(workflow, spec_diff), spec_diff)
    sub_diffs = {}
    for sp_id, sp in workflow.subprocesses.items():
        if sp.spec.name in subs:
            dep = SpecDiff(_registry, sp.spec, subs[sp.spec.name])
            sub_diffs[sp_id] = (WorkflowDiff(sp, dep), dep)
        else:
            sub_diffs[sp_id] = None
    return top, sub_diffs


def check(workflow, spec, subs):
    """Reasons this workflow cannot move to (spec, subs); empty if it can."""
    top, sub_diffs = _diff(workflow, spec, subs)
    reasons = _blockers(*top)
    for sp_id, found in sub_diffs.items():
        sp = workflow.subprocesses[sp_id]
        if found is None:
            reasons.append(_reason("subprocess_removed", f"subprocess {sp.spec.name} no longer "
                                   "exists in the new version", task=sp.spec.name))
        else:
            reasons += _blockers(*found, where=f"{sp.spec.name}/")
    return reasons, top, sub_diffs


def _waiting_at(workflow):
    return [_task_label(t) for t in workflow.get_tasks(state=OPEN)
            if getattr(t.task_spec, "bpmn_id", None)]


def _candidates(target):
    return db.session.scalars(
        select(ProcessInstance).join(ProcessInstance.definition)
        .where(ProcessDefinition.process_key == target.process_key,
               ProcessInstance.status == "running",
               ProcessInstance.definition_id != target.id)
        .order_by(ProcessInstance.id)).all()


def preview(target, replayed=True):
    """For each running instance of the process on another version: can it move, and why not;
    with `replayed`, also how its recorded history replays on the target version
    (workflows.replay: row["replay"] is {"outcome", "reason"}, None beyond the replay
    limit)."""
    spec, subs = _target_specs(target)
    rows = []
    candidates = _candidates(target)
    outcomes = {}
    if replayed and candidates:
        from workflows import replay
        report = replay.replay(replay.draft_of(target), candidates[:replay.RUNNING_LIMIT])
        outcomes = {r["instance_id"]: {"outcome": r["outcome"], "reason": r["reason"]}
                    for r in report["cases"]}
    for instance in candidates:
        row = {"instance_id": instance.id, "case_id": instance.case_id,
               "business_key": instance.business_key, "version": instance.definition.version,
               "waiting_at": [], "reasons": []}
        try:
            workflow = load_state(instance.definition, instance.state_json)
            row["waiting_at"] = _waiting_at(workflow)
            row["reasons"] = check(workflow, spec, subs)[0]
        except Exception as exc:  # noqa: BLE001 — an unreadable state is a reason, not a crash
            row["reasons"] = [_reason("unreadable", f"the instance state could not be read: "
                                      f"{exc}", error=str(exc))]
        row["can_move"] = not row["reasons"]
        row["replay"] = outcomes.get(instance.id)
        rows.append(row)
    return rows


def _refresh_open_rows(instance, workflow, target):
    """Open human tasks whose task is still READY follow the new version in place (name,
    lane, form version, priority, four-eyes); the rest are cancelled or created afterwards."""
    for row in HumanTask.query.filter_by(instance_id=instance.id, state="ready").all():
        task = _find_task(workflow, uuid.UUID(row.task_guid))
        if task is None or task.state != TaskState.READY or not task.task_spec.manual:
            continue
        spec, props = task.task_spec, task_properties(task.task_spec)
        row.process_key, row.bpmn_id = target.process_key, spec.bpmn_id
        row.name, row.lane = spec.bpmn_name or spec.bpmn_id, spec.lane
        row.form_key = props.get("formKey")
        row.form_definition_id = (target.forms or {}).get(row.form_key) if row.form_key else None
        row.priority = PRIORITIES.get(props.get("priority", "normal"), 2)
        form = db.session.get(FormDefinition, row.form_definition_id) \
            if row.form_definition_id else None
        shown = [item["name"] for item in (form.spec.get("show_data", []) if form else [])]
        row.context = {name: to_json_value(task.data.get(name)) for name in shown
                       if name in task.data}
        row.candidate_user_id = None
        if props.get("candidateUserVariable"):
            row.candidate_user_id = db.session.scalar(select(User.id).where(
                User.username == task.data.get(props["candidateUserVariable"])))
        HumanTaskExclusion.query.filter_by(task_id=row.id).delete()
        others = [s.strip() for s in props.get("notSameUserAs", "").split(",") if s.strip()]
        row.not_same_user_as = ",".join(others) or None  # as a new row of the version has it
        excluded = set()
        if others:
            excluded = set(db.session.scalars(
                select(HumanTask.completed_by_id).distinct()
                .where(HumanTask.instance_id == instance.id, HumanTask.bpmn_id.in_(others),
                       HumanTask.state == "completed",
                       HumanTask.completed_by_id.isnot(None))).all())
            for user_id in excluded:
                db.session.add(HumanTaskExclusion(task_id=row.id, user_id=user_id,
                                                  reason_task=",".join(others)[:80]))
        variable = props.get("notUserVariable")
        if variable and task.data.get(variable):
            user_id = db.session.scalar(select(User.id).where(
                User.username == str(task.data[variable])))
            if user_id is not None and user_id not in excluded:
                db.session.add(HumanTaskExclusion(task_id=row.id, user_id=user_id,
                                                  reason_task=variable[:80]))
                excluded.add(user_id)
        holder = row.claimed_by
        if holder is not None and (row.lane not in holder.roles or holder.id in excluded
                                   or row.candidate_user_id not in (None, holder.id)):
            # The new version gives the task to someone else: it goes back to the pool.
            row.claimed_by_id, row.claimed_at = None, None
    db.session.flush()


def _find_task(workflow, task_id):
    try:
        return workflow.get_task_from_id(task_id)
    except TaskNotFoundException:
        return None


def _timer_values(workflow, spec_diff):
    """Timer deadlines of waiting tasks whose element is unchanged: migrate_workflow resets
    waiting tasks, which would restart a duration timer from now."""
    return {task.id: {k: task.internal_data[k] for k in ("event_value", "event_fired")
                      if k in task.internal_data}
            for task in workflow.get_tasks(state=TaskState.WAITING, skip_subprocesses=True)
            if task.task_spec not in spec_diff.changed
            and spec_diff.alignment.get(task.task_spec) is not None
            and "event_value" in task.internal_data}


def _restore_timers(workflow, timers):
    for task_id, values in timers.items():
        task = _find_task(workflow, task_id)
        if task is not None and task.has_state(TaskState.WAITING):
            task.internal_data.update(values)


def _migrate_one(instance_id, target, actor, comment):
    instance = lock_instance(instance_id)
    source = instance.definition
    if source.process_key != target.process_key:
        raise Refused([_reason("other_process", f"the instance runs {source.process_key}, "
                               f"not {target.process_key}")])
    if instance.status != "running":
        raise Refused([_reason("not_running", f"the process is {instance.status}",
                               status=instance.status)])
    if instance.definition_id == target.id:
        raise Refused([_reason("same_version", "the instance already runs this version")])
    spec, subs = _target_specs(target)
    workflow = load_state(source, instance.state_json)
    reasons, top, sub_diffs = check(workflow, spec, subs)
    if reasons:
        raise Refused(reasons)
    timers = _timer_values(workflow, top[1])
    for sp_id, (sp_diff, spec_diff) in sub_diffs.items():
        sp = workflow.subprocesses[sp_id]
        timers.update(_timer_values(sp, spec_diff))
        migrate_workflow(sp_diff, sp, subs[sp.spec.name])
    migrate_workflow(top[0], workflow, spec)
    _restore_timers(workflow, timers)
    workflow.subprocess_specs = subs
    try:
        workflow.do_engine_steps()
    except SpiffWorkflowException as exc:
        raise Refused([_reason("run_failed", f"the process could not continue on the new "
                               f"version: {exc}", error=str(exc))]) from exc
    instance.definition_id, instance.definition = target.id, target
    instance.state_json = dump_state(workflow)
    instance.updated_at = clock.now()
    instance.next_timer_at = _next_timer(workflow)
    if workflow.completed:
        instance.status, instance.completed_at = "completed", clock.now()
    db.session.flush()
    _refresh_open_rows(instance, workflow, target)
    _project_tasks(instance, workflow)
    data = {"process": target.process_key, "from_version": source.version,
            "to_version": target.version, "comment": comment,
            "waiting_at": _waiting_at(workflow)}
    record("process.migrated", actor=actor, case_id=instance.case_id, instance_id=instance.id,
           data=data)
    return {"instance_id": instance.id, "case_id": instance.case_id, "migrated": True,
            "from_version": source.version, "to_version": target.version,
            "waiting_at": data["waiting_at"], "reasons": []}


def migrate(instance_ids, target, actor, comment):
    """Move the chosen instances to `target`; one report entry per instance; commits.

    Every outcome is audited: process.migrated or process.migration_refused (with reasons).
    """
    if actor is not None and not actor.has_role("process_owner"):
        raise NotAllowed("only a process owner may migrate cases", code="not_process_owner")
    comment = (comment or "").strip()
    if not comment:
        raise InvalidData("a comment is required", code="comment_required",
                          field_errors={"comment": ["required"]})
    ids = sorted({int(i) for i in instance_ids})
    if not ids:
        raise InvalidData("choose at least one case to migrate", code="nothing_selected")
    report = []
    for instance_id in ids:
        # Audit events wait in the session until commit; keep the ones of earlier instances
        # whatever happens to this one.
        queued = list(db.session.info.get("audit_pending", []))
        savepoint = db.session.begin_nested()
        try:
            result = _migrate_one(instance_id, target, actor, comment)
            savepoint.commit()
        except Exception as exc:  # noqa: BLE001 — each instance reports its own failure
            if savepoint.is_active:
                savepoint.rollback()
            db.session.info["audit_pending"] = queued
            if isinstance(exc, Refused):
                reasons = exc.reasons
            elif isinstance(exc, StaleDataError):
                reasons = [_reason("stale", "someone else changed this case at the same "
                                   "moment; try again")]
            elif type(exc).__name__ == "NoResultFound":
                reasons = [_reason("missing", "no such process instance")]
            else:
                reasons = [_reason("error", f"migration failed: {exc}", error=str(exc))]
            instance = db.session.get(ProcessInstance, instance_id)
            result = {"instance_id": instance_id, "migrated": False,
                      "case_id": instance.case_id if instance else None,
                      "from_version": instance.definition.version if instance else None,
                      "to_version": target.version, "waiting_at": [], "reasons": reasons}
            record("process.migration_refused", actor=actor, case_id=result["case_id"],
                   instance_id=instance_id if instance else None,
                   data={"process": target.process_key, "from_version": result["from_version"],
                         "to_version": target.version, "comment": comment,
                         "reasons": [r["text"] for r in reasons]})
        report.append(result)
    db.session.commit()
    return report
