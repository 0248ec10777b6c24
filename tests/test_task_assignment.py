"""Who a new step goes to: a step only one person may do is theirs from the start, a
`sameUserAs` step stays with whoever did the named step, four eyes win over both; a file sent
back comes back with what was submitted, not empty."""
import datetime as dt

import pytest

from tests.conftest import HANDOVER_DATA, ROOT, T0, csrf_from, login
from workflows import clock, service
from workflows.definitions import deploy_paths, load_forms
from workflows.inbox import open_tasks_of_case, previous_submission
from workflows.tasks import claim_task, complete_task
from workflows.validation import validate

RETURNED = {"check_result": "incomplete", "missing_items": ["collateral"], "check_note": "no deed"}


def only_task(loan):
    (task,) = open_tasks_of_case(loan.id)
    return task


@pytest.fixture
def created(app):
    """What AFTER_TASKS_CREATED hooks are given."""
    seen = []
    service.AFTER_TASKS_CREATED.append(seen.extend)
    yield seen
    service.AFTER_TASKS_CREATED.remove(seen.extend)


def test_a_candidates_step_is_theirs_from_the_start(new_loan, users, created):
    loan = new_loan()
    task = only_task(loan)
    assert task.bpmn_id == "handover_file"
    assert (task.candidate_user_id, task.claimed_by_id) == (users["am"].id, users["am"].id)
    assert task.claimed_at is not None
    assert [(t["bpmn_id"], t["claimed_by_id"], t["returned"]) for t in created] == [
        ("handover_file", users["am"].id, False)]
    # Claiming it anyway is harmless: still theirs, since the same moment.
    given = task.claimed_at
    clock.set_now(T0 + dt.timedelta(hours=1))
    assert claim_task(task.id, users["am"]).claimed_by_id == users["am"].id
    assert only_task(loan).claimed_at == given
    with pytest.raises(Exception) as refused:
        claim_task(task.id, users["am2"])
    assert getattr(refused.value, "code", None) == "assigned_other"


def test_the_pool_step_then_stays_with_the_checker(new_loan, users, created):
    loan = new_loan()
    complete_task(only_task(loan).id, users["am"], data=HANDOVER_DATA)
    check = only_task(loan)
    assert (check.lane, check.claimed_by_id) == ("post_loan_officer", None)  # the pool
    claim_task(check.id, users["plo2"])
    complete_task(check.id, users["plo2"], data={"check_result": "complete"})
    register = only_task(loan)
    assert register.bpmn_id == "register_loan"
    assert (register.candidate_user_id, register.claimed_by_id) == (users["plo2"].id,
                                                                     users["plo2"].id)
    with pytest.raises(Exception) as refused:
        claim_task(register.id, users["plo"])
    assert getattr(refused.value, "code", None) == "assigned_other"


def test_a_file_sent_back_returns_to_the_manager_filled_in(app, new_loan, users, created):
    loan = new_loan()
    first = only_task(loan)
    assert previous_submission(first) is None
    complete_task(first.id, users["am"], data=HANDOVER_DATA)
    complete_task(only_task(loan).id, users["plo"], data=RETURNED)
    back = only_task(loan)
    assert (back.bpmn_id, back.claimed_by_id) == ("handover_file", users["am"].id)
    assert created[-1]["returned"] is True and created[-1]["id"] == back.id
    submitted = previous_submission(back)
    assert submitted["purpose"] == HANDOVER_DATA["purpose"]
    assert submitted["documents"] == HANDOVER_DATA["documents"]

    client = app.test_client()
    login(client, "am")
    page = client.get(f"/tasks/{back.id}").get_data(as_text=True)
    assert HANDOVER_DATA["repayment_source"] in page  # the text field holds it again
    assert 'value="contract" checked' in page or 'checked value="contract"' in page \
        or ('value="contract"' in page and "checked" in page)
    # Changing one thing and sending it completes with the rest as it was.
    form = {"csrf_token": csrf_from(page), "documents": ["contract", "iou", "collateral"],
            "purpose": HANDOVER_DATA["purpose"], "repayment_source": "sales receipts",
            "risk_points": HANDOVER_DATA["risk_points"]}
    assert client.post(f"/tasks/{back.id}", data=form).status_code == 302
    assert only_task(loan).bpmn_id == "check_file"


def test_the_api_gives_the_previous_submission(app, new_loan, users, token_for):
    loan = new_loan()
    first = only_task(loan)
    client = app.test_client()
    body = client.get(f"/api/v1/tasks/{first.id}", headers=token_for("am")).get_json()
    assert body["previous"] is None
    complete_task(first.id, users["am"], data=HANDOVER_DATA)
    complete_task(only_task(loan).id, users["plo"], data=RETURNED)
    back = only_task(loan)
    body = client.get(f"/api/v1/tasks/{back.id}", headers=token_for("am")).get_json()
    assert body["previous"]["purpose"] == HANDOVER_DATA["purpose"]


def test_four_eyes_win_over_the_assignment(app, users, tmp_path, new_loan):
    """A step for a candidate whom four eyes exclude goes to the pool, not to them."""
    source = (ROOT / "bpmn" / "handover.bpmn").read_text()
    marker = '<spiffworkflow:property name="candidateUserVariable" value="account_manager" />'
    assert marker in source
    changed = tmp_path / "handover.bpmn"
    changed.write_text(source.replace(marker, marker + '\n          <spiffworkflow:property '
                                      'name="notSameUserAs" value="handover_file" />'))
    deploy_paths(sorted((ROOT / "bpmn").glob("*.bpmn")), ROOT / "bpmn" / "forms")
    deploy_paths([changed], ROOT / "bpmn" / "forms")
    loan = new_loan()
    first = only_task(loan)
    assert first.claimed_by_id == users["am"].id  # nobody did it before: theirs
    complete_task(first.id, users["am"], data=HANDOVER_DATA)
    complete_task(only_task(loan).id, users["plo"], data=RETURNED)
    back = only_task(loan)
    assert back.bpmn_id == "handover_file" and back.claimed_by_id is None


def test_stay_with_rules_are_checked_on_deploy(app):
    source = (ROOT / "bpmn" / "handover.bpmn").read_bytes()
    forms = load_forms(ROOT / "bpmn" / "forms")
    ghost = source.replace(b'name="sameUserAs" value="check_file"',
                           b'name="sameUserAs" value="ghost"')
    assert ghost != source
    codes = {(p.code, p.element_id) for p in validate(ghost, forms, "handover.bpmn", deployed={})}
    assert ("unknown_reference", "register_loan") in codes
    both = source.replace(b'name="sameUserAs" value="check_file"',
                          b'name="sameUserAs" value="handover_file"')
    codes = {(p.code, p.element_id) for p in validate(both, forms, "handover.bpmn", deployed={})}
    assert ("same_and_not_same", "register_loan") in codes


def test_only_whoever_may_do_the_step_gets_it_pre_filled(app, new_loan, users, token_for):
    loan = new_loan()
    complete_task(only_task(loan).id, users["am"], data=HANDOVER_DATA)
    complete_task(only_task(loan).id, users["plo"], data=RETURNED)
    back = only_task(loan)
    client = app.test_client()
    login(client, "plo")  # may look at the case, may not do the manager's step
    page = client.get(f"/tasks/{back.id}").get_data(as_text=True)
    assert HANDOVER_DATA["repayment_source"] not in page
    body = client.get(f"/api/v1/tasks/{back.id}", headers=token_for("plo")).get_json()
    assert body["previous"]["purpose"] == HANDOVER_DATA["purpose"]  # shown, masked if personal
