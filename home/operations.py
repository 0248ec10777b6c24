"""The figures of a user's home page. Each is one COUNT on an index range, bounded like the
inbox's (workflows.inbox.COUNT_BOUND) and never sorted, so the page costs the same with 100k
loans as with 100."""
from dataclasses import dataclass, field

from sqlalchemy import exists, func, literal, literal_column, or_, select

from accounts.roles import CASE_READERS
from cases.models import STAGES, Loan
from extensions import db
from notifications.inapp import UNREAD_BOUND, unread_expression
from workflows import clock
from workflows.inbox import COUNT_BOUND
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
    """COUNT of the first COUNT_BOUND + 1 rows of `query`, as a scalar subquery."""
    return select(func.count()).select_from(
        query.limit(COUNT_BOUND + 1).subquery()).scalar_subquery()


def _tasks(where):
    return _bounded(select(literal(1)).select_from(HumanTask).where(*where))


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


def task_counts(user):
    """{figure: (bounded count, more)}, all read by one statement: my tasks, my roles'
    pools, both past their due date, my approver lanes' (held by me or free), my unread
    notifications, and "stages": [(stage, count, more)] of the open loans I see. Each part
    is a bounded range of an index (no sorting, no GROUP BY)."""
    late = HumanTask.due_at < clock.now()
    lanes = sorted(user.roles)
    approver = sorted(set(APPROVER_LANES) & user.roles)
    parts = {"mine": [_mine(user)], "available": [_available(user, lanes)] if lanes else [],
             "overdue": [_mine(user) + [late]] + (
                 [_available(user, lanes) + [late]] if lanes else []),
             "approvals": [_mine(user) + [HumanTask.lane.in_(approver)],
                           _available(user, approver)] if approver else []}
    keys = [(key, n) for key, wheres in parts.items() for n in range(len(wheres))]
    stages = _stage_parts(user) or {}
    row = db.session.execute(select(
        unread_expression(user.id), *[_tasks(parts[key][n]) for key, n in keys],
        *[_bounded(select(literal(1)).select_from(Loan).where(*where))
          for where in stages.values()])).one()
    found = {key: [] for key in parts}
    for (key, _n), value in zip(keys, row[1:]):
        found[key].append(value)
    counted = {key: (min(sum(values), COUNT_BOUND), sum(values) > COUNT_BOUND)
               for key, values in found.items() if values or key != "approvals"}
    counted["unread"] = (min(row[0], UNREAD_BOUND), row[0] > UNREAD_BOUND)
    if _stage_parts(user) is not None:
        counted["stages"] = [(stage, min(n, COUNT_BOUND), n > COUNT_BOUND)
                             for stage, n in zip(stages, row[1 + len(keys):])]
    return counted


# The open loans of one stage (and one account manager), read from the index alone: each
# stage is a range of these, counted up to COUNT_BOUND.
STAGE_INDEX = db.Index("ix_loans_stage_status", Loan.stage, Loan.status)
MANAGER_STAGE_INDEX = db.Index("ix_loans_manager_stage_status", Loan.account_manager_id,
                               Loan.stage, Loan.status)


def _stage_parts(user):
    """{stage: WHERE terms} of the open loans the user sees by stage (an account manager:
    their own), or None for a user who sees no case list."""
    mine = []
    if not user.roles & CASE_READERS:
        if "account_manager" not in user.roles:
            return None
        mine = [Loan.account_manager_id == user.id]
    return {stage: mine + [Loan.stage == stage, Loan.status != "closed"] for stage in STAGES}


def home_figures(user):
    """The figures of the user's home page, in display order, read by one statement."""
    counted = task_counts(user)
    figures = [Figure("mine", *counted["mine"], "/inbox?tab=mine"),
               Figure("available", *counted["available"], "/inbox?tab=available"),
               Figure("overdue", *counted["overdue"], "/inbox?tab=mine")]
    if "approvals" in counted:
        figures.append(Figure("approvals", *counted["approvals"], "/manage"))
    figures.append(Figure("unread", *counted["unread"], "/notifications"))
    if "stages" in counted:
        stages = [(stage, n, more) for stage, n, more in counted["stages"] if n]
        figures.append(Figure("cases", sum(n for _, n, _more in stages),
                              any(more for *_, more in stages), "/cases",
                              [(stage, n, more, f"/cases?stage={stage}")
                               for stage, n, more in stages]))
    return figures
