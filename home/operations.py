"""The figures of a user's home page. Each is one COUNT on an index range, bounded like the
inbox's (workflows.inbox.COUNT_BOUND) and never sorted, so the page costs the same with 100k
loans as with 100."""
from dataclasses import dataclass, field

from sqlalchemy import exists, func, literal, literal_column, or_, select

from accounts.roles import CASE_READERS
from cases.models import STAGES, Loan
from extensions import db
from notifications.inapp import unread_count
from workflows import clock
from workflows.inbox import COUNT_BOUND, bounded_count
from workflows.models import HumanTask, HumanTaskExclusion

# A ready task in one of these lanes is an approval (management.queries.APPROVAL_LANES).
APPROVER_LANES = ("dept_head", "general_manager", "risk_manager")


@dataclass
class Figure:
    key: str
    count: int
    capped: bool = False
    url: str = ""
    parts: list = field(default_factory=list)  # [(key, count, url)] e.g. loans by stage


def _bounded(query):
    """(count up to COUNT_BOUND, more): count the first COUNT_BOUND + 1 rows of `query`."""
    n = db.session.scalar(select(func.count()).select_from(
        query.limit(COUNT_BOUND + 1).subquery()))
    return min(n, COUNT_BOUND), n > COUNT_BOUND


# The literal states the partial indexes' WHERE verbatim, so the planners use them.
_READY = HumanTask.state == literal_column("'ready'")


def _mine(user):
    return [_READY, HumanTask.claimed_by_id == user.id]


def _available(user, lanes):
    """Unclaimed ready tasks of `lanes` the user may take (candidate, four eyes)."""
    excluded = exists().where(HumanTaskExclusion.user_id == user.id,
                              HumanTaskExclusion.task_id == HumanTask.id)
    return [_READY, HumanTask.claimed_by_id.is_(None), HumanTask.lane.in_(lanes),
            or_(HumanTask.candidate_user_id.is_(None), HumanTask.candidate_user_id == user.id),
            ~excluded]


def _task_count(*where_lists):
    """Bounded count of the tasks matching any of the WHERE lists (each an index range)."""
    total, capped = 0, False
    for where in where_lists:
        n, more = _bounded(select(literal(1)).select_from(HumanTask).where(*where))
        total, capped = total + n, capped or more
    return min(total, COUNT_BOUND), capped or total > COUNT_BOUND


def overdue_count(user):
    """My claimed tasks and the tasks of my roles' pools past their due date."""
    late = HumanTask.due_at < clock.now()
    lanes = sorted(user.roles)
    return _task_count(_mine(user) + [late],
                       *([_available(user, lanes) + [late]] if lanes else []))


def approvals_count(user):
    """Ready tasks of my approver lanes that I hold or may take."""
    lanes = sorted(set(APPROVER_LANES) & user.roles)
    if not lanes:
        return None
    return _task_count(_mine(user) + [HumanTask.lane.in_(lanes)], _available(user, lanes))


def cases_by_stage(user):
    """[(stage, count)] of the open loans the user sees (an account manager: their own), in
    STAGES order, zeros left out; None for a user who sees no case list."""
    query = select(Loan.stage, func.count()).where(Loan.status != "closed")
    if not user.roles & CASE_READERS:
        if "account_manager" not in user.roles:
            return None
        query = query.where(Loan.account_manager_id == user.id)
    counts = dict(db.session.execute(query.group_by(Loan.stage)).all())
    return [(stage, counts[stage]) for stage in STAGES if counts.get(stage)] + \
        sorted((stage, n) for stage, n in counts.items() if stage not in STAGES)


def home_figures(user):
    """The figures of the user's home page, in display order."""
    mine, mine_more = bounded_count(user, "mine")
    available, available_more = bounded_count(user, "available")
    overdue, overdue_more = overdue_count(user)
    figures = [Figure("mine", mine, mine_more, "/inbox?tab=mine"),
               Figure("available", available, available_more, "/inbox?tab=available"),
               Figure("overdue", overdue, overdue_more, "/inbox?tab=mine")]
    approvals = approvals_count(user)
    if approvals is not None:
        figures.append(Figure("approvals", approvals[0], approvals[1], "/manage"))
    unread, unread_more = unread_count(user.id)
    figures.append(Figure("unread", unread, unread_more, "/notifications"))
    stages = cases_by_stage(user)
    if stages is not None:
        figures.append(Figure("cases", sum(n for _, n in stages), False, "/cases",
                              [(stage, n, f"/cases?stage={stage}") for stage, n in stages]))
    return figures
