"""A case's timeline: its audit events (the single source), classified by kind, filtered by
kind and person, optionally cut at a date; and the case as it stood on that date."""
import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from accounts.models import User, utc
from audit.models import AuditEvent
from cases.models import StageChange
from cases.presenters import history_rows
from extensions import db
from ledger.book import cents
from ledger.models import Allocation, Charge
from workflows.clock import BEIJING
from workflows.inbox import task_title
from workflows.models import HumanTask

KIND_LABELS = {
    "process": _l("Process steps"),
    "approval": _l("Approvals"),
    "reassignment": _l("Reassignments"),
    "contact": _l("Contacts"),
    "repayment": _l("Repayments"),
    "stage": _l("Stage changes"),
    "document": _l("Documents"),
    "export": _l("Exports"),
    "case": _l("Case"),
}

_EXACT = {
    "task.reassigned": "reassignment",
    "repayment.posted": "repayment",
    "collection.repayment_noted": "repayment",
    "case.stage_changed": "stage",
    "case.overdue": "stage",
    "document.uploaded": "document",
    "extension.approved": "approval",
    "extension.rejected": "approval",
    "extension.refused": "approval",
    "risk.decided": "approval",
    "inspection.approved": "approval",
}
_PREFIXES = (("task.", "process"), ("process.", "process"), ("timer.", "process"),
             ("late_followup.", "process"), ("draft.", "process"), ("contact.", "contact"),
             ("collection.", "contact"), ("export.", "export"))


def _is_decision(key):
    return key == "decision" or key.endswith("_decision") or key.startswith("approval_")


def kind_of(action, data=None):
    """The kind of an audit event; a completed task whose form records a decision (an
    approval, a review, a litigation or visit decision, with its comments) is an approval."""
    if action == "task.completed" and any(
            _is_decision(k) for k in ((data or {}).get("data") or {})):
        return "approval"
    if action in _EXACT:
        return _EXACT[action]
    for prefix, kind in _PREFIXES:
        if action.startswith(prefix):
            return kind
    return "case"


def end_of_day(day):
    """The first instant after `day` (a Beijing date), in UTC."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), BEIJING) \
        .astimezone(dt.timezone.utc)


def timeline(loan, kinds=None, user=None, as_of=None):
    """Entries of the case, oldest first: dicts with the event, its kind, the task title and
    the submitted form data as (label, value) pairs. `kinds`: a set of kind keys; `user`: a
    username; `as_of`: a date (Beijing), events after it are left out."""
    query = AuditEvent.query.filter(AuditEvent.case_id == loan.id)
    if as_of is not None:
        query = query.filter(AuditEvent.at < end_of_day(as_of))
    if user:
        query = query.join(User, User.id == AuditEvent.actor_id).filter(User.username == user)
    events = query.order_by(AuditEvent.at, AuditEvent.id).all()
    if kinds:
        events = [e for e in events if kind_of(e.action, e.data) in kinds]
    return [{"event": e, "kind": kind_of(e.action, e.data), "title": title, "pairs": pairs}
            for e, title, pairs in history_rows(events, loan=loan)]


def people(loan):
    """(username, name shown) of the people who acted on the case, for the person filter:
    the filter's value is the username, the reader sees the person's name."""
    rows = (db.session.query(User.username, User.display_name)
            .join(AuditEvent, AuditEvent.actor_id == User.id)
            .filter(AuditEvent.case_id == loan.id).distinct().order_by(User.username))
    return [(username, display or username) for username, display in rows]


def state_as_of(loan, day):
    """The case as it stood at the end of `day` (Beijing). The balance is exact: the ledger's
    charges booked by then less its allocations booked by then (reversals included). DPD and
    stage are approximate: those of the last stage
    change on or before the day (DPD as it was on that change, staging runs daily); open tasks
    are tasks created by then and not completed by then (a task cancelled without a completion
    time is left out)."""
    cutoff = end_of_day(day)
    due, paid = (db.session.scalar(select(func.coalesce(func.sum(model.amount), 0)).where(
        model.loan_id == loan.id, model.created_at < cutoff)) for model in (Charge, Allocation))
    change = (StageChange.query.filter(StageChange.loan_id == loan.id,
                                       StageChange.changed_on <= day)
              .order_by(StageChange.changed_on.desc(), StageChange.id.desc()).first())
    tasks = [t for t in HumanTask.query.filter(HumanTask.case_id == loan.id,
                                                HumanTask.created_at < cutoff)
             .order_by(HumanTask.created_at, HumanTask.id)
             if (t.completed_at is not None and utc(t.completed_at) >= cutoff)
             or (t.completed_at is None and t.state not in ("cancelled", "completed"))]
    return {"day": day, "outstanding": cents(due) - cents(paid),
            "dpd": change.dpd if change else 0,
            "stage": change.to_stage if change else "current",
            "open_tasks": [(t, task_title(t)) for t in tasks]}
