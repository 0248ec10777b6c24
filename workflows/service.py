"""The engine facade: start and run instances, project their tasks, deliver messages, cancel.

Task operations (claim, complete) are in workflows.tasks, the row locks in workflows.locks.

Every state change runs load → run → save inside the caller's transaction with optimistic
locking on the instance row (and SELECT … FOR UPDATE on PostgreSQL), then re-projects the
READY user tasks into human_tasks, recomputes next_timer_at and appends audit events.
"""
import contextvars
import datetime as dt

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.orm.exc import StaleDataError
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from accounts.models import User, utc
from audit.operations import record
from bulk import insert_rows
from calendars.workdays import CalendarUnknown, add_working_days, is_working_day
from extensions import db
from forms.builder import to_json_value
from workflows import clock
from workflows.clock import BEIJING
from workflows.definitions import latest_definition, task_properties
from workflows.engine import (SERIALIZER_VERSION, cached_form_spec, dump_state, load_state,
                              new_workflow)
from workflows.errors import Conflict, NotFound
from workflows.limits import ScriptLimitError, engine_budget
from workflows.locks import lock_case, lock_instance
from workflows.models import (FormDefinition, HumanTask, HumanTaskExclusion, ProcessDefinition,
                              ProcessInstance)
from workflows.row_writes import WRITE_STARTED, taken_as_written, write_saved
from workflows.start_template import start_template

PRIORITIES = {"high": 1, "normal": 2, "low": 3}
# Called as hook(tasks) inside the transaction right after new human tasks are written:
# tasks is a list of dicts (the human_tasks values with "id", and "returned": the step was
# done before in the same instance, e.g. a file sent back). Feature packages append to it
# (notifications); a hook with nobody to tell must not touch the database.
AFTER_TASKS_CREATED = []
# A task due in N working days is due at the end of that office day, Beijing time.
DUE_HOUR = 18


# The instance whose engine is running in this transaction (its service tasks may call
# operations that deliver messages to, or cancel, the case's instances: never this one,
# whose newer state is in memory and saved when it stops).
_RUNNING = contextvars.ContextVar("running_instance", default=None)

# ---------------------------------------------------------------- instances

def start_process(process_key, case_id=None, data=None, actor=None, business_key=None):
    """Start the latest version of a process for a case; flushes, the caller commits."""
    definition = latest_definition(process_key)
    if definition is None:
        raise NotFound(f"process {process_key} is not deployed", code="process_missing")
    workflow = new_workflow(definition)
    workflow.get_next_task(state=TaskState.READY).data.update(data or {})
    instance = ProcessInstance(definition_id=definition.id, case_id=case_id,
                               business_key=business_key, state_json="{}", serializer_version=SERIALIZER_VERSION,
                               started_by_id=getattr(actor, "id", None), started_at=clock.now())
    instance.definition = definition
    db.session.add(instance)
    db.session.flush()
    record("process.started", actor=actor, case_id=case_id, instance_id=instance.id,
           data={"process": process_key, "version": definition.version,
                 "business_key": business_key})
    _run_and_save(instance, workflow, actor)
    return instance


def start_processes(process_key, items, actor=None, users=None):
    """start_process for many cases at once: `items` are dicts with case_id, data and
    optionally business_key. The same instances, tasks and audit events as one start_process
    each, in a few statements per batch instead of a handful per instance: instances and
    tasks are inserted together, and a process whose start cannot depend on its data
    (workflows.start_template) is run once per version, not once per instance. Returns the
    instance ids in the order of `items`; flushes, the caller commits. `users`: {user name:
    id} the caller already knows (e.g. the account managers), not looked up again."""
    items = list(items)
    if not items:
        return []
    definition = latest_definition(process_key)
    if definition is None:
        raise NotFound(f"process {process_key} is not deployed", code="process_missing")
    moment, actor_id = clock.now(), getattr(actor, "id", actor)
    base = dict(definition_id=definition.id, status="running",
                serializer_version=SERIALIZER_VERSION, lock_version=1,
                started_by_id=actor_id, started_at=moment, updated_at=moment)
    started = {"process": process_key, "version": definition.version}
    templates = [start_template(definition, item.get("data") or {}) for item in items]
    if all(templates):
        built = [t.instantiate(item.get("data") or {}) for t, item in zip(templates, items)]
        ids = _insert_started(items, [state for state, _ready in built], base, started, actor)
        _insert_tasks(definition, [
            (instance_id, item.get("case_id"), [(guid, spec, item.get("data") or {})
                                                for guid, spec in ready])
            for instance_id, item, (_state, ready) in zip(ids, items, built)], users)
        return ids
    # Run instance by instance (the start may run scripts, service tasks, timers), each
    # with its id known, as start_process does; rows written together afterwards.
    ids = _insert_started(items, ["{}"] * len(items), base, started, actor)
    instances = {i.id: i for i in db.session.scalars(
        select(ProcessInstance).where(ProcessInstance.id.in_(ids)))}
    projected, states = [], []
    for instance_id, item in zip(ids, items):
        instance = instances[instance_id]
        workflow = new_workflow(definition)
        workflow.get_next_task(state=TaskState.READY).data.update(item.get("data") or {})
        _run(instance, workflow, actor)
        _store(instance, workflow, actor)
        states.append(taken_as_written(instance))
        projected.append((instance.id, instance.case_id, [
            (str(t.id), t.task_spec, t.data)
            for t in workflow.get_tasks(state=TaskState.READY, manual=True)]))
    db.session.execute(WRITE_STARTED, states)  # one executemany, not an UPDATE per instance
    db.session.flush()
    _insert_tasks(definition, projected, users)
    return ids


def _insert_started(items, states, base, started, actor):
    """The instances of start_processes' items with their first states, in one statement
    (bulk.insert_rows), each audited as started; their ids in the order of items."""
    rows = [dict(base, case_id=item.get("case_id"), business_key=item.get("business_key"),
                 state_json=state) for item, state in zip(items, states)]
    insert_rows(ProcessInstance.__table__, rows, ids=True)
    ids = [row["id"] for row in rows]
    for instance_id, item in zip(ids, items):
        record("process.started", actor=actor, case_id=item.get("case_id"),
               instance_id=instance_id, data=started | {"business_key": item.get("business_key")})
    return ids


def _run_and_save(instance, workflow, actor, before=None, open_rows=None):
    """Run the engine (after `before(workflow)`, e.g. refreshing timers) and save. A script,
    condition or timer that fails or goes over its limits (workflows.limits), or a run
    longer than the engine budget, stops the instance in its error state, audited.
    `open_rows`: see _project_tasks."""
    _run(instance, workflow, actor, before)
    _save(instance, workflow, actor, open_rows)


def _run(instance, workflow, actor, before=None):
    token = _RUNNING.set(instance.id)
    try:
        if before is not None:
            before(workflow)
        workflow.do_engine_steps(will_complete_task=engine_budget())
    except SpiffWorkflowException as exc:
        _fail(instance, actor, exc)
    finally:
        _RUNNING.reset(token)


def _fail(instance, actor, exc):
    # The instance stops where it failed; the error is visible and audited.
    instance.status, instance.error = "error", str(exc)
    data = {"error": str(exc)}
    limit = exc if isinstance(exc, ScriptLimitError) else getattr(exc, "limit_error", None)
    if limit is not None:
        data["limit"] = limit.kind
    record("process.error", actor=actor, case_id=instance.case_id,
           instance_id=instance.id, data=data)


def _store(instance, workflow, actor):
    """The workflow's state onto the instance row (not flushed)."""
    instance.state_json = dump_state(workflow)
    instance.updated_at = clock.now()
    instance.next_timer_at = _next_timer(workflow)
    if workflow.completed and instance.status != "completed":
        instance.status, instance.completed_at = "completed", clock.now()
        record("process.completed", actor=actor, case_id=instance.case_id,
               instance_id=instance.id, data={"process": instance.definition.process_key})


def _save(instance, workflow, actor, open_rows=None):
    _store(instance, workflow, actor)
    try:
        _project_tasks(instance, workflow, open_rows)
    except StaleDataError:
        db.session.rollback()
        raise Conflict("someone else changed this case at the same moment; reload and retry",
                       code="stale")


def _timer_value(task):
    value = task.internal_data.get("event_value")
    if isinstance(value, dict):
        value = value.get("next")
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return utc(moment)


def _next_timer(workflow):
    times = [t for t in (_timer_value(task) for task in workflow.get_tasks(state=TaskState.WAITING))
             if t is not None]
    return min(times) if times else None


def _due_at(props, created=None):
    """The end of the office day N working days after the task's first office day: today
    before 18:00 on a working day, else the next working day — so a due date never lies in
    the past (a task created at 19:00 with N = 0 is due at 18:00 the next working day)."""
    days = props.get("dueInWorkingDays")
    if days is None:
        return None
    local = (created or clock.now()).astimezone(BEIJING)
    try:
        start = local.date()
        if not is_working_day(start) or local.time() >= dt.time(DUE_HOUR):
            start = add_working_days(start, 1)
        day = add_working_days(start, int(days))
    except CalendarUnknown:
        return None
    return dt.datetime.combine(day, dt.time(DUE_HOUR), BEIJING).astimezone(dt.timezone.utc)


def _project_tasks(instance, workflow, open_rows=None):
    """Bring human_tasks in line with the READY manual tasks of the workflow. The instance,
    the closed tasks and a just-completed one are written before the new tasks (whose
    four-eyes trigger reads who completed the earlier steps)."""
    new = _close_gone_tasks(instance, workflow, open_rows)
    write_saved(instance)
    _insert_tasks(instance.definition, [(instance.id, instance.case_id, new)], existing=True)


def _close_gone_tasks(instance, workflow, open_rows=None):
    """Cancel the open rows whose task is no longer READY (not flushed); the READY manual
    tasks that have no row yet, as (guid, spec, data). `open_rows`: the instance's open rows
    when the caller loaded them under the instance lock (those still open in memory are the
    open ones); else they are read."""
    ready = {str(t.id): t for t in workflow.get_tasks(state=TaskState.READY, manual=True)}
    if open_rows is None:
        open_rows = HumanTask.query.filter_by(instance_id=instance.id, state="ready").all()
    else:
        open_rows = [row for row in open_rows if row.state == "ready"]
    for row in open_rows:
        if row.task_guid not in ready:
            row.state, row.completed_at = "cancelled", clock.now()
    known = {row.task_guid for row in open_rows}
    return [(guid, task.task_spec, task.data) for guid, task in ready.items()
            if guid not in known]


# New tasks assigned to a person whom four eyes exclude from them go back to the pool.
_UNASSIGN_EXCLUDED = (
    update(HumanTask)
    .where(HumanTask.id.in_(bindparam("ids", expanding=True)),
           exists().where(HumanTaskExclusion.task_id == HumanTask.id,
                          HumanTaskExclusion.user_id == HumanTask.claimed_by_id))
    .values(claimed_by_id=None, claimed_at=None)
    .execution_options(synchronize_session=False))


def _insert_tasks(definition, instances, users=None, existing=False):
    """Write the human_tasks rows of READY user tasks, all in one statement, with their four-eyes
    exclusions and audit events: `instances` are (instance id, case id, [(task guid, task
    spec, task data)]). `existing`: the instances may have completed tasks, so a task may
    already have exclusions when notUserVariable adds its own; a new instance has none.
    `users`: {user name: id} the caller already knows.

    Four eyes, notSameUserAs: the row names the steps in `not_same_user_as`, and the
    database's trigger (migration 0020) excludes whoever completed them in the instance as
    the row is inserted, in the same statement (no round trip to read or write them)."""
    tasks = [(instance_id, case_id, guid, spec, data, task_properties(spec))
             for instance_id, case_id, ready in instances for guid, spec, data in ready]
    if not tasks:
        return
    user_ids = dict(users or {})
    names = {str(data.get(props[var])) for *_, data, props in tasks
             for var in ("candidateUserVariable", "notUserVariable")
             if props.get(var) and data.get(props[var])}
    names.update(name for *_, data, props in tasks if (name := _same_user(props, data)))
    names -= set(user_ids)
    if names:
        user_ids.update(db.session.execute(select(User.username, User.id)
                                           .where(User.username.in_(names))).all())
    moment, due, rows = clock.now(), {}, []
    for instance_id, case_id, guid, spec, data, props in tasks:
        form_key = props.get("formKey")
        form_id = definition.forms.get(form_key) if form_key else None
        form_spec = cached_form_spec(definition, form_key, lambda: db.session.get(
            FormDefinition, form_id).spec) if form_id else {}
        shown = [item["name"] for item in form_spec.get("show_data", [])]
        days = props.get("dueInWorkingDays")
        if days not in due:  # one calendar look-up per batch, not per task
            due[days] = _due_at(props, moment)
        candidate = props.get("candidateUserVariable")
        candidate_name = _same_user(props, data) or (
            data.get(candidate) if candidate else None)
        candidate_id = user_ids.get(str(candidate_name)) if candidate_name else None
        # A step only one person may do is theirs from the start ("mine", not the pool).
        rows.append(dict(
            instance_id=instance_id, case_id=case_id, task_guid=guid,
            process_key=definition.process_key, bpmn_id=spec.bpmn_id,
            name=spec.bpmn_name or spec.bpmn_id, lane=spec.lane,
            candidate_user_id=candidate_id, claimed_by_id=candidate_id,
            claimed_at=moment if candidate_id else None,
            due_at=due[days], priority=PRIORITIES.get(props.get("priority", "normal"), 2),
            form_key=form_key, form_definition_id=form_id, state="ready",
            context={name: to_json_value(data.get(name)) for name in shown if name in data},
            not_same_user_as=",".join(_steps(props.get("notSameUserAs"))) or None,
            created_at=moment))
    insert_rows(HumanTask.__table__, rows, ids=True)
    ids = [row["id"] for row in rows]
    exclusions = []
    for task_id, (instance_id, case_id, _guid, spec, data, props), row in zip(ids, tasks, rows):
        # Four eyes, besides notSameUserAs (the trigger's): the user named in the task-data
        # variable notUserVariable (a requester) may not take it, unless excluded already.
        variable = props.get("notUserVariable")
        user_id = user_ids.get(str(data.get(variable))) if variable and data.get(variable) \
            else None
        if user_id is not None:
            exclusions.append({"task_id": task_id, "user_id": user_id,
                               "reason_task": variable[:80]})
        record("task.created", case_id=case_id, instance_id=instance_id, task_id=task_id,
               data={"bpmn_id": row["bpmn_id"], "name": row["name"], "lane": row["lane"]})
    if exclusions:
        taken = set(db.session.execute(
            select(HumanTaskExclusion.task_id, HumanTaskExclusion.user_id).where(
                HumanTaskExclusion.task_id.in_([e["task_id"] for e in exclusions])))) \
            if existing else set()
        exclusions = [e for e in exclusions if (e["task_id"], e["user_id"]) not in taken]
        if exclusions:
            db.session.execute(insert(HumanTaskExclusion.__table__), exclusions)
    if any(row["claimed_by_id"] and (props.get("notSameUserAs") or props.get("notUserVariable"))
           for row, (*_, props) in zip(rows, tasks)):
        # Four eyes win over the assignment: an excluded person goes back to the pool.
        db.session.execute(_UNASSIGN_EXCLUDED, {"ids": ids})
    if AFTER_TASKS_CREATED:
        created = [dict(row, id=task_id, returned=spec.bpmn_id in (data.get("completed_by") or {}))
                   for task_id, row, (*_, spec, data, _props) in zip(ids, rows, tasks)]
        for hook in AFTER_TASKS_CREATED:
            hook(created)


def _steps(names):
    """The step ids of a comma-separated property (notSameUserAs, sameUserAs)."""
    return [name.strip() for name in (names or "").split(",") if name.strip()]


def _same_user(props, data):
    """The user name a `sameUserAs` step stays with: whoever completed the named step (the
    first of a comma-separated list that was completed) in this instance."""
    completed = data.get("completed_by") or {}
    return next((completed[step] for step in _steps(props.get("sameUserAs"))
                 if completed.get(step)), None)


# ---------------------------------------------------------------- messages, cancellation


def running_instances(case_id, process_key=None):
    query = (select(ProcessInstance).join(ProcessInstance.definition)
             .where(ProcessInstance.case_id == case_id, ProcessInstance.status == "running"))
    if process_key:
        query = query.where(ProcessDefinition.process_key == process_key)
    return db.session.scalars(query.order_by(ProcessInstance.id)).all()


def deliver_message(case_id, name, payload, actor=None):
    """Deliver a BPMN message to every running instance of the case waiting for it.

    Returns the ids of the instances that caught it; nobody waiting is a normal outcome,
    recorded in the audit log. Flushes; the caller commits.
    """
    caught = []
    lock_case(case_id)
    for instance in running_instances(case_id):
        if instance.id == _RUNNING.get():
            continue
        instance = lock_instance(instance.id)
        workflow = load_state(instance.definition, instance.state_json)
        try:
            workflow.send_event(BpmnEvent(MessageEventDefinition(name), payload=payload))
        except ScriptLimitError as exc:  # a correlation expression over its limits
            _fail(instance, actor, exc)
            _save(instance, workflow, actor)
            continue
        except WorkflowException:
            continue  # this instance is not waiting for the message
        record("message.delivered", actor=actor, case_id=case_id, instance_id=instance.id,
               data={"message": name, "payload": payload})
        _run_and_save(instance, workflow, actor)
        caught.append(instance.id)
    if not caught:
        record("message.unclaimed", actor=actor, case_id=case_id,
               data={"message": name, "payload": payload})
    return caught


def cancel_instance(instance, reason, actor=None):
    """End a running instance cleanly: its open tasks are cancelled, its timers dropped."""
    if instance.id == _RUNNING.get():
        return instance  # it is running now and ends by its own diagram
    lock_case(instance.case_id)
    instance = lock_instance(instance.id)
    if instance.status != "running":
        return instance
    workflow = load_state(instance.definition, instance.state_json)
    workflow.cancel()
    instance.status, instance.completed_at = "cancelled", clock.now()
    instance.state_json = dump_state(workflow)
    instance.next_timer_at = None
    for row in HumanTask.query.filter_by(instance_id=instance.id, state="ready"):
        row.state, row.completed_at = "cancelled", clock.now()
    record("process.cancelled", actor=actor, case_id=instance.case_id, instance_id=instance.id,
           data={"process": instance.definition.process_key, "reason": reason})
    db.session.flush()
    return instance


# ---------------------------------------------------------------- sweeps

def sweep(due_ids, handle, limit=500):
    """Call handle(id) for every id due_ids(n) selects, until none is left; returns the sum
    of the results. Each id is handled once per sweep, so one that is still due afterwards
    (e.g. it failed) is not retried in a loop. Commits after each batch."""
    total, seen = 0, set()
    while True:
        ids = [i for i in due_ids(limit + len(seen)) if i not in seen]
        if not ids:
            return total
        for item in ids:
            seen.add(item)
            total += handle(item)
        db.session.commit()
