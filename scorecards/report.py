"""The daily collection report (issue 14 item 6): per collector of a team, a Beijing day's
calls, contacts reached, promises made, promises kept (those whose promised date was the day
and that were kept) and money collected (scorecards.activity), against the collector's
targets in force that day, with the share of each target reached."""
import dataclasses
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from accounts.models import Team, User
from extensions import db
from scorecards.activity import activity
from scorecards.periods import day_bounds
from scorecards.targets import targets_on

# Figures compared with a target: (activity field, target column).
AGAINST = (("calls", "calls"), ("contacts", "contacts"), ("promises_made", "promises"),
           ("collected", "amount"))


def share(actual, target):
    """actual / target as a whole percentage (Decimal), None without a target above zero."""
    if target is None or Decimal(target) <= 0:
        return None
    return (Decimal(actual) * 100 / Decimal(target)).quantize(Decimal(1), rounding=ROUND_HALF_UP)


@dataclasses.dataclass
class ReportRow:
    user: User | None  # None: the team's total
    figures: dict
    target: object  # CollectionTarget or None; for the total, a dict of summed targets

    def target_of(self, column):
        if self.target is None:
            return None
        return self.target[column] if isinstance(self.target, dict) else \
            getattr(self.target, column)

    def share_of(self, field, column):
        return share(self.figures[field], self.target_of(column))


def collectors_of(team):
    """The people a team's report lists: its members except its leader, by name."""
    return db.session.scalars(select(User).where(User.team_id == team.id, User.active.is_(True),
                                                 User.id != (team.leader_id or 0))
                              .order_by(User.display_name, User.username)).all()


def daily_report(people, day, with_total=True):
    """[ReportRow] for `people` on `day`, then the total row (when asked)."""
    start, end = day_bounds(day)
    done = activity([p.id for p in people], start, end)
    targets = targets_on([p.id for p in people], day)
    rows = [ReportRow(p, done[p.id], targets.get(p.id)) for p in people]
    if with_total:
        summed = None
        if targets:
            summed = {column: sum((getattr(t, column) for t in targets.values()),
                                  Decimal(0) if column == "amount" else 0)
                      for _, column in AGAINST}
        rows.append(ReportRow(None, done[None], summed))
    return rows


def team_named(team_id):
    return db.session.get(Team, team_id) if team_id else None
