"""Who sees whose figures: a person sees their own scorecard and report row; the leader of
their team sees the team's; a general manager sees everyone's. Nobody else."""
from sqlalchemy import select

from accounts.models import Team
from accounts.teams import team_member_ids, teams_led_by
from extensions import db

SEE_ALL = "general_manager"


def sees_everyone(viewer):
    return SEE_ALL in viewer.roles


def may_see(viewer, person):
    if viewer.id == person.id or sees_everyone(viewer):
        return True
    return person.id in team_member_ids([t.id for t in teams_led_by(viewer)])


def teams_visible(viewer):
    """Teams whose whole report or list the viewer may see, by name."""
    if sees_everyone(viewer):
        return db.session.scalars(select(Team).order_by(Team.name)).all()
    return teams_led_by(viewer)
