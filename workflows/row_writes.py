"""The instance and task rows a save changed, written by UPDATEs built once.

A save changes rows the session already holds: the instance (its state and version) and the
tasks it closed or completed. Finding and ordering them in the session's unit of work cost
more than the statements themselves (issue 12: about a seventh of a completion's Python
calls). The values go out as they are in memory and are then marked as committed, so the
session's own flush leaves these columns alone; any other change to the same objects is
still flushed by the session as usual, on the version written here.
"""
from sqlalchemy import bindparam, inspect, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from extensions import db
from workflows.models import HumanTask, ProcessInstance

# What running the engine changes on an instance row, and what closing or completing a task
# changes on its row.
INSTANCE_COLUMNS = ("state_json", "updated_at", "next_timer_at", "status", "completed_at",
                    "error")
TASK_COLUMNS = ("state", "completed_at", "completed_by_id", "claimed_by_id", "claimed_at", "data")


def _update(table, columns, versioned):
    where = [table.c.id == bindparam("row_id")]
    values = {name: bindparam(f"new_{name}") for name in columns}
    if versioned:
        where.append(table.c.lock_version == bindparam("old_version"))
        values["lock_version"] = bindparam("new_lock_version")
    return update(table).where(*where).values(values)


_INSTANCE = _update(ProcessInstance.__table__, INSTANCE_COLUMNS, versioned=True)
_TASK = _update(HumanTask.__table__, TASK_COLUMNS, versioned=False)
# A start run's new instances, all at once (their version stays the inserted 1: no one else
# has seen them); parameters from taken_as_written.
WRITE_STARTED = _update(ProcessInstance.__table__, INSTANCE_COLUMNS, versioned=False)


def _values(obj, columns):
    return {name: getattr(obj, name) for name in columns}


def _params(values):
    return {f"new_{name}": value for name, value in values.items()}


def mark_written(obj, values):
    """Record `values` ({attribute: value}) as the row's committed state; an object with no
    other change is then clean, so the session's next flush does not visit it (SQLAlchemy
    has no public call for that last step: _commit_all is what its own flush calls)."""
    for name, value in values.items():
        set_committed_value(obj, name, value)
    state = inspect(obj)
    if not state.committed_state:
        state._commit_all(state.dict, db.session.identity_map)


def taken_as_written(instance):
    """A new instance's values as parameters of WRITE_STARTED, marked as already written so
    that the session's flush leaves the row alone."""
    values = _values(instance, INSTANCE_COLUMNS)
    mark_written(instance, values)
    return _params(values) | {"row_id": instance.id}


def write_saved(instance):
    """Write the instance (when changed, under its optimistic version: StaleDataError when
    another transaction saved it first) and its changed task rows; nothing else is flushed."""
    connection = db.session.connection()
    if inspect(instance).modified:
        version = instance.lock_version
        values = _values(instance, INSTANCE_COLUMNS)
        result = connection.execute(_INSTANCE, _params(values) | {
            "row_id": instance.id, "old_version": version, "new_lock_version": version + 1})
        if result.rowcount != 1:
            raise StaleDataError(f"process instance {instance.id} was saved by someone else")
        mark_written(instance, values | {"lock_version": version + 1})
    rows = [obj for obj in db.session.dirty
            if type(obj) is HumanTask and obj.instance_id == instance.id]
    if not rows:
        return
    written = [_values(row, TASK_COLUMNS) for row in rows]
    connection.execute(_TASK, [_params(values) | {"row_id": row.id}
                               for row, values in zip(rows, written)])
    for row, values in zip(rows, written):
        mark_written(row, values)
