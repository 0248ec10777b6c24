"""The portfolio dashboard's filters and scope: who may see which teams, the month, product and
account manager read from the URL and checked, and the table every figure is (one structure
that the page, its chart and the CSV/XLSX exports all read)."""
import datetime as dt
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import func, select

from accounts.models import Team, User, UserRole
from cases.models import PRODUCT_LABELS
from extensions import db
from portfolio.models import LoanMonthSnapshot as S

VIEWERS = ("dept_head", "general_manager", "risk_manager", "compliance")
# Roles that see every team; a department head sees the teams they lead.
WIDE_VIEWERS = ("general_manager", "risk_manager", "compliance")
MONTHS_SHOWN = 12  # the figures "over time" cover this many months ending at the chosen one


class FilterError(ValueError):
    """A filter value the dashboard cannot use; the message says which, in the reader's
    language."""


class TeamRefused(Exception):
    """A department head asked for a team they do not lead."""


def month_add(month, months):
    index = month.year * 12 + month.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def months_ending(month, count=MONTHS_SHOWN):
    """The `count` calendar months ending at `month`, oldest first."""
    return [month_add(month, -back) for back in range(count - 1, -1, -1)]


def snapshot_months():
    """Every calendar month from the first snapshot to the latest, latest first (two reads of
    the primary key's leading column, not a scan)."""
    first, last = db.session.execute(select(func.min(S.month), func.max(S.month))).one()
    if last is None:
        return []
    months, month = [], last
    while month >= first:
        months.append(month)
        month = month_add(month, -1)
    return months


def teams_for(user):
    """(teams the user may pick, whether the user is held to them). A department head is held
    to the teams they lead (else their own team); the wide viewers pick any team."""
    teams = Team.query.order_by(Team.name)
    if user.has_role(*WIDE_VIEWERS):
        return teams.all(), False
    led = teams.filter(Team.leader_id == user.id).all()
    if not led and user.team_id is not None:
        led = teams.filter(Team.id == user.team_id).all()
    return led, True


def managers_for(team_ids):
    """The account managers one may filter by: of the teams in scope (None: everyone)."""
    query = (User.query.join(UserRole, UserRole.user_id == User.id)
             .filter(UserRole.role == "account_manager"))
    if team_ids is not None:
        query = query.filter(User.team_id.in_(team_ids))
    return sorted(query.all(), key=lambda u: (u.label, u.id))


@dataclass(frozen=True)
class Filters:
    month: dt.date | None
    team_id: int | None = None
    product: str | None = None
    manager_id: int | None = None
    # The teams the figures cover: None every team, else these ids (maybe none).
    team_ids: tuple | None = None

    @property
    def previous(self):
        return month_add(self.month, -1) if self.month else None

    def args(self):
        """The filters as URL arguments (for links and exports)."""
        found = {"month": self.month.strftime("%Y-%m") if self.month else None,
                 "team": self.team_id, "product": self.product, "manager": self.manager_id}
        return {key: value for key, value in found.items() if value is not None}

    def where(self, snapshot):
        """The conditions on one (maybe aliased) snapshot table."""
        conditions = []
        if self.team_ids is not None:
            conditions.append(snapshot.team_id.in_(self.team_ids))
        if self.product:
            conditions.append(snapshot.product == self.product)
        if self.manager_id:
            conditions.append(snapshot.account_manager_id == self.manager_id)
        return conditions


@dataclass
class Options:
    """What the filter form offers."""
    months: list
    teams: list
    held: bool  # a department head held to their teams
    products: dict
    managers: list = field(default_factory=list)


def options_for(user):
    teams, held = teams_for(user)
    return Options(snapshot_months(), teams, held, dict(PRODUCT_LABELS))


def _integer(value, message):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FilterError(message) from None


def parse_filters(args, user, options):
    """Filters from the URL's arguments; FilterError for a value that is not offered,
    TeamRefused for a team a department head does not lead."""
    raw = args.get("month", "").strip()
    if raw:
        try:
            month = dt.datetime.strptime(raw, "%Y-%m").date()
        except ValueError:
            raise FilterError(_("The month must be written as YYYY-MM.")) from None
        if month not in options.months:
            raise FilterError(_("There are no month-end figures for %(month)s.", month=raw))
    else:
        month = options.months[0] if options.months else None
    team_id, team_ids = None, None
    allowed = {team.id for team in options.teams}
    if args.get("team", "").strip():
        team_id = _integer(args["team"], _("Unknown team."))
        if team_id not in allowed:
            if options.held and db.session.get(Team, team_id) is not None:
                raise TeamRefused()
            raise FilterError(_("Unknown team."))
        team_ids = (team_id,)
    elif options.held:
        team_ids = tuple(sorted(allowed))
    options.managers = managers_for(team_ids)
    product = args.get("product", "").strip() or None
    if product is not None and product not in options.products:
        raise FilterError(_("Unknown product."))
    manager_id = None
    if args.get("manager", "").strip():
        manager_id = _integer(args["manager"], _("Unknown account manager."))
        if manager_id not in {manager.id for manager in options.managers}:
            raise FilterError(_("Unknown account manager."))
    return Filters(month, team_id, product, manager_id, team_ids)


@dataclass
class Table:
    """One figure's table. `columns` are (heading, kind), kind one of text, count, money,
    rate (a fraction, shown as a percentage) or number; `rows` hold str, int, Decimal or None
    (nothing to divide by: shown as a dash). `chart` is the chart's description for
    static/portfolio.js, or None."""
    key: str
    title: str
    columns: list
    rows: list
    chart: dict | None = None
    note: str = ""
