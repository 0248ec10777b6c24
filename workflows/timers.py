"""Firing due timers: small committed batches, exactly once across any number of workers
(PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the database's write lock)."""
from sqlalchemy import bindparam, select, text
from SpiffWorkflow.util.task import TaskState

from audit.operations import record
from extensions import db
from workflows import clock
from workflows.engine import load_state
from workflows.models import HumanTask, ProcessInstance
from workflows.service import _run_and_save, _timer_value


def _due_instances(limit):
    """(due instances loaded by one statement, whether SQLite's write lock was taken).
    PostgreSQL: locked, skipping those another worker holds. SQLite: when any is due, the
    database write lock is taken and they are read again, so the rows are the latest and no
    other sweep can fire them before this batch commits (and a sweep that finds nothing
    holds no lock)."""
    postgres = db.engine.dialect.name == "postgresql"
    due = (ProcessInstance.status == "running",
           # strictly earlier, as SpiffWorkflow fires a timer only after its time
           ProcessInstance.next_timer_at < clock.now())
    if not postgres:
        if db.session.scalar(select(ProcessInstance.id).where(*due).limit(1)) is None:
            return [], False
        db.session.execute(text("UPDATE process_instances SET id = id WHERE 0 = 1"))
    query = (select(ProcessInstance).where(*due)
             .order_by(ProcessInstance.next_timer_at).limit(limit)
             .execution_options(populate_existing=True))
    if postgres:
        query = query.with_for_update(of=ProcessInstance, skip_locked=True)
    return db.session.scalars(query).all(), not postgres


def _open_rows_of(instance_ids):
    """{instance id: its open human tasks}, for a batch of instances locked by this
    transaction, in one statement."""
    rows = {instance_id: [] for instance_id in instance_ids}
    for row in db.session.scalars(select(HumanTask).where(
            HumanTask.instance_id.in_(instance_ids), HumanTask.state == "ready")):
        rows[row.instance_id].append(row)
    return rows


def fire_due_timers(limit=50):
    """Fire every due timer; returns how many timer events fired. Small committed batches:
    a batch's instance rows stay locked until its commit, and a second worker (SKIP LOCKED)
    takes the next batch meanwhile instead of finding everything taken. Each instance is
    handled once per sweep, so one still due afterwards (it failed) is not retried in a
    loop."""
    total, seen = 0, set()
    while True:
        due, locked = _due_instances(limit + len(seen))
        batch = [i for i in due if i.id not in seen]
        if not batch:
            if locked:
                db.session.commit()  # it holds only the lock taken to look again
            return total
        open_rows = _open_rows_of([instance.id for instance in batch])
        versions = {instance.id: instance.lock_version for instance in batch}
        busy = _busy_cases({instance.case_id for instance in batch} - {None})
        for instance in batch:
            seen.add(instance.id)
            if instance.case_id in busy:
                continue
            # An instance saved meanwhile (a message from an earlier timer of its case) may
            # have new tasks: its open rows are read again.
            fresh = instance.lock_version == versions[instance.id]
            total += _fire_instance(instance, open_rows[instance.id] if fresh else None)
        db.session.commit()


_LOCK_CASES_SKIPPING = text("SELECT id FROM loans WHERE id IN :ids ORDER BY id "
                            "FOR UPDATE SKIP LOCKED").bindparams(bindparam("ids", expanding=True))


def _busy_cases(case_ids):
    """Lock the batch's cases in one statement; the ones another writer holds. PostgreSQL: a
    case busy with another writer (a repayment holding it, waiting for one of this batch's
    instances) is left to the next sweep rather than waited for while this batch holds
    instance locks. SQLite: the batch already holds the database's write lock."""
    if not case_ids or db.session.get_bind().dialect.name != "postgresql":
        return set()
    locked = db.session.scalars(_LOCK_CASES_SKIPPING, {"ids": sorted(case_ids)}).all()
    return case_ids - set(locked)


def _fire_instance(instance, open_rows):
    workflow = load_state(instance.definition, instance.state_json)
    current = clock.now()
    due = [t for t in workflow.get_tasks(state=TaskState.WAITING)
           if (at := _timer_value(t)) is not None and at < current]
    _run_and_save(instance, workflow, None, before=lambda wf: wf.refresh_timers(),
                  open_rows=open_rows)
    for task in due:
        record("timer.fired", case_id=instance.case_id, instance_id=instance.id,
               data={"bpmn_id": task.task_spec.bpmn_id, "due": _timer_value(task)})
    return len(due)
