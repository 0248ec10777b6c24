"""The database writes a new task's notSameUserAs exclusions (migration 0020's trigger): every
completer of a named step of the same instance, loops included, and nobody else."""
import uuid

from sqlalchemy import select

from bulk import insert_rows
from extensions import db
from workflows.models import HumanTask, HumanTaskExclusion
from workflows.tasks import complete_task
from tests.conftest import HANDOVER_DATA


def _row(instance_id, bpmn_id, state="completed", completed_by=None, not_same_user_as=None):
    return dict(instance_id=instance_id, case_id=None, task_guid=str(uuid.uuid4()),
                process_key="handover", bpmn_id=bpmn_id, name=bpmn_id, lane="account_manager",
                priority=2, state=state, completed_by_id=completed_by,
                not_same_user_as=not_same_user_as)


def _excluded(task_id):
    return dict(db.session.execute(select(HumanTaskExclusion.user_id,
                                          HumanTaskExclusion.reason_task)
                                   .where(HumanTaskExclusion.task_id == task_id)).all())


def test_completers_of_the_named_steps_of_the_instance_are_excluded(new_loan, users):
    first, other = new_loan("L-001"), new_loan("L-002")
    (mine,) = HumanTask.query.filter_by(case_id=first.id).all()
    (theirs,) = HumanTask.query.filter_by(case_id=other.id).all()
    u = {name: user.id for name, user in users.items()}
    done = [_row(mine.instance_id, "a", completed_by=u["am"]),
            _row(mine.instance_id, "a", completed_by=u["am2"]),  # the step came round again
            _row(mine.instance_id, "b", completed_by=u["plo"]),
            _row(mine.instance_id, "ab", completed_by=u["plo2"]),  # a name containing "a"
            _row(mine.instance_id, "c", completed_by=u["dual"]),  # not named
            _row(mine.instance_id, "a", state="cancelled"),
            _row(theirs.instance_id, "a", completed_by=u["collector"])]  # another instance
    new = [_row(mine.instance_id, "check", state="ready", not_same_user_as="a,b"),
           _row(mine.instance_id, "other", state="ready")]
    for row in done + new:
        row["created_at"] = mine.created_at
    insert_rows(HumanTask.__table__, done + new, ids=True)

    assert _excluded(new[0]["id"]) == {u["am"]: "a,b", u["am2"]: "a,b", u["plo"]: "a,b"}
    assert _excluded(new[1]["id"]) == {}


def test_completing_a_step_excludes_its_completer_from_the_check(new_loan, users):
    loan = new_loan()
    (task,) = HumanTask.query.filter_by(case_id=loan.id).all()
    complete_task(task.id, users["am"], data=HANDOVER_DATA)
    (check,) = HumanTask.query.filter_by(case_id=loan.id, state="ready").all()
    assert check.not_same_user_as == "handover_file"
    assert _excluded(check.id) == {users["am"].id: "handover_file"}
