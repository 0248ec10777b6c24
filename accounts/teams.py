"""Teams (issue 14): a team has one leader, a dept_head, and members (users.team_id, so a user
is in at most one team). Operations commit and are audited; the readers are what "my team"
means elsewhere (the managers' view, the scorecards, the dashboards).

"My team" of a dept_head who leads a team is the members of every team they lead plus those
teams' leaders. A general_manager or risk_manager, and a dept_head who leads no team, see
everyone: `managed_user_ids` answers None for them.
"""
from sqlalchemy import or_, select

from accounts.models import Team, User
from audit.operations import record
from extensions import db
from workflows.errors import InvalidData, NotAllowed

LEADER_ROLE = "dept_head"
# Roles whose "my team" is everyone (the whole department or bank).
SEE_ALL_ROLES = frozenset({"general_manager", "risk_manager"})
NAME_MAX = 120


def _name(name, team=None):
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidData("a team name has 1 to 120 characters", code="bad_team_name",
                          field_errors={"name": ["bad_team_name"]})
    other = db.session.scalar(select(Team).where(Team.name == name))
    if other is not None and other is not team:
        raise InvalidData(f"a team named {name} exists", code="team_exists",
                          field_errors={"name": ["team_exists"]})
    return name


def _check_leader(leader):
    if leader is None:
        return
    if not leader.active or LEADER_ROLE not in leader.roles:
        raise InvalidData(f"{leader.username} is not an active department head",
                          code="leader_not_head", field_errors={"leader": ["leader_not_head"]})


def create_team(name, leader, actor):
    """A new team led by `leader` (an active dept_head, or None); the leader joins it when
    they are in no team yet. Commits; the team."""
    team = Team(name=_name(name), leader_id=leader.id if leader else None)
    _check_leader(leader)
    db.session.add(team)
    db.session.flush()
    if leader is not None and leader.team_id is None:
        leader.team_id = team.id
    record("team.created", actor=actor, data={
        "team_id": team.id, "name": team.name,
        "leader": leader.username if leader else None})
    db.session.commit()
    return team


def rename_team(team, name, actor):
    old, team.name = team.name, _name(name, team)
    if old != team.name:
        record("team.renamed", actor=actor, data={"team_id": team.id, "from": old,
                                                  "to": team.name})
    db.session.commit()
    return team


def set_leader(team, leader, actor):
    """Another leader (an active dept_head, or None); commits."""
    _check_leader(leader)
    old = db.session.get(User, team.leader_id) if team.leader_id else None
    team.leader_id = leader.id if leader else None
    if leader is not None and leader.team_id is None:
        leader.team_id = team.id
    record("team.leader_set", actor=actor, data={
        "team_id": team.id, "from": old.username if old else None,
        "to": leader.username if leader else None})
    db.session.commit()
    return team


def set_members(team, users, actor):
    """The team's members are exactly `users`: those in another team move here (the audit
    event names the team they came from), members not listed leave. Commits."""
    wanted = {u.id: u for u in users}
    current = db.session.scalars(select(User).where(User.team_id == team.id)).all()
    left = sorted(u.username for u in current if u.id not in wanted)
    for user in current:
        if user.id not in wanted:
            user.team_id = None
    moved, joined = {}, []
    for user in wanted.values():
        if user.team_id == team.id:
            continue
        if user.team_id is not None:
            moved[user.username] = user.team_id
        joined.append(user.username)
        user.team_id = team.id
    if joined or left:
        record("team.members_set", actor=actor, data={
            "team_id": team.id, "joined": sorted(joined), "left": left,
            "moved_from": moved})
    db.session.commit()
    return team


# ---------------------------------------------------------------- readers

def teams_led_by(user) -> list:
    """The teams `user` leads, by name."""
    if user is None or getattr(user, "id", None) is None:
        return []
    return db.session.scalars(select(Team).where(Team.leader_id == user.id)
                              .order_by(Team.name)).all()


def team_member_ids(team_ids) -> list:
    """Ids of the members of these teams and of their leaders, ascending."""
    team_ids = list(team_ids)
    if not team_ids:
        return []
    leaders = select(Team.leader_id).where(Team.id.in_(team_ids), Team.leader_id.is_not(None))
    return list(db.session.scalars(select(User.id).where(or_(
        User.team_id.in_(team_ids), User.id.in_(leaders))).order_by(User.id)))


def my_team_ids(user) -> list:
    """Ids of the teams `user` leads or belongs to, ascending."""
    ids = {t.id for t in teams_led_by(user)}
    if getattr(user, "team_id", None):
        ids.add(user.team_id)
    return sorted(ids)


def managed_user_ids(user):
    """Whom `user` manages in the managers' view: None for everyone (general and risk
    managers, a dept_head who leads no team), else the ids of the people of the teams they
    lead."""
    if user.roles & SEE_ALL_ROLES:
        return None
    led = [t.id for t in teams_led_by(user)]
    if not led:
        return None
    return team_member_ids(led)


def check_may_assign(actor, user):
    """A team leader gives tasks only to the people of their teams."""
    scope = managed_user_ids(actor)
    if scope is not None and user.id not in scope:
        raise NotAllowed(f"{user.username} is not in a team {actor.username} leads",
                         code="outside_team")


def leads(leader, user) -> bool:
    """Whether `leader` leads the team `user` is in."""
    return bool(user.team_id) and user.team_id in {t.id for t in teams_led_by(leader)}
