"""Search across audit events: by user, role, action, process, step, loan, stage, date range
and late or on time. One query, filters combined with AND; nothing here writes."""
import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy import and_, func, or_, select

from accounts.models import User, UserRole, utc
from audit.models import AuditEvent
from cases.models import Loan
from extensions import db
from workflows import clock
from workflows.clock import BEIJING
from workflows.models import HumanTask, ProcessDefinition, ProcessInstance

PER_PAGE = 50
LATE_CHOICES = ("late", "on_time")


@dataclass
class Filters:
    user: str = ""
    role: str = ""
    action: str = ""
    process: str = ""
    step: str = ""
    loan: str = ""
    stage: str = ""
    date_from: str = ""   # Beijing calendar dates, inclusive
    date_to: str = ""
    late: str = ""        # "late", "on_time" or ""

    @classmethod
    def from_args(cls, args):
        values = {name: (args.get(name) or "").strip() for name in cls.__dataclass_fields__}
        if values["late"] not in LATE_CHOICES:
            values["late"] = ""
        return cls(**values)

    def active(self):
        """The filters that are set, for links and the export's audit event."""
        return {k: v for k, v in asdict(self).items() if v}


def _day(value):
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _beijing_midnight(day):
    return dt.datetime.combine(day, dt.time(0), BEIJING).astimezone(dt.timezone.utc)


def process_column():
    return func.coalesce(HumanTask.process_key, ProcessDefinition.process_key)


def late_column():
    return and_(HumanTask.completed_at.isnot(None), HumanTask.due_at.isnot(None),
                HumanTask.completed_at > HumanTask.due_at)


def build_query(filters):
    """select(AuditEvent, User, HumanTask, Loan, process key) for `filters`, newest first."""
    process = process_column().label("process_key")
    query = (select(AuditEvent, User, HumanTask, Loan, process)
             .outerjoin(User, User.id == AuditEvent.actor_id)
             .outerjoin(HumanTask, HumanTask.id == AuditEvent.task_id)
             .outerjoin(Loan, Loan.id == AuditEvent.case_id)
             .outerjoin(ProcessInstance, ProcessInstance.id == AuditEvent.instance_id)
             .outerjoin(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id))
    conditions = []
    if filters.user:
        match = User.username == filters.user
        if filters.user.isdigit():
            match = or_(match, User.id == int(filters.user))
        conditions.append(match)
    if filters.role:
        conditions.append(AuditEvent.actor_id.in_(
            select(UserRole.user_id).where(UserRole.role == filters.role)))
    if filters.action:
        if filters.action.endswith("*"):
            conditions.append(AuditEvent.action.like(filters.action[:-1] + "%"))
        else:
            conditions.append(AuditEvent.action == filters.action)
    if filters.process:
        conditions.append(process_column() == filters.process)
    if filters.step:
        conditions.append(HumanTask.bpmn_id == filters.step)
    if filters.loan:
        conditions.append(Loan.loan_no == filters.loan)
    if filters.stage:
        conditions.append(Loan.stage == filters.stage)
    start, end = _day(filters.date_from), _day(filters.date_to)
    if start:
        conditions.append(AuditEvent.at >= _beijing_midnight(start))
    if end:
        conditions.append(AuditEvent.at < _beijing_midnight(end + dt.timedelta(days=1)))
    if filters.late == "late":
        conditions.append(late_column())
    elif filters.late == "on_time":
        conditions.append(and_(HumanTask.completed_at.isnot(None), or_(
            HumanTask.due_at.is_(None), HumanTask.completed_at <= HumanTask.due_at)))
    if conditions:
        query = query.where(and_(*conditions))
    return query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


class Page:
    def __init__(self, rows, page, per_page, total):
        self.items, self.page, self.per_page, self.total = rows, page, per_page, total
        self.pages = max(1, -(-total // per_page))
        self.has_prev, self.has_next = page > 1, page < self.pages
        self.prev_num, self.next_num = page - 1, page + 1


def search(filters, page=1, per_page=PER_PAGE):
    """One page of results: rows of (AuditEvent, User, HumanTask, Loan, process_key)."""
    query = build_query(filters)
    total = db.session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())).scalar()
    page = max(1, page)
    rows = db.session.execute(query.limit(per_page).offset((page - 1) * per_page)).all()
    return Page(rows, page, per_page, total)


def all_rows(filters):
    return db.session.execute(build_query(filters)).all()


def is_late(task):
    return bool(task is not None and task.completed_at is not None and task.due_at is not None
                and utc(task.completed_at) > utc(task.due_at))


def beijing_time(value):
    return utc(value).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def last_quarter(today=None):
    """(first day, last day) of the calendar quarter before `today` (Beijing)."""
    today = today or clock.now().astimezone(BEIJING).date()
    first_this = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    last = first_this - dt.timedelta(days=1)
    return dt.date(last.year, 3 * ((last.month - 1) // 3) + 1, 1), last


def presets():
    """The three standing questions, as filter dicts."""
    start, end = last_quarter()
    return {
        "litigation": dict(process="collection", step="approve_litigation",
                           action="task.completed", date_from=start.isoformat(),
                           date_to=end.isoformat()),
        "late": dict(action="task.completed", late="late"),
        "gm_extensions": dict(action="extension.approved", role="general_manager"),
    }
