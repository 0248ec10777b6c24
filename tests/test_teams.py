"""Teams (issue 14 item 4): operations, readers, the admin pages, and "my team" in the
managers' view (open tasks, reassignment lists, refusal outside the team)."""
import pytest

from accounts.models import Team, User
from accounts.operations import create_user
from accounts.teams import (check_may_assign, create_team, managed_user_ids, my_team_ids,
                            rename_team, set_leader, set_members, team_member_ids,
                            teams_led_by)
from audit.models import AuditEvent
from extensions import db
from tests.conftest import HANDOVER_DATA, PASSWORD, ROOT, login
from workflows.definitions import deploy_paths
from workflows.errors import InvalidData, NotAllowed
from workflows.inbox import open_tasks_of_case
from workflows.models import HumanTask
from workflows.tasks import complete_task

EN = {"Accept-Language": "en"}


@pytest.fixture
def deployed(app):
    return deploy_paths([ROOT / "bpmn" / "handover.bpmn", ROOT / "bpmn" / "reminders.bpmn"],
                        ROOT / "bpmn" / "forms")


@pytest.fixture
def staff(users):
    spec = {"head": ["dept_head"], "head2": ["dept_head"], "gm": ["general_manager"],
            "risk": ["risk_manager"]}
    made = {name: create_user(name, PASSWORD, roles) for name, roles in spec.items()}
    return {**users, **made}


def events(action):
    return AuditEvent.query.filter_by(action=action).order_by(AuditEvent.id).all()


def test_operations_and_readers(app, staff):
    north = create_team("North", staff["head"], staff["admin"])
    south = create_team("South", staff["head2"], staff["admin"])
    assert staff["head"].team_id == north.id  # a leader in no team joins theirs
    set_members(north, [staff["am"], staff["plo"], staff["head"]], staff["admin"])
    set_members(south, [staff["am2"], staff["collector"]], staff["admin"])
    assert staff["head2"].team_id is None  # not listed: left the team
    assert teams_led_by(staff["head"]) == [north]
    assert teams_led_by(staff["am"]) == []
    ids = lambda *names: sorted(staff[n].id for n in names)  # noqa: E731
    assert team_member_ids([north.id]) == ids("am", "plo", "head")
    # the leader counts even when not a member
    assert team_member_ids([south.id]) == ids("am2", "collector", "head2")
    assert team_member_ids([]) == []
    assert my_team_ids(staff["am"]) == [north.id]
    assert my_team_ids(staff["head2"]) == [south.id]
    assert my_team_ids(staff["gm"]) == []
    # moving a person: one team at most, the event says where from
    set_members(south, [staff["am2"], staff["collector"], staff["plo"]], staff["admin"])
    assert staff["plo"].team_id == south.id
    assert team_member_ids([north.id]) == ids("am", "head")
    moved = events("team.members_set")[-1].data
    assert moved["joined"] == ["plo"] and moved["moved_from"] == {"plo": north.id}
    assert managed_user_ids(staff["head"]) == ids("am", "head")
    assert managed_user_ids(staff["gm"]) is None and managed_user_ids(staff["risk"]) is None
    rename_team(north, "North-East", staff["admin"])
    assert db.session.get(Team, north.id).name == "North-East"
    assert [e.data["to"] for e in events("team.renamed")] == ["North-East"]
    assert len(events("team.created")) == 2 and len(events("team.members_set")) == 3


def test_validation(app, staff):
    create_team("North", staff["head"], staff["admin"])
    with pytest.raises(InvalidData) as caught:
        create_team(" North ", None, staff["admin"])
    assert caught.value.code == "team_exists"
    with pytest.raises(InvalidData) as caught:
        create_team("   ", None, staff["admin"])
    assert caught.value.code == "bad_team_name"
    with pytest.raises(InvalidData) as caught:
        create_team("West", staff["am"], staff["admin"])
    assert caught.value.code == "leader_not_head"
    team = create_team("West", None, staff["admin"])
    staff["head2"].active = False
    db.session.commit()
    with pytest.raises(InvalidData):
        set_leader(team, staff["head2"], staff["admin"])
    assert db.session.get(Team, team.id).leader_id is None
    assert Team.query.count() == 2


def test_dept_head_without_a_team_sees_everyone(app, staff):
    assert managed_user_ids(staff["head"]) is None
    check_may_assign(staff["head"], staff["am2"])  # no refusal


def test_admin_pages(app, staff):
    client = app.test_client()
    login(client, "admin")
    assert client.get("/admin/teams", headers=EN).status_code == 200
    response = client.post("/admin/teams", data={"name": "Collections A",
                                                 "leader": staff["head"].id}, headers=EN)
    assert response.status_code == 302
    team = Team.query.filter_by(name="Collections A").one()
    page = client.get(f"/admin/teams/{team.id}", headers=EN).get_data(as_text=True)
    assert "Collections A" in page and "Save the members" in page
    response = client.post(f"/admin/teams/{team.id}/members",
                           data={"members": [staff["collector"].id, staff["am"].id]},
                           headers=EN)
    assert response.status_code == 302
    assert sorted(u.username for u in User.query.filter_by(team_id=team.id)) == \
        ["am", "collector"]
    response = client.post(f"/admin/teams/{team.id}/leader", data={"leader": staff["am"].id},
                           headers=EN)
    assert response.status_code == 400  # not a department head: not even a choice
    response = client.post(f"/admin/teams/{team.id}/leader", data={"leader": staff["head2"].id},
                           headers=EN)
    assert response.status_code == 302 and db.session.get(Team, team.id).leader_id == \
        staff["head2"].id
    response = client.post(f"/admin/teams/{team.id}/name", data={"name": ""}, headers=EN)
    assert response.status_code == 400
    response = client.post("/admin/teams", data={"name": "Collections A", "leader": 0},
                           headers=EN)
    assert response.status_code == 400 and "A team of this name exists." in \
        response.get_data(as_text=True)
    # not an administrator
    login(client, "head")
    assert client.get("/admin/teams", headers=EN).status_code == 403
    assert client.post("/admin/teams", data={"name": "X", "leader": 0}).status_code == 403


def _checks(new_loan, staff, *pairs):
    """For each (loan_no, manager): the loan, its handover done by the manager; the post-loan
    officers' check task that follows (in their pool)."""
    tasks = []
    for loan_no, manager in pairs:
        loan = new_loan(loan_no, manager)
        complete_task(open_tasks_of_case(loan.id)[0].id, staff[manager], data=HANDOVER_DATA)
        tasks.append(open_tasks_of_case(loan.id)[0])
    return tasks


def test_my_team_in_the_managers_view(app, new_loan, staff):
    north = create_team("North", staff["head"], staff["admin"])
    set_members(north, [staff["am"], staff["plo"], staff["head"]], staff["admin"])
    mine, theirs = _checks(new_loan, staff, ("L-001", "am"), ("L-002", "am2"))
    client = app.test_client()
    login(client, "head")
    html = client.get("/manage", headers=EN).get_data(as_text=True)
    assert f'data-id="{mine.id}"' in html and f'data-id="{theirs.id}"' not in html
    assert 'id="my-team"' in html and "North" in html
    # the user filter lists the team's people only
    assert f'value="{staff["plo"].id}"' in html and f'value="{staff["plo2"].id}"' not in html
    # reassignment: only team members who may take it (dual and plo2 hold the role too)
    page = client.get(f"/manage/tasks/{mine.id}/reassign", headers=EN).get_data(as_text=True)
    assert "(plo)" in page and "(plo2)" not in page and "(dual)" not in page
    response = client.post(f"/manage/tasks/{mine.id}/reassign",
                           data={"user": staff["plo2"].id, "reason": "cover"}, headers=EN)
    assert response.status_code == 403
    assert "is not in your team" in response.get_data(as_text=True)
    assert db.session.get(HumanTask, mine.id).claimed_by_id is None
    with pytest.raises(NotAllowed) as caught:
        check_may_assign(staff["head"], staff["plo2"])
    assert caught.value.code == "outside_team"
    response = client.post(f"/manage/tasks/{mine.id}/reassign",
                           data={"user": staff["plo"].id, "reason": "cover"}, headers=EN)
    assert response.status_code == 302
    assert db.session.get(HumanTask, mine.id).claimed_by_id == staff["plo"].id
    # held by a member now: still the team's even after the loan's manager leaves
    set_members(north, [staff["plo"], staff["head"]], staff["admin"])
    html = client.get("/manage", headers=EN).get_data(as_text=True)
    assert f'data-id="{mine.id}"' in html
    # the general manager keeps seeing everyone, and may give it to anyone
    login(client, "gm")
    html = client.get("/manage", headers=EN).get_data(as_text=True)
    assert f'data-id="{mine.id}"' in html and f'data-id="{theirs.id}"' in html
    assert 'id="my-team"' not in html
    page = client.get(f"/manage/tasks/{mine.id}/reassign", headers=EN).get_data(as_text=True)
    assert "(plo2)" in page and "(dual)" in page


def test_pool_tasks_of_the_teams_loans_are_the_teams(app, new_loan, staff):
    north = create_team("North", staff["head"], staff["admin"])
    set_members(north, [staff["am"], staff["plo"]], staff["admin"])
    loan = new_loan("L-001", "am")
    complete_task(open_tasks_of_case(loan.id)[0].id, staff["am"], data=HANDOVER_DATA)
    (check,) = open_tasks_of_case(loan.id)  # the post-loan officers' pool task
    assert check.claimed_by_id is None and check.candidate_user_id is None
    client = app.test_client()
    login(client, "head")
    assert f'data-id="{check.id}"' in client.get("/manage", headers=EN).get_data(as_text=True)
    set_members(north, [staff["plo"]], staff["admin"])  # the loan's manager left
    assert f'data-id="{check.id}"' not in client.get("/manage",
                                                     headers=EN).get_data(as_text=True)
