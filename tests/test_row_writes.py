"""A save writes the instance and its task rows by prebuilt UPDATEs (workflows/row_writes.py):
under the instance's version, leaving the session clean, and without losing any other change
made to the same objects."""
import pytest
from sqlalchemy import text
from sqlalchemy.orm.exc import StaleDataError

from extensions import db
from tests.conftest import HANDOVER_DATA
from workflows.errors import Conflict
from workflows.models import HumanTask, ProcessInstance
from workflows.row_writes import write_saved
from workflows.tasks import _lock_for_completion, complete_task


def _stored(instance_id):
    return db.session.execute(text(
        "SELECT lock_version, state_json FROM process_instances WHERE id = :id"),
        {"id": instance_id}).one()


def _handover(new_loan):
    loan = new_loan()
    task = HumanTask.query.filter_by(case_id=loan.id, state="ready").one()
    return task.id, task.instance_id


def test_completing_writes_the_instance_once_under_its_next_version(new_loan, users):
    task_id, instance_id = _handover(new_loan)
    version, state = _stored(instance_id)
    complete_task(task_id, users["am"], data=HANDOVER_DATA)
    new_version, new_state = _stored(instance_id)
    assert new_version == version + 1
    assert new_state != state
    row = db.session.execute(text("SELECT state, completed_by_id, data FROM human_tasks "
                                  "WHERE id = :id"), {"id": task_id}).one()
    assert (row.state, row.completed_by_id) == ("completed", users["am"].id)
    assert "purpose" in row.data


def test_the_written_objects_leave_the_session_clean(new_loan, users):
    task_id, instance_id = _handover(new_loan)
    row, instance, _excluded, _open = _lock_for_completion(task_id, users["am"])
    instance.state_json, instance.error = instance.state_json + " ", None
    row.state = "cancelled"
    write_saved(instance)
    assert instance not in db.session.dirty and row not in db.session.dirty
    assert _stored(instance_id).state_json.endswith(" ")
    db.session.rollback()


def test_a_version_saved_by_someone_else_is_refused(new_loan, users):
    task_id, instance_id = _handover(new_loan)
    _row, instance, _excluded, _open = _lock_for_completion(task_id, users["am"])
    # Another writer's save, as if it had happened between this one's read and write.
    db.session.execute(text("UPDATE process_instances SET lock_version = lock_version + 1 "
                            "WHERE id = :id"), {"id": instance_id})
    instance.state_json = "{}"
    with pytest.raises(StaleDataError):
        write_saved(instance)
    db.session.rollback()


def test_a_stale_save_of_a_completion_is_a_conflict_and_changes_nothing(new_loan, users,
                                                                         monkeypatch):
    task_id, instance_id = _handover(new_loan)
    before = _stored(instance_id)
    import workflows.row_writes as row_writes
    real = row_writes.write_saved

    def someone_else_first(instance):
        db.session.execute(text("UPDATE process_instances SET lock_version = lock_version + 1 "
                                "WHERE id = :id"), {"id": instance.id})
        real(instance)
    monkeypatch.setattr("workflows.service.write_saved", someone_else_first)
    with pytest.raises(Conflict):
        complete_task(task_id, users["am"], data=HANDOVER_DATA)
    assert _stored(instance_id) == before
    assert db.session.get(HumanTask, task_id).state == "ready"


def test_another_change_to_the_same_instance_is_still_flushed(new_loan, users):
    task_id, instance_id = _handover(new_loan)
    version = _stored(instance_id).lock_version
    _row, instance, _excluded, _open = _lock_for_completion(task_id, users["am"])
    instance.state_json = instance.state_json + " "
    instance.business_key = "kept"  # not a column a save writes: the session flushes it
    write_saved(instance)
    db.session.commit()
    stored = db.session.get(ProcessInstance, instance_id)
    assert stored.business_key == "kept"
    assert stored.state_json.endswith(" ")
    assert stored.lock_version == version + 2  # this save, then the session's own flush
