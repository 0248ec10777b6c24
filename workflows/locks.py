"""Row locks: a case's loan row first, then its instance rows, so two writers of one case
queue up and never deadlock."""
from sqlalchemy import select, text

from extensions import db
from workflows.models import ProcessInstance


def lock_case(case_id, skip_locked=False):
    """Take the case's row lock: every change to a case's processes or money takes it first,
    then the instance rows, so two writers of one case queue up and never deadlock.

    PostgreSQL: SELECT … FOR UPDATE on the loan row. SQLite: a write to the row, which takes
    the database's write lock before the transaction reads anything. With `skip_locked`,
    returns False instead of waiting when another transaction holds it (PostgreSQL).
    """
    if case_id is None:
        return True
    return _lock_loans("id = :id", {"id": case_id}, skip_locked)


def lock_case_of_task(task_id):
    """lock_case for the case of a task, without reading the task first."""
    _lock_loans("id = (SELECT case_id FROM human_tasks WHERE id = :task_id)",
                {"task_id": task_id})


# The lock statements, built once per form: a text() built per call has its cache key
# computed anew.
_LOCKS = {}


def _lock_loans(where, params, skip_locked=False):
    """`where` is one of this module's fixed conditions."""
    postgres = db.session.get_bind().dialect.name == "postgresql"
    key = (where, skip_locked, postgres)
    if key not in _LOCKS:
        if postgres:
            sql = f"SELECT id FROM loans WHERE {where} FOR UPDATE" + (
                " SKIP LOCKED" if skip_locked else "")
        else:
            sql = f"UPDATE loans SET id = id WHERE {where}"
        _LOCKS[key] = text(sql)
    result = db.session.execute(_LOCKS[key], params)
    return result.first() is not None if postgres else True


def lock_instance(instance_id):
    return db.session.scalars(
        select(ProcessInstance).where(ProcessInstance.id == instance_id)
        .with_for_update(of=ProcessInstance).execution_options(populate_existing=True)).one()
