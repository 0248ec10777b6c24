"""Read side of the human-task projection: the inbox never deserializes a workflow.

Pages are keyset pages in the order (due_at NULLS LAST, priority, id). PostgreSQL puts NULLs
last in an ascending index and SQLite first, so no single index order serves both: each
queue (a lane's unclaimed tasks, or the user's claimed ones) is read as two index ranges,
the dated tasks in (due_at, priority, id) order and then the undated ones in (priority, id)
order, each a short range scan of ix_human_tasks_available / ix_human_tasks_mine from the
page token, stopped by a LIMIT. One statement unions these ranges (lanes × 2) and orders
the few rows they return; counts stop at COUNT_BOUND rows and never sort.
"""
import base64
import binascii
import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import (and_, bindparam, exists, func, literal, literal_column, or_, select,
                        tuple_, union_all)
from sqlalchemy.orm import selectinload

from accounts.models import utc
from cases.models import Loan
from extensions import db
from forms.builder import display_field_value, localized
from i18n import LANGUAGES
from workflows import clock
from workflows.errors import InvalidData
from workflows.labels import names_in, step_label
from workflows.models import HumanTask, HumanTaskExclusion, ProcessDefinition

SCOPES = ("mine", "available")
# Counting stops here: "1000+" is as useful to a person as an exact figure and costs
# a bounded index range instead of every visible row.
COUNT_BOUND = 1000


@dataclass
class InboxPage:
    """One page: rows are (HumanTask, loan_no); total is exact up to COUNT_BOUND, and
    total_capped says there are more. next/previous are page tokens (None at either end)."""
    rows: list
    total: int
    total_capped: bool = False
    next: str | None = None
    previous: str | None = None
    values: dict | None = None  # a registered order's value per task id (see SORTS)

    def __iter__(self):  # rows, total = inbox_page(...)
        return iter((self.rows, self.total))


def _check_scope(scope):
    if scope not in SCOPES:
        raise InvalidData(f"scope must be one of {', '.join(SCOPES)}", code="invalid",
                          field_errors={"scope": [f"one of {', '.join(SCOPES)}"]})


def _filters(user, scope, process=None, loan_no=None):
    """WHERE terms shared by every range of a scope, and the lanes to read (None: any)."""
    # A literal, not a parameter: the planners (SQLite always, PostgreSQL in a generic plan)
    # use the partial indexes only when the query states their WHERE clause verbatim.
    terms = [HumanTask.state == literal_column("'ready'")]
    lanes = [None]
    if scope == "mine":
        terms.append(HumanTask.claimed_by_id == user.id)
    else:
        excluded = exists().where(HumanTaskExclusion.user_id == user.id,
                                  HumanTaskExclusion.task_id == HumanTask.id)
        terms += [HumanTask.claimed_by_id.is_(None),
                  or_(HumanTask.candidate_user_id.is_(None),
                      HumanTask.candidate_user_id == user.id),
                  ~excluded]
        lanes = sorted(user.roles)
    if process:
        terms.append(HumanTask.process_key == process)
    if loan_no:
        terms.append(HumanTask.case_id == select(Loan.id).where(Loan.loan_no == loan_no)
                     .scalar_subquery())
    return terms, lanes


def inbox_query(user, scope, process=None, loan_no=None):
    """Every visible task in page order (no LIMIT): for exports and checks, not pages."""
    _check_scope(scope)
    terms, lanes = _filters(user, scope, process, loan_no)
    if lanes != [None]:
        terms.append(HumanTask.lane.in_(lanes))
    return (select(HumanTask, Loan.loan_no)
            .outerjoin(Loan, Loan.id == HumanTask.case_id)
            .where(*terms)
            .options(selectinload(HumanTask.form_definition))
            .order_by(*_order(forward=True)))


def _order(forward):
    if forward:
        return HumanTask.due_at.asc().nulls_last(), HumanTask.priority, HumanTask.id
    return HumanTask.due_at.desc().nulls_first(), HumanTask.priority.desc(), HumanTask.id.desc()


# ---------------------------------------------------------------- page tokens

def encode_key(task):
    due = task.due_at.isoformat() if task.due_at is not None else None
    raw = json.dumps([due, task.priority, task.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_key(token, name="after"):
    """(due_at or None, priority, id) from a page token; a malformed one is a 400."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        due, priority, task_id = json.loads(raw)
        if due is not None:
            due = dt.datetime.fromisoformat(due)
        if type(priority) is not int or type(task_id) is not int:  # noqa: E721 - not bool
            raise ValueError
        return due, priority, task_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidData("the page token is not valid", code="invalid",
                          field_errors={name: ["a page token from a previous page"]}) from None


# ---------------------------------------------------------------- pages

def _ranges(key, forward):
    """WHERE terms of the index ranges to read (dated tasks, undated tasks) from key
    (exclusive) onwards; key None: from the start (forward) or the end (backward)."""
    dated, undated = HumanTask.due_at.isnot(None), HumanTask.due_at.is_(None)
    if key is None:
        return [dated, undated]
    due, priority, task_id = key

    def after(columns, values):  # past the key in the reading direction
        return tuple_(*columns) > values if forward else tuple_(*columns) < values

    if due is None:  # the key is an undated task: every dated one comes before it
        rest = after((HumanTask.priority, HumanTask.id), (priority, task_id))
        return [and_(undated, rest)] + ([] if forward else [dated])
    rest = after((HumanTask.due_at, HumanTask.priority, HumanTask.id), (due, priority, task_id))
    return [and_(dated, rest)] + ([undated] if forward else [])


def _range_select(terms, lane, where, forward, limit):
    # The index order, also for the undated range: PostgreSQL does not treat "due_at IS
    # NULL" as fixing due_at, so ordering by (priority, id) alone would sort the range.
    order = (HumanTask.due_at, HumanTask.priority, HumanTask.id)
    query = select(HumanTask.id).where(*terms, where)
    if lane is not None:
        query = query.where(HumanTask.lane == lane)
    query = query.order_by(*(c.asc() if forward else c.desc() for c in order)).limit(limit)
    return select(query.subquery().c.id)  # SQLite: ORDER BY/LIMIT only inside a subquery


def _page_rows(user, scope, process, loan_no, key, forward, limit, offset=0):
    terms, lanes = _filters(user, scope, process, loan_no)
    if not lanes:
        return []
    if loan_no:
        # One loan has a handful of open tasks: read them by case and sort them.
        ids = select(HumanTask.id).where(*terms, *([HumanTask.lane.in_(lanes)]
                                                   if lanes != [None] else []))
        if key is not None:
            ids = ids.where(or_(*_ranges(key, forward)))
    else:
        parts = [_range_select(terms, lane, where, forward, offset + limit)
                 for lane in lanes for where in _ranges(key, forward)]
        ids = parts[0] if len(parts) == 1 else union_all(*parts)
    query = (select(HumanTask, Loan.loan_no)
             .outerjoin(Loan, Loan.id == HumanTask.case_id)
             .where(HumanTask.id.in_(ids))
             .options(selectinload(HumanTask.form_definition))
             .order_by(*_order(forward)).limit(limit).offset(offset))
    rows = db.session.execute(query).all()
    return rows if forward else rows[::-1]


def bounded_count(user, scope, process=None, loan_no=None, bound=None):
    """(visible tasks up to bound, whether there are more): no ORDER BY, stops at bound+1."""
    bound = COUNT_BOUND if bound is None else bound
    terms, lanes = _filters(user, scope, process, loan_no)
    if not lanes:
        return 0, False
    if lanes != [None]:
        terms.append(HumanTask.lane.in_(lanes))
    found = select(literal(1)).select_from(HumanTask).where(*terms).limit(bound + 1)
    n = db.session.scalar(select(func.count()).select_from(found.subquery()))
    return min(n, bound), n > bound


def inbox_page(user, scope, process=None, loan_no=None, page=1, per_page=20, after=None,
               before=None, sort=None):
    """One InboxPage. after/before are page tokens (InboxPage.next/previous); page numbers
    (OFFSET) still work but read every earlier row, so links use tokens. `sort` names a
    registered order (SORTS); None is the due-date order."""
    _check_scope(scope)
    if sort is not None:
        return _sorted_page(user, scope, process, loan_no, per_page, after, before, sort)
    if after and before:
        raise InvalidData("give after or before, not both", code="invalid",
                          field_errors={"before": ["not with after"]})
    if before:
        rows = _page_rows(user, scope, process, loan_no, decode_key(before, "before"),
                          False, per_page + 1)
        more_before = len(rows) > per_page
        rows = rows[-per_page:] if more_before else rows
        has_previous, has_next = more_before, True
    else:
        key = decode_key(after) if after else None
        offset = 0 if after else (page - 1) * per_page
        rows = _page_rows(user, scope, process, loan_no, key, True, per_page + 1, offset)
        has_next = len(rows) > per_page
        rows = rows[:per_page]
        has_previous = bool(after) or offset > 0
    total, capped = bounded_count(user, scope, process, loan_no)
    return InboxPage(
        rows=rows, total=total, total_capped=capped,
        next=encode_key(rows[-1][0]) if rows and has_next else None,
        previous=encode_key(rows[0][0]) if rows and has_previous else None)


# ---------------------------------------------------------------- registered orders

@dataclass(frozen=True)
class Sort:
    """An order of the inbox a feature package registers (workflows imports none of them):
    `source()` gives a selectable of (case_id, value); tasks go highest value first, tasks
    without one last, ties by task id. `label` names it for people; `show` formats a value;
    `explain(case_ids)`, if given, says why in a few words ({case id: text}, one query)."""
    name: str
    label: object
    source: object
    show: object = str
    explain: object = None


SORTS = {}


def register_sort(name, label, source, show=str, explain=None):
    SORTS[name] = Sort(name, label, source, show, explain)


def _sort_key(token, name):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value, task_id = json.loads(raw)
        if type(task_id) is not int:  # noqa: E721 - not bool
            raise ValueError
        return Decimal(value), task_id
    except (ValueError, TypeError, ArithmeticError, binascii.Error, UnicodeDecodeError):
        raise InvalidData("the page token is not valid", code="invalid",
                          field_errors={name: ["a page token from a previous page"]}) from None


def _sort_token(value, task_id):
    raw = json.dumps([str(value), task_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _sorted_page(user, scope, process, loan_no, per_page, after, before, sort):
    """A keyset page in a registered order: (value DESC, id) keys, the value of a task
    without one being -1 (the values are amounts, never negative)."""
    if sort not in SORTS:
        raise InvalidData("unknown sort", code="invalid", field_errors={"sort": ["unknown"]})
    if after and before:
        raise InvalidData("give after or before, not both", code="invalid",
                          field_errors={"before": ["not with after"]})
    terms, lanes = _filters(user, scope, process, loan_no)
    if not lanes:
        return InboxPage(rows=[], total=0, values={})
    if lanes != [None]:
        terms.append(HumanTask.lane.in_(lanes))
    source = SORTS[sort].source().subquery()
    value = func.coalesce(source.c.value, -1)
    forward = before is None
    query = (select(HumanTask, Loan.loan_no, value.label("sort_value"))
             .outerjoin(Loan, Loan.id == HumanTask.case_id)
             .outerjoin(source, source.c.case_id == HumanTask.case_id)
             .where(*terms).options(selectinload(HumanTask.form_definition)))
    token = after or before
    if token:
        key, task_id = _sort_key(token, "after" if after else "before")
        query = query.where(or_(value < key, and_(value == key, HumanTask.id > task_id))
                            if forward else
                            or_(value > key, and_(value == key, HumanTask.id < task_id)))
    query = query.order_by(*((value.desc(), HumanTask.id) if forward
                             else (value.asc(), HumanTask.id.desc())))
    found = db.session.execute(query.limit(per_page + 1)).all()
    more = len(found) > per_page
    found = found[:per_page] if forward else found[:per_page][::-1]
    total, capped = bounded_count(user, scope, process, loan_no)
    values = [Decimal(str(v)) for _task, _no, v in found]  # SQLite: a float
    tokens = [_sort_token(v, row[0].id) for v, row in zip(values, found)]
    has_next, has_previous = (more, bool(after)) if forward else (True, more)
    return InboxPage(
        rows=[(task, no) for task, no, _v in found], total=total, total_capped=capped,
        next=tokens[-1] if tokens and has_next else None,
        previous=tokens[0] if tokens and has_previous else None,
        values={row[0].id: (None if v < 0 else v) for v, row in zip(values, found)})


def process_keys():
    return db.session.scalars(select(ProcessDefinition.process_key).distinct()
                              .order_by(ProcessDefinition.process_key)).all()


def task_title(row, locale=None):
    """The task's name in the user's language: its form's title, else the step's name in
    the BPMN (workflows/labels.py)."""
    title = row.form_definition.spec.get("title") if row.form_definition else None
    return (localized(title, locale) if title
            else step_label(row.process_key, row.bpmn_id, row.name, locale))


def is_overdue(row, at=None):
    """An open task past its due date (SLA breach)."""
    return (row.state == "ready" and row.due_at is not None
            and utc(row.due_at) < (at or clock.now()))


def task_summary(row, loan_no):
    process_name, step_name = names_in(row.process_key, row.bpmn_id, row.name, LANGUAGES)
    return {"id": row.id, "process": row.process_key, "bpmn_id": row.bpmn_id, "name": row.name,
            "role": row.lane, "loan_no": loan_no,
            "claimed_by": row.claimed_by.username if row.claimed_by else None,
            "due_at": utc(row.due_at).isoformat() if row.due_at else None,
            "priority": row.priority, "state": row.state,
            "created_at": utc(row.created_at).isoformat(),
            # From the BPMN, not the form's title: no form row is read for an answer.
            "process_name": process_name, "step_name": step_name}


# Built once: SQLAlchemy computes its cache key once per process, not per read.
_OPEN_TASKS = (select(HumanTask).where(HumanTask.case_id == bindparam("case_id"),
                                       HumanTask.state == "ready")
               .order_by(HumanTask.created_at))


def open_tasks_of_case(case_id):
    return db.session.scalars(_OPEN_TASKS, {"case_id": case_id}).all()


def previous_data(row):
    """Data submitted earlier in the same instance, latest value per field, readable:
    {name: (label, display value)} with labels and choices from the form that asked."""
    merged = {}
    for done in (HumanTask.query.filter_by(instance_id=row.instance_id, state="completed")
                 .order_by(HumanTask.completed_at, HumanTask.id)):
        fields = {f["name"]: f for f in
                  (done.form_definition.spec["fields"] if done.form_definition else [])}
        for name, value in (done.data or {}).items():
            merged[name] = display_value(fields.get(name, {"name": name}), value)
    return merged


def previous_submission(row):
    """What was submitted the last time this step of the instance was done (a file sent back
    comes back with it, not empty), or None for a step done the first time."""
    return db.session.scalars(
        select(HumanTask.data).where(HumanTask.instance_id == row.instance_id,
                                     HumanTask.bpmn_id == row.bpmn_id,
                                     HumanTask.state == "completed", HumanTask.id != row.id)
        .order_by(HumanTask.completed_at.desc(), HumanTask.id.desc()).limit(1)).first()


def display_value(field, value):
    special = display_field_value(field, value)  # photos and locations
    if special is not None:
        return localized(field.get("label") or field["name"]), special
    choices = {c["value"]: localized(c.get("label", c["value"]))
               for c in field.get("choices", [])}
    if isinstance(value, list):
        shown = ", ".join(str(choices.get(v, v)) for v in value)
    elif isinstance(value, bool):
        shown = "✓" if value else "✗"
    elif _is_amount(field, value):
        shown = f"{Decimal(str(value)):,.2f}"  # the label says the unit (yuan)
    else:
        shown = "" if value is None else str(choices.get(value, value))
    return localized(field.get("label") or field["name"]), shown


_AMOUNT = re.compile(r"-?\d+(\.\d+)?")


def _is_amount(field, value):
    """Process data holding a sum of money (…amount, amount_…, or a field marked
    "format": "money"): shown with separators."""
    name = field.get("name") or ""
    return ((name == "amount" or name.endswith("_amount") or name.startswith("amount_")
             or field.get("format") == "money")
            and not isinstance(value, bool) and value is not None
            and _AMOUNT.fullmatch(str(value)) is not None)


def task_loan_no(row):
    if row.case_id is None:
        return None
    loaded = row.__dict__.get("loan_no")  # loaded with the task by the facade
    return loaded if loaded is not None else \
        db.session.scalar(select(Loan.loan_no).where(Loan.id == row.case_id))
