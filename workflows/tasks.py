"""Human tasks: read, claim, release, reassign and complete them.

A completion locks the case and the instance, validates the submission against the task's
form, runs the engine and saves through the facade (workflows.service).
"""
import uuid

from sqlalchemy import bindparam, case, exists, literal_column, or_, select, update
from sqlalchemy.orm import with_expression
from sqlalchemy.orm.attributes import set_committed_value
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from accounts.models import User
from audit.operations import record
from extensions import commit_keeping, db
from forms.builder import api_formdata, build_form_class, form_data
from workflows import clock
from workflows.engine import cached_form_spec, load_state
from workflows.errors import Conflict, InvalidData, NotAllowed, NotFound
from workflows.locks import lock_case_of_task
from workflows.models import HumanTask, HumanTaskExclusion, ProcessInstance
from workflows.service import _RUNNING, _run_and_save

# Called as hook(row, user) inside complete_task's transaction, after the task is marked
# completed; feature packages append to it (e.g. management.sla records late follow-ups).
AFTER_COMPLETE = []
# Called as hook(row, old_user_id, new_user, actor) inside reassign_task, before its commit.
AFTER_REASSIGN = []
# Called as hook(row, values) before a submission is applied; may raise InvalidData with
# field errors (e.g. the ledger refuses a recovered amount above the balance).
BEFORE_COMPLETE = []
# Roles that may give a task to someone else (reassign_task).
REASSIGNER_ROLES = frozenset({"dept_head", "general_manager", "risk_manager"})


# The task's loan number, loaded with the task (the inbox and the API show it).
_LOAN_NO = literal_column(
    "(SELECT loans.loan_no FROM loans WHERE loans.id = human_tasks.case_id)")


def _valid_task_id(task_id):
    # Ids are 32-bit on PostgreSQL; a larger number (a hand-typed URL) is simply not found.
    if not 0 < task_id < 2**31:
        raise NotFound("task not found", code="task_missing")


def get_task(task_id):
    _valid_task_id(task_id)
    row = db.session.scalars(select(HumanTask).where(HumanTask.id == task_id)
                             .options(with_expression(HumanTask.loan_no, _LOAN_NO))).first()
    if row is None:
        raise NotFound("task not found", code="task_missing")
    return row


def _excluded_clause(user):
    return exists().where(HumanTaskExclusion.task_id == HumanTask.id,
                          HumanTaskExclusion.user_id == user.id)


def is_excluded(row, user):
    return db.session.get(HumanTaskExclusion, (row.id, user.id)) is not None


def check_can_take(row, user, excluded=None):
    """Raise NotAllowed unless the user may claim or complete this task. `excluded`, when
    the caller already knows it, saves reading the four-eyes exclusions again."""
    if row.lane not in user.roles:
        raise NotAllowed(f"this task is for the role {row.lane}", code="wrong_role")
    if row.candidate_user_id not in (None, user.id):
        raise NotAllowed("this task is assigned to another user", code="assigned_other")
    if excluded if excluded is not None else is_excluded(row, user):
        raise NotAllowed("four eyes: you completed an earlier step of this case and may not "
                         "complete this one", code="four_eyes")


def may_take(row, user):
    """Whether `user` may do this open task now (role, candidate, four eyes, holder)."""
    if row.state != "ready" or row.claimed_by_id not in (None, user.id):
        return False
    try:
        check_can_take(row, user)
    except NotAllowed:
        return False
    return True


def _check_open(row, user):
    if row.state != "ready":
        who = row.completed_by.label if row.completed_by else None
        raise Conflict(f"this task was already completed by {who}" if who
                       else "this task is no longer open", code="not_open")
    if row.claimed_by_id not in (None, user.id):
        raise Conflict(f"this task is claimed by {row.claimed_by.label}", code="claimed_other")


# Hot statements built once (building one and its cache key costs more than running it).
_CLAIM_UPDATE = (
    update(HumanTask)
    .where(HumanTask.id == bindparam("task_id"), HumanTask.state == "ready",
           or_(HumanTask.claimed_by_id.is_(None),
               HumanTask.claimed_by_id == bindparam("user_id")),
           HumanTask.lane.in_(bindparam("roles", expanding=True)),
           or_(HumanTask.candidate_user_id.is_(None),
               HumanTask.candidate_user_id == bindparam("user_id")),
           ~exists().where(HumanTaskExclusion.task_id == HumanTask.id,
                           HumanTaskExclusion.user_id == bindparam("user_id")))
    # Claiming a task one already holds (e.g. assigned at creation) keeps when it was given.
    .values(claimed_by_id=bindparam("user_id"),
            claimed_at=case((HumanTask.claimed_by_id == bindparam("user_id"),
                             HumanTask.claimed_at), else_=bindparam("moment")))
    .returning(HumanTask, _LOAN_NO))
# Run as a SELECT from it: the ORM's own UPDATE path annotates the statement anew at each
# call and so computes its cache key again (about a fifth of a claim's CPU).
_CLAIM = select(HumanTask, _LOAN_NO).from_statement(_CLAIM_UPDATE)
# The task, its instance (locked) and the instance's other open tasks, whether four eyes
# exclude the user.
_FOR_COMPLETION = (
    select(HumanTask, ProcessInstance,
           exists().where(HumanTaskExclusion.task_id == HumanTask.id,
                          HumanTaskExclusion.user_id == bindparam("user_id")))
    .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
    .where(HumanTask.instance_id == select(HumanTask.instance_id)
           .where(HumanTask.id == bindparam("task_id")).scalar_subquery(),
           or_(HumanTask.id == bindparam("task_id"), HumanTask.state == "ready"))
    .options(with_expression(HumanTask.loan_no, _LOAN_NO))
    .with_for_update(of=ProcessInstance))


def claim_task(task_id, user):
    """Claim an open task: one guarded UPDATE … RETURNING does the checks (open, unclaimed,
    the user's role, candidate, four eyes) and the write; only when it changes nothing is
    the task read, to say why. Commits."""
    _valid_task_id(task_id)
    claimed = db.session.execute(
        _CLAIM, {"task_id": task_id, "user_id": user.id, "roles": sorted(user.roles),
                 "moment": clock.now()},
        execution_options={"populate_existing": True}).first()
    if claimed is None:
        db.session.rollback()
        row = get_task(task_id)
        check_can_take(row, user)
        _check_open(row, user)
        raise Conflict("this task was taken by someone else", code="claimed_other")
    row, loan_no = claimed
    set_committed_value(row, "loan_no", loan_no)
    record("task.claimed", actor=user, case_id=row.case_id, instance_id=row.instance_id,
           task_id=row.id)
    commit_keeping(row, user)
    return row


def unclaim_task(task_id, user):
    row = get_task(task_id)
    if row.state != "ready":
        raise Conflict("this task is no longer open", code="not_open")
    if row.claimed_by_id != user.id:
        raise NotAllowed("only the user who claimed a task can release it", code="not_holder")
    db.session.execute(update(HumanTask).where(HumanTask.id == row.id,
                                               HumanTask.claimed_by_id == user.id)
                       .values(claimed_by_id=None, claimed_at=None))
    record("task.unclaimed", actor=user, case_id=row.case_id, instance_id=row.instance_id,
           task_id=row.id)
    db.session.commit()
    return row


def reassign_task(task_id, new_user, reason, actor):
    """Give an open task to another user who may take it (role, candidate, four eyes); a
    manager's operation, the reason is required and audited; commits."""
    if not actor.roles & REASSIGNER_ROLES:
        raise NotAllowed("only a manager may reassign a task", code="not_manager")
    row = get_task(task_id)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidData("a reason is required", code="reason_required",
                          field_errors={"reason": ["required"]})
    if row.state != "ready":
        raise Conflict("this task is no longer open", code="not_open")
    if not new_user.active:
        raise NotAllowed(f"{new_user.username} is not an active user", code="inactive_user")
    check_can_take(row, new_user)
    previous = row.claimed_by_id
    if previous == new_user.id:
        raise Conflict(f"{new_user.username} already holds this task", code="same_holder")
    result = db.session.execute(
        update(HumanTask).where(HumanTask.id == row.id, HumanTask.state == "ready",
                                HumanTask.claimed_by_id.is_(None) if previous is None
                                else HumanTask.claimed_by_id == previous)
        .values(claimed_by_id=new_user.id, claimed_at=clock.now()))
    if result.rowcount != 1:
        db.session.rollback()
        raise Conflict("someone else changed this task at the same moment; reload and retry",
                       code="stale")
    old_user = db.session.get(User, previous) if previous else None
    for hook in AFTER_REASSIGN:
        hook(row, previous, new_user, actor)
    record("task.reassigned", actor=actor, case_id=row.case_id, instance_id=row.instance_id,
           task_id=row.id, data={"from": old_user.username if old_user else None,
                                 "to": new_user.username, "reason": reason})
    db.session.commit()
    db.session.refresh(row)
    return row


def task_form_spec(row, definition=None):
    """The task's form spec. With the instance's definition at hand, from the engine's cache
    of deployed versions (no query); else from the task's form row."""
    if definition is not None and row.form_key and \
            (definition.forms or {}).get(row.form_key) == row.form_definition_id:
        return cached_form_spec(definition, row.form_key,
                                lambda: row.form_definition.spec)
    return row.form_definition.spec if row.form_definition else {"fields": []}


def validate_submission(row, formdata, spec=None):
    """Validate posted form data against the task's form spec; JSON-safe values."""
    spec = spec if spec is not None else task_form_spec(row)
    form = build_form_class(spec)(formdata=formdata, meta={"csrf": False})
    if not form.validate():
        raise InvalidData("the form has errors", code="invalid", field_errors={
            name: [str(e) for e in errs] for name, errs in form.errors.items()})
    return form_data(form, spec)


def _lock_for_completion(task_id, user):
    """Lock the task's case, then load the task (with its loan number and whether four eyes
    exclude the user), its instance and the instance's other open tasks under the instance
    lock, in two statements: (row, instance, excluded, open rows of the instance)."""
    _valid_task_id(task_id)
    lock_case_of_task(task_id)
    found = db.session.execute(_FOR_COMPLETION, {"task_id": task_id, "user_id": user.id},
                               execution_options={"populate_existing": True}).all()
    mine = [found_row for found_row in found if found_row[0].id == task_id]
    if not mine:
        raise NotFound("task not found", code="task_missing")
    row, instance, excluded = mine[0]
    return row, instance, excluded, [r[0] for r in found if r[0].state == "ready"]


def complete_task(task_id, user, data=None, formdata=None):
    """Complete a task with JSON `data` (API) or posted `formdata` (web); commits."""
    # Lock the case, then the instance, so concurrent completions queue up (and on SQLite
    # the write lock is taken before anything is read); the task is read under them.
    row, instance, excluded, open_rows = _lock_for_completion(task_id, user)
    loan_no = row.loan_no
    check_can_take(row, user, excluded=excluded)
    _check_open(row, user)
    if instance.status != "running":
        raise Conflict(f"the process is {instance.status}", code="process_stopped")
    spec = task_form_spec(row, instance.definition)
    if formdata is None:
        formdata = api_formdata(data or {}, spec)
    values = validate_submission(row, formdata, spec)
    for hook in BEFORE_COMPLETE:
        hook(row, values)
    workflow = load_state(instance.definition, instance.state_json)
    task = workflow.get_task_from_id(uuid.UUID(row.task_guid))
    if task is None or task.state != TaskState.READY:
        raise Conflict("this task is no longer open", code="not_open")
    task.data.update(values)
    task.data.setdefault("completed_by", {})[row.bpmn_id] = user.username
    token = _RUNNING.set(instance.id)
    try:
        task.run()
    except SpiffWorkflowException as exc:
        raise InvalidData(f"the process could not continue: {exc}",
                          code="process_failed") from exc
    finally:
        _RUNNING.reset(token)
    row.state, row.completed_at = "completed", clock.now()
    row.completed_by_id, row.claimed_by_id, row.data = user.id, row.claimed_by_id or user.id, values
    record("task.completed", actor=user, case_id=row.case_id, instance_id=instance.id,
           task_id=row.id, data={"bpmn_id": row.bpmn_id, "name": row.name, "data": values})
    for hook in AFTER_COMPLETE:
        hook(row, user)
    _run_and_save(instance, workflow, user, open_rows=open_rows)
    set_committed_value(row, "loan_no", loan_no)  # a reload of the row while saving drops it
    commit_keeping(row, user, instance)
    if instance.status == "error":
        # The task is done and the instance stopped at a later script, condition or timer
        # (e.g. one over its limits): both are saved; the request still says it failed.
        raise InvalidData(f"the task was completed but the process stopped: {instance.error}",
                          code="process_failed")
    return row
