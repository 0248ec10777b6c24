"""Read side of the human-task projection: the inbox never deserializes a workflow."""
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import selectinload

from accounts.models import utc
from cases.models import Loan
from extensions import db
from forms.builder import localized
from workflows import clock
from workflows.errors import InvalidData
from workflows.models import HumanTask, HumanTaskExclusion, ProcessDefinition

SCOPES = ("mine", "available")


def inbox_query(user, scope, process=None, loan_no=None):
    if scope not in SCOPES:
        raise InvalidData(f"scope must be one of {', '.join(SCOPES)}", code="invalid",
                          field_errors={"scope": [f"one of {', '.join(SCOPES)}"]})
    query = (select(HumanTask, Loan.loan_no)
             .outerjoin(Loan, Loan.id == HumanTask.case_id)
             .where(HumanTask.state == "ready"))
    if scope == "mine":
        query = query.where(HumanTask.claimed_by_id == user.id)
    else:
        excluded = exists().where(HumanTaskExclusion.task_id == HumanTask.id,
                                  HumanTaskExclusion.user_id == user.id)
        query = query.where(HumanTask.claimed_by_id.is_(None),
                            HumanTask.lane.in_(sorted(user.roles)),
                            or_(HumanTask.candidate_user_id.is_(None),
                                HumanTask.candidate_user_id == user.id),
                            ~excluded)
    if process:
        query = query.where(HumanTask.process_key == process)
    if loan_no:
        query = query.where(Loan.loan_no == loan_no)
    # No eager load of claimed_by: it is the viewer ("mine") or NULL ("available"), so a
    # lazy load costs nothing, while selectinload re-reads the user and its roles.
    return (query.options(selectinload(HumanTask.form_definition))
            .order_by(HumanTask.due_at.asc().nulls_last(), HumanTask.priority, HumanTask.id))


def inbox_page(user, scope, process=None, loan_no=None, page=1, per_page=20):
    """(rows, total) where rows are (HumanTask, loan_no)."""
    query = inbox_query(user, scope, process, loan_no)
    total = db.session.scalar(select(db.func.count()).select_from(query.subquery()))
    rows = db.session.execute(query.limit(per_page).offset((page - 1) * per_page)).all()
    return rows, total


def process_keys():
    return db.session.scalars(select(ProcessDefinition.process_key).distinct()
                              .order_by(ProcessDefinition.process_key)).all()


def task_title(row):
    """The task's name in the user's language: its form's title, else the BPMN name."""
    title = row.form_definition.spec.get("title") if row.form_definition else None
    return localized(title) if title else row.name


def is_overdue(row, at=None):
    """An open task past its due date (SLA breach)."""
    return (row.state == "ready" and row.due_at is not None
            and utc(row.due_at) < (at or clock.now()))


def task_summary(row, loan_no):
    return {"id": row.id, "process": row.process_key, "bpmn_id": row.bpmn_id, "name": row.name,
            "role": row.lane, "loan_no": loan_no,
            "claimed_by": row.claimed_by.username if row.claimed_by else None,
            "due_at": utc(row.due_at).isoformat() if row.due_at else None,
            "priority": row.priority, "state": row.state,
            "created_at": utc(row.created_at).isoformat()}


def open_tasks_of_case(case_id):
    return (HumanTask.query.filter_by(case_id=case_id, state="ready")
            .order_by(HumanTask.created_at).all())


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


def display_value(field, value):
    choices = {c["value"]: localized(c.get("label", c["value"]))
               for c in field.get("choices", [])}
    if isinstance(value, list):
        shown = ", ".join(str(choices.get(v, v)) for v in value)
    elif isinstance(value, bool):
        shown = "✓" if value else "✗"
    else:
        shown = "" if value is None else str(choices.get(value, value))
    return localized(field.get("label") or field["name"]), shown


def task_loan_no(row):
    if row.case_id is None:
        return None
    loaded = row.__dict__.get("loan_no")  # loaded with the task by the facade
    return loaded if loaded is not None else \
        db.session.scalar(select(Loan.loan_no).where(Loan.id == row.case_id))
