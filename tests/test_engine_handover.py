"""The handover process at engine level, with a fake clock."""
import datetime as dt

import pytest

from cases.models import Loan
from tests.conftest import HANDOVER_DATA, T0
from workflows import clock
from workflows.errors import Conflict, InvalidData, NotAllowed
from workflows.inbox import open_tasks_of_case
from workflows.models import HumanTask, ProcessInstance
from workflows.tasks import claim_task, complete_task, unclaim_task


def only_task(loan):
    tasks = open_tasks_of_case(loan.id)
    assert len(tasks) == 1, tasks
    return tasks[0]


def test_complete_path_registers_loan_and_plan(new_loan, users):
    loan = new_loan()
    first = only_task(loan)
    assert (first.bpmn_id, first.lane) == ("handover_file", "account_manager")
    assert first.candidate_user_id == users["am"].id
    # Due in 2 working days from Monday 2026-03-02: Wednesday 18:00 Beijing = 10:00 UTC.
    assert first.due_at.replace(tzinfo=dt.timezone.utc) == dt.datetime(
        2026, 3, 4, 10, 0, tzinfo=dt.timezone.utc)
    complete_task(first.id, users["am"], data=HANDOVER_DATA)
    check = only_task(loan)
    assert (check.bpmn_id, check.lane) == ("check_file", "post_loan_officer")
    clock.set_now(T0 + dt.timedelta(hours=5))
    complete_task(check.id, users["plo"], data={"check_result": "complete"})
    register = only_task(loan)
    assert register.bpmn_id == "register_loan"
    complete_task(register.id, users["plo"], data={
        "ledger_no": "TZ-1", "risk_group": "high", "inspection_frequency": "monthly"})
    assert open_tasks_of_case(loan.id) == []
    loan = Loan.query.get(loan.id)
    assert (loan.status, loan.risk_group, loan.inspection_frequency) == (
        "servicing", "high", "monthly")
    # The loan's installment now has its reminder process too.
    (instance,) = [i for i in ProcessInstance.query.filter_by(case_id=loan.id)
                   if i.definition.process_key == "handover"]
    assert instance.status == "completed"
    assert instance.completed_at is not None


def test_incomplete_file_goes_back_with_what_is_missing(new_loan, users):
    loan = new_loan()
    complete_task(only_task(loan).id, users["am"], data=HANDOVER_DATA)
    complete_task(only_task(loan).id, users["plo"], data={
        "check_result": "incomplete", "missing_items": ["collateral"], "check_note": "no deed"})
    back = only_task(loan)
    assert back.bpmn_id == "handover_file"
    assert back.candidate_user_id == users["am"].id
    complete_task(back.id, users["am"], data=dict(HANDOVER_DATA, documents=["collateral"]))
    again = only_task(loan)
    assert again.bpmn_id == "check_file"
    # A different officer may check the second round.
    complete_task(again.id, users["plo2"], data={"check_result": "complete"})
    assert only_task(loan).bpmn_id == "register_loan"


def test_incomplete_requires_missing_items(new_loan, users):
    loan = new_loan()
    complete_task(only_task(loan).id, users["am"], data=HANDOVER_DATA)
    check = only_task(loan)
    with pytest.raises(InvalidData) as err:
        complete_task(check.id, users["plo"], data={"check_result": "incomplete"})
    assert "missing_items" in err.value.field_errors
    assert HumanTask.query.get(check.id).state == "ready"


def test_four_eyes_even_with_both_roles(new_loan, users):
    loan = new_loan(manager="dual")
    complete_task(only_task(loan).id, users["dual"], data=HANDOVER_DATA)
    check = only_task(loan)
    with pytest.raises(NotAllowed, match="four eyes"):
        claim_task(check.id, users["dual"])
    with pytest.raises(NotAllowed, match="four eyes"):
        complete_task(check.id, users["dual"], data={"check_result": "complete"})
    complete_task(check.id, users["plo"], data={"check_result": "complete"})
    # The registration stays with the checker; four eyes would refuse the manager anyway.
    with pytest.raises(NotAllowed, match="assigned to another user|four eyes"):
        complete_task(only_task(loan).id, users["dual"], data={
            "ledger_no": "x", "risk_group": "low", "inspection_frequency": "quarterly"})


def test_wrong_role_and_other_account_manager_refused(new_loan, users):
    loan = new_loan()
    task = only_task(loan)
    with pytest.raises(NotAllowed):
        complete_task(task.id, users["plo"], data=HANDOVER_DATA)
    with pytest.raises(NotAllowed):
        claim_task(task.id, users["am2"])


def test_claim_unclaim_and_claimed_by_other(new_loan, users):
    loan = new_loan()
    complete_task(only_task(loan).id, users["am"], data=HANDOVER_DATA)
    check = only_task(loan)
    claim_task(check.id, users["plo"])
    with pytest.raises(Conflict, match="claimed by"):
        claim_task(check.id, users["plo2"])
    with pytest.raises(Conflict, match="claimed by"):
        complete_task(check.id, users["plo2"], data={"check_result": "complete"})
    with pytest.raises(NotAllowed):
        unclaim_task(check.id, users["plo2"])
    unclaim_task(check.id, users["plo"])
    claim_task(check.id, users["plo2"])
    complete_task(check.id, users["plo2"], data={"check_result": "complete"})


def test_completed_task_cannot_be_completed_again(new_loan, users):
    loan = new_loan()
    task = only_task(loan)
    complete_task(task.id, users["am"], data=HANDOVER_DATA)
    with pytest.raises(Conflict, match="already completed"):
        complete_task(task.id, users["am"], data=HANDOVER_DATA)


def test_state_is_stored_without_spec(new_loan):
    loan = new_loan()
    instance = ProcessInstance.query.filter_by(case_id=loan.id).one()
    assert '"spec"' not in instance.state_json
    assert instance.definition.process_key == "handover"
    assert instance.lock_version >= 1


def test_a_saved_state_holds_no_spec_and_restores_to_the_same_state(new_loan, users):
    """The spec is stored once per version: a state carries only the instance, and loading
    then saving it again gives the same text (nothing lost or added on the way)."""
    import json

    from workflows.engine import dump_state, load_state
    loan = new_loan("L-STATE")
    task = only_task(loan)
    claim_task(task.id, users["am"])
    complete_task(task.id, users["am"], data=HANDOVER_DATA)
    instance = ProcessInstance.query.filter_by(case_id=loan.id).one()
    state = json.loads(instance.state_json)
    assert "spec" not in state and "subprocess_specs" not in state
    assert state["tasks"] and state["typename"] == "BpmnWorkflow"
    workflow = load_state(instance.definition, instance.state_json)
    assert dump_state(workflow) == instance.state_json
    assert workflow.spec.name == "handover"
