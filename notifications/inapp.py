"""Read and mark one user's notifications; their outbox preferences."""
import re
from dataclasses import dataclass

from sqlalchemy import func, literal, select, update
from sqlalchemy.orm import selectinload

from cases.models import Loan
from extensions import db
from notifications.user_models import CHANNELS, KINDS, NotificationPreference, UserNotification
from notifications.events import forget_preferences
from workflows import clock
from workflows.errors import InvalidData, NotFound
from workflows.models import HumanTask

# The badge says "99+" past this: counting stops there (a bounded index range).
UNREAD_BOUND = 99
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,19}$")


def unread_expression(user_id, bound=UNREAD_BOUND):
    """COUNT of the user's first bound + 1 unread notifications, a scalar subquery: a
    bounded range of ix_user_notifications_user_read, no ORDER BY."""
    found = (select(literal(1)).select_from(UserNotification)
             .where(UserNotification.user_id == user_id, UserNotification.read_at.is_(None))
             .limit(bound + 1))
    return select(func.count()).select_from(found.subquery()).scalar_subquery()


def unread_count(user_id, bound=UNREAD_BOUND):
    """(unread up to bound, whether there are more): one statement."""
    n = db.session.scalar(select(unread_expression(user_id, bound)))
    return min(n, bound), n > bound


@dataclass
class Page:
    rows: list  # (UserNotification, loan_no)
    page: int
    has_next: bool


def page_of(user_id, page=1, per_page=20):
    """One page of the user's notifications, newest first (index user_id, id)."""
    page = max(1, page)
    rows = db.session.execute(
        select(UserNotification, Loan.loan_no)
        .outerjoin(Loan, Loan.id == UserNotification.case_id)
        .where(UserNotification.user_id == user_id)
        .options(selectinload(UserNotification.task).selectinload(HumanTask.form_definition),
                 selectinload(UserNotification.actor))
        .order_by(UserNotification.id.desc())
        .limit(per_page + 1).offset((page - 1) * per_page)).all()
    return Page(rows=rows[:per_page], page=page, has_next=len(rows) > per_page)


def mark_read(notification_id, user):
    """Mark one of the user's notifications read; another user's is not found. Commits.
    Returns the notification."""
    if not 0 < notification_id < 2**31:
        raise NotFound("no such notification", code="notification_missing")
    note = db.session.scalar(select(UserNotification).where(
        UserNotification.id == notification_id, UserNotification.user_id == user.id))
    if note is None:
        raise NotFound("no such notification", code="notification_missing")
    if note.read_at is None:
        note.read_at = clock.now()
    db.session.commit()
    return note


def mark_all_read(user):
    """Mark every unread notification of the user read; returns how many. Commits."""
    result = db.session.execute(
        update(UserNotification)
        .where(UserNotification.user_id == user.id, UserNotification.read_at.is_(None))
        .values(read_at=clock.now()).execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount


def target(note, loan_no):
    """Where a notification leads: its task, else its case, else nowhere."""
    if note.task_id:
        return f"/tasks/{note.task_id}"
    if loan_no:
        return f"/cases/{loan_no}"
    return None


# ---------------------------------------------------------------- preferences

def preferences_of(user_id):
    return db.session.get(NotificationPreference, user_id)


def save_preferences(user, kinds, channel, address):
    """Which kinds also go out through the outbox, on which channel and to which address.
    No kinds: nothing goes out (the row is removed). Bad input changes nothing. Commits."""
    kinds = sorted(set(kinds or []))
    address = (address or "").strip()
    errors = {}
    if any(kind not in KINDS for kind in kinds):
        errors["kinds"] = ["unknown kind"]
    if channel not in CHANNELS:
        errors["channel"] = ["unknown channel"]
    elif kinds and channel == "email" and not EMAIL.match(address):
        errors["address"] = ["an e-mail address"]
    elif kinds and channel == "sms" and not PHONE.match(address):
        errors["address"] = ["a phone number"]
    if len(address) > 120:
        errors["address"] = ["at most 120 characters"]
    if errors:
        raise InvalidData("the preferences have errors", code="invalid", field_errors=errors)
    pref = db.session.get(NotificationPreference, user.id)
    if not kinds:
        if pref is not None:
            db.session.delete(pref)
        db.session.commit()
        forget_preferences()
        return None
    if pref is None:
        pref = NotificationPreference(user_id=user.id)
        db.session.add(pref)
    pref.kinds, pref.channel, pref.updated_at = kinds, channel, clock.now()
    pref.address = "" if channel == "webhook" else address
    db.session.commit()
    forget_preferences()
    return pref
