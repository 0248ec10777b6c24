"""SLAs and the managers' view: overdue flag and sweep, late follow-ups and their waiver,
reassignment under the four-eyes rule, counts, /manage access."""
import datetime as dt
import json

import pytest

from accounts.operations import create_user
from audit.models import AuditEvent
from cases.models import LateFollowUp, Loan
from extensions import db
from management.queries import late_followup_totals, open_task_counts, stage_counts
from management.sla import check_overdue_tasks, waive_late_followup
from notifications.models import Notification
from notifications.outbox import deliver_due
from tests.conftest import HANDOVER_DATA, PASSWORD, ROOT, login
from workflows import clock
from workflows.errors import Conflict, InvalidData, NotAllowed
from workflows.definitions import deploy_paths
from workflows.inbox import open_tasks_of_case
from workflows.models import HumanTask
from workflows.tasks import claim_task, complete_task, reassign_task, unclaim_task

EN = {"Accept-Language": "en"}
# The handover's first task is due on Wednesday 2026-03-04 18:00 Beijing (10:00 UTC).
DUE = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.timezone.utc)
LATE = DUE + dt.timedelta(hours=1)


@pytest.fixture
def deployed(app):
    """Only the diagrams these tests use, so other processes' changes cannot break them."""
    return deploy_paths([ROOT / "bpmn" / "handover.bpmn", ROOT / "bpmn" / "reminders.bpmn"],
                        ROOT / "bpmn" / "forms")


@pytest.fixture
def managers(users):
    spec = {"head": ["dept_head"], "head2": ["dept_head"], "gm": ["general_manager"],
            "risk": ["risk_manager"]}
    made = {name: create_user(name, PASSWORD, roles) for name, roles in spec.items()}
    made["head2"].active = False
    db.session.commit()
    return made


def only_task(loan):
    (task,) = open_tasks_of_case(loan.id)
    return task


def events(action):
    return AuditEvent.query.filter_by(action=action).order_by(AuditEvent.id).all()


# ---------------------------------------------------------------- overdue tasks

def test_overdue_task_is_flagged_in_the_inbox(app, new_loan, users):
    loan = new_loan()
    task = only_task(loan)
    client = app.test_client()
    login(client, "am")
    unclaim_task(task.id, users["am"])  # the manager's from the start; put back in the pool
    html = client.get("/inbox?tab=available", headers=EN).get_data(as_text=True)
    assert f"/tasks/{task.id}" in html and 'class="overdue"' not in html
    assert "Normal" in html  # the priority is shown
    clock.set_now(LATE)
    html = client.get("/inbox?tab=available", headers=EN).get_data(as_text=True)
    assert '<tr class="overdue">' in html and "badge overdue" in html
    claim_task(task.id, users["am"])
    html = client.get("/inbox?tab=mine", headers=EN).get_data(as_text=True)
    assert '<tr class="overdue">' in html


def test_sweep_notifies_holder_and_active_leaders_once(app, new_loan, users, managers):
    loan = new_loan()
    task = only_task(loan)
    assert check_overdue_tasks() == 0  # not due yet
    clock.set_now(LATE)
    assert check_overdue_tasks() == 1
    sent = Notification.query.order_by(Notification.id).all()
    # The candidate user (nobody claimed it) and the active leader; not the inactive one.
    assert [(n.recipient, n.channel, n.loan_id) for n in sent] == [
        ("am", "inbox", loan.id), ("head", "inbox", loan.id)]
    assert loan.loan_no in sent[0].body and loan.loan_no in sent[1].body
    assert HumanTask.query.get(task.id).overdue_notified_at is not None
    (event,) = events("task.overdue")
    assert event.task_id == task.id and event.data["notified"] == ["am", "head"]
    assert event.data["holder"] == "am"
    # A second sweep, later, does nothing more.
    clock.set_now(LATE + dt.timedelta(days=1))
    assert check_overdue_tasks() == 0
    assert Notification.query.count() == 2 and len(events("task.overdue")) == 1


def test_sweep_notifies_the_claimant_or_only_the_leader(app, new_loan, users, managers,
                                                       tmp_path, monkeypatch):
    claimed_loan, unheld_loan = new_loan(manager="dual"), new_loan("L-002")
    complete_task(only_task(claimed_loan).id, users["dual"], data=HANDOVER_DATA)
    complete_task(only_task(unheld_loan).id, users["am"], data=HANDOVER_DATA)
    claimed, unheld = only_task(claimed_loan), only_task(unheld_loan)  # post-loan checks
    claim_task(claimed.id, users["plo"])
    clock.set_now(dt.datetime(2026, 3, 10, tzinfo=dt.timezone.utc))
    assert check_overdue_tasks() == 2
    by_task = {e.task_id: (e.data["holder"], e.data["notified"])
               for e in events("task.overdue")}
    assert by_task == {claimed.id: ("plo", ["plo", "head"]), unheld.id: (None, ["head"])}
    # The outbox's senders deliver the "inbox" channel like any other.
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    assert deliver_due() == (3, 0)
    lines = [json.loads(line) for line in
             (tmp_path / "notifications.log").read_text(encoding="utf-8").splitlines()]
    assert sorted(line["recipient"] for line in lines) == ["head", "head", "plo"]
    assert {line["channel"] for line in lines} == {"inbox"}


def test_overdue_command(app, new_loan, users, managers):
    new_loan()
    result = app.test_cli_runner().invoke(args=["tasks", "overdue", "--as-of",
                                                LATE.isoformat()])
    assert result.exit_code == 0, result.output
    assert "1 overdue task(s) notified" in result.output
    assert Notification.query.count() == 2


# ---------------------------------------------------------------- late follow-ups

def test_late_completion_records_a_late_followup_on_time_does_not(app, new_loan, users):
    on_time = new_loan()
    complete_task(only_task(on_time).id, users["am"], data=HANDOVER_DATA)
    assert LateFollowUp.query.count() == 0
    late_loan = new_loan("L-002", manager="am2")
    task = only_task(late_loan)
    clock.set_now(LATE)
    complete_task(task.id, users["am2"], data=HANDOVER_DATA)
    (late,) = LateFollowUp.query.all()
    # Recorded, not fined: a fine needs the leader's finding of own fault [000 §七].
    assert (late.task_id, late.user_id, late.loan_id, late.fine) == (
        task.id, users["am2"].id, late_loan.id, 0)
    assert late.waived_at is None and late.fined_at is None
    (event,) = events("late_followup.recorded")
    assert event.actor_id == users["am2"].id and event.data["user"] == "am2"
    (user, count, fines, waived, due, repeated), = late_followup_totals()
    assert (user.username, count, fines, waived, due, repeated) == ("am2", 1, 0, 0, 0, False)


@pytest.fixture
def late(new_loan, users):
    loan = new_loan()
    clock.set_now(LATE)
    complete_task(only_task(loan).id, users["am"], data=HANDOVER_DATA)
    return LateFollowUp.query.one()


def test_leader_waives_with_a_reason(app, late, users, managers):
    client = app.test_client()
    login(client, "head")
    page = client.get("/manage", headers=EN).get_data(as_text=True)
    assert f'action="/manage/late-followups/{late.id}/waive' in page
    refused = client.post(f"/manage/late-followups/{late.id}/waive", data={"reason": "  "},
                          headers=EN)
    assert refused.status_code == 400
    assert LateFollowUp.query.get(late.id).waived_at is None
    done = client.post(f"/manage/late-followups/{late.id}/waive?next=https://evil.example/",
                       data={"reason": "client refused every visit"})
    assert done.status_code == 302 and "evil" not in done.headers["Location"]
    row = LateFollowUp.query.get(late.id)
    assert (row.waived_by_id, row.waive_reason) == (
        managers["head"].id, "client refused every visit")
    (event,) = events("late_followup.waived")
    assert event.actor_id == managers["head"].id
    assert event.data["reason"] == "client refused every visit" and event.data["user"] == "am"
    (user, count, fines, waived, due, _repeated), = late_followup_totals()
    assert (count, waived, due) == (1, 1, 0)
    # Per-user list with totals.
    listing = client.get(f"/manage/late-followups?user={users['am'].id}", headers=EN)
    assert listing.status_code == 200 and "client refused every visit" in listing.get_data(
        as_text=True)
    with pytest.raises(Conflict):
        waive_late_followup(late.id, "again", managers["head"])


def test_waive_refused_without_reason_or_leader(app, late, users, managers):
    with pytest.raises(InvalidData):
        waive_late_followup(late.id, "", managers["head"])
    with pytest.raises(NotAllowed):
        waive_late_followup(late.id, "why not", managers["gm"])
    for name in ("compliance", "collector", "gm"):
        client = app.test_client()
        login(client, name)
        response = client.post(f"/manage/late-followups/{late.id}/waive",
                               data={"reason": "please"})
        assert response.status_code == 403, name
    assert LateFollowUp.query.get(late.id).waived_at is None
    assert events("late_followup.waived") == []


# ---------------------------------------------------------------- reassignment

@pytest.fixture
def check_task(new_loan, users):
    """A check-file task whose handover `dual` completed: four eyes excludes dual."""
    loan = new_loan(manager="dual")
    complete_task(only_task(loan).id, users["dual"], data=HANDOVER_DATA)
    task = only_task(loan)
    claim_task(task.id, users["plo"])
    return task


def test_reassign_happy_path_is_audited(app, check_task, users, managers):
    row = reassign_task(check_task.id, users["plo2"], "plo is on leave", managers["head"])
    assert row.claimed_by_id == users["plo2"].id
    (event,) = events("task.reassigned")
    assert event.actor_id == managers["head"].id and event.task_id == check_task.id
    assert event.data == {"from": "plo", "to": "plo2", "reason": "plo is on leave"}
    # The new holder can complete it.
    complete_task(check_task.id, users["plo2"], data={"check_result": "complete"})


def test_reassign_refusals(app, check_task, users, managers):
    head = managers["head"]
    with pytest.raises(NotAllowed) as wrong_role:
        reassign_task(check_task.id, users["am"], "try", head)
    assert wrong_role.value.code == "wrong_role"
    with pytest.raises(NotAllowed) as four_eyes:
        reassign_task(check_task.id, users["dual"], "try", head)
    assert four_eyes.value.code == "four_eyes"
    with pytest.raises(InvalidData):
        reassign_task(check_task.id, users["plo2"], "   ", head)
    with pytest.raises(Conflict):
        reassign_task(check_task.id, users["plo"], "same", head)
    with pytest.raises(NotAllowed) as not_manager:
        reassign_task(check_task.id, users["plo2"], "I take it", users["plo"])
    assert not_manager.value.code == "not_manager"
    assert HumanTask.query.get(check_task.id).claimed_by_id == users["plo"].id
    assert events("task.reassigned") == []


def test_reassign_through_the_web(app, check_task, users, managers):
    client = app.test_client()
    login(client, "gm")
    form = client.get(f"/manage/tasks/{check_task.id}/reassign", headers=EN)
    html = form.get_data(as_text=True)
    assert form.status_code == 200
    # Only users who may take it are offered: not dual (four eyes), not the holder.
    assert f'value="{users["plo2"].id}"' in html
    assert f'value="{users["dual"].id}"' not in html and f'value="{users["plo"].id}"' not in html
    no_reason = client.post(f"/manage/tasks/{check_task.id}/reassign",
                            data={"user": users["plo2"].id, "reason": ""})
    assert no_reason.status_code == 400
    excluded = client.post(f"/manage/tasks/{check_task.id}/reassign",
                           data={"user": users["dual"].id, "reason": "try"})
    assert excluded.status_code == 400
    assert HumanTask.query.get(check_task.id).claimed_by_id == users["plo"].id
    done = client.post(f"/manage/tasks/{check_task.id}/reassign",
                       data={"user": users["plo2"].id, "reason": "workload"})
    assert done.status_code == 302
    assert HumanTask.query.get(check_task.id).claimed_by_id == users["plo2"].id
    collector = app.test_client()
    login(collector, "collector")
    assert collector.post(f"/manage/tasks/{check_task.id}/reassign",
                          data={"user": users["plo"].id, "reason": "x"}).status_code == 403


# ---------------------------------------------------------------- the view and its counts

def test_counts(app, new_loan, users):
    loans = [new_loan(f"L-{i}") for i in range(4)]
    for loan, stage in zip(loans, ("dpd_1_3", "dpd_1_3", "M2", "current")):
        Loan.query.get(loan.id).stage = stage
    closed = new_loan("L-closed")
    Loan.query.get(closed.id).status = "closed"
    Loan.query.get(closed.id).stage = "M3"
    db.session.commit()
    assert stage_counts() == [("current", 1), ("dpd_1_3", 2), ("dpd_4_7", 0), ("dpd_8_30", 0),
                              ("M2", 1), ("M3", 0), ("M3+", 0)]
    complete_task(only_task(loans[0]).id, users["am"], data=HANDOVER_DATA)
    clock.set_now(LATE)
    counts = {(p, b): (n, o) for p, b, _name, n, o in open_task_counts()}
    assert counts == {("handover", "handover_file"): (4, 4),
                      ("handover", "check_file"): (1, 1)}


def test_manage_page(app, new_loan, users, managers):
    loan = new_loan()
    approval = only_task(loan)
    # As an approval step would be: a role's, in its pool.
    approval.lane, approval.candidate_user_id, approval.claimed_by_id = "dept_head", None, None
    other = new_loan("L-002")
    db.session.commit()
    clock.set_now(LATE)
    client = app.test_client()
    login(client, "head")
    html = client.get("/manage", headers=EN).get_data(as_text=True)
    assert 'href="/manage"' in html  # the navigation link
    approvals = html.split('id="approvals-table"')[1].split("</table>")[0]
    assert f'data-id="{approval.id}"' in approvals
    assert f'data-id="{only_task(other).id}"' not in approvals
    team = html.split('id="team-tasks"')[1].split("</table>")[0]
    assert f'data-id="{only_task(other).id}" class="overdue"' in team
    assert 'data-stage="current"' in html and 'data-step="handover/handover_file"' in html
    # Filters: by role, by user (the candidate of an unclaimed task).
    by_role = client.get("/manage?role=dept_head", headers=EN).get_data(as_text=True)
    team = by_role.split('id="team-tasks"')[1].split("</table>")[0]
    assert f'data-id="{approval.id}"' in team and f'data-id="{only_task(other).id}"' not in team
    by_user = client.get(f"/manage?user={users['am'].id}", headers=EN).get_data(as_text=True)
    team = by_user.split('id="team-tasks"')[1].split("</table>")[0]
    assert f'data-id="{only_task(other).id}"' in team and f'data-id="{approval.id}"' not in team
    # A general manager has no approval in the dept_head lane; risk manager sees the page.
    gm = app.test_client()
    login(gm, "gm")
    assert "No approvals are waiting for you." in gm.get("/manage", headers=EN).get_data(
        as_text=True)
    risk = app.test_client()
    login(risk, "risk")
    assert risk.get("/manage").status_code == 200


def test_manage_forbidden_for_other_roles(app, users):
    for name in ("collector", "compliance", "am"):
        client = app.test_client()
        login(client, name)
        assert client.get("/manage").status_code == 403, name
        assert 'href="/manage"' not in client.get("/inbox").get_data(as_text=True)
    assert events("permission.denied")


def test_rule_fines_only_on_the_leaders_finding_never_their_own(app, late, users, managers):
    """Issue 11 rule 3 [000 §七]: a late follow-up is fined only when the leader finds it was
    the holder's own fault after the instruction; the leader never decides on their own."""
    from management.sla import impose_fine
    assert late.fine == 0
    with pytest.raises(NotAllowed):
        impose_fine(late.id, "late again", managers["gm"])  # not the leader
    client = app.test_client()
    login(client, "head")
    done = client.post(f"/manage/late-followups/{late.id}/fine",
                       data={"reason": "called twice, did not follow up"})
    assert done.status_code == 302
    row = LateFollowUp.query.get(late.id)
    assert (row.fine, row.fined_by_id) == (100, managers["head"].id) and row.fined_at
    (event,) = events("late_followup.fined")
    assert event.data["reason"] == "called twice, did not follow up"
    with pytest.raises(Conflict):
        impose_fine(late.id, "again", managers["head"])
    # The leader's own late follow-up is for someone else to decide.
    row.user_id, row.fined_at, row.fine = managers["head"].id, None, 0
    db.session.commit()
    for decide in (impose_fine, waive_late_followup):
        with pytest.raises(NotAllowed) as refused:
            decide(late.id, "mine", managers["head"])
        assert refused.value.code == "own_followup"


def test_rule_no_fines_for_leaders_approvals_or_legal_steps(app):
    """Issue 11 rule 3: the dept_head's and general manager's approvals and legal steps are
    never late follow-ups."""
    from management.sla import record_late_followup
    from types import SimpleNamespace
    for lane in ("dept_head", "general_manager", "legal"):
        row = SimpleNamespace(lane=lane, due_at=LATE - dt.timedelta(days=1), completed_at=LATE)
        assert record_late_followup(row, SimpleNamespace(id=1)) is None
    assert LateFollowUp.query.count() == 0


def test_rule_three_points_for_an_error_free_month_and_an_on_time_recovery(app, late, users,
                                                                          managers, new_loan):
    """Issue 11 rule 3 [000 §七]: +3 for a month without a fined late follow-up; +3 for an
    overdue loan collected on time after the leader's instruction."""
    from cases.models import PerformancePoint
    from management.points import award_error_free_month, award_recovery, points_by_user
    from management.sla import impose_fine
    # am completed a task in March (late, but not fined): an error-free month.
    assert award_error_free_month("2026-03") == 1
    assert award_error_free_month("2026-03") == 0  # once per month
    assert [(u.username, p) for u, p in points_by_user("2026-03")] == [("am", 3)]
    # A fined late follow-up in the month: no points for it.
    PerformancePoint.query.delete()
    impose_fine(late.id, "own fault after instruction", managers["head"])
    assert award_error_free_month("2026-03") == 0
    loan = new_loan("L-002")
    assert award_recovery(loan.id, "collector", 95, dt.date(2026, 3, 20)) is None  # too late
    assert award_recovery(loan.id, "collector", 40, dt.date(2026, 3, 20)).points == 3
    assert award_recovery(loan.id, "collector", 40, dt.date(2026, 3, 21)) is None  # once
