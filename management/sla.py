"""Service-level operations: the overdue-task sweep and late follow-ups (DOMAIN.md §6).

- check_overdue_tasks(): every READY task past its due date whose holder and leaders were not
  yet told is notified once (outbox channel "inbox", recipient = user name), stamped with
  overdue_notified_at and audited "task.overdue"; one transaction per task.
- record_late_followup(): a hook of workflows.tasks.complete_task; a task completed after its
  due date is a LateFollowUp of the user who completed it, audited — not fined: approvals of
  the dept_head and general_manager and legal steps are never recorded ([000 §七] fines staff
  for their own lateness in following up).
- impose_fine(): the leader finds it was the person's own fault after the leader's
  instruction: 100 yuan, with the reason, audited. waive_late_followup(): the leader waives
  it with a reason. Neither on the leader's own late follow-ups.
- repeated lateness (REPEAT_COUNT late follow-ups within REPEAT_DAYS) is flagged for the
  leader in the management view (management.queries).
"""
from decimal import Decimal

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update

from accounts.models import User, UserRole, utc
from audit.operations import record
from cases.models import LateFollowUp, Loan
from extensions import db
from notifications.events import task_overdue
from notifications.outbox import enqueue
from workflows import clock
from workflows.clock import BEIJING
from workflows.errors import Conflict, InvalidData, NotAllowed, NotFound
from workflows.inbox import task_title
from workflows.models import HumanTask
from workflows.service import sweep
from workflows.tasks import AFTER_COMPLETE

# "Leader" in DOMAIN.md means the department head: told of overdue tasks, waives fines.
LEADER_ROLE = "dept_head"
LATE_FINE = Decimal("100")
# Steps whose lateness is never a follow-up fine: the leaders' approvals and legal work.
EXEMPT_LANES = frozenset({"dept_head", "general_manager", "legal"})
REPEAT_COUNT, REPEAT_DAYS = 3, 30
NOTIFY_CHANNEL = "inbox"
REASON_MAX = 1000


def _beijing(moment):
    return utc(moment).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def leaders():
    return db.session.scalars(
        select(User).join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == LEADER_ROLE, User.active.is_(True)).order_by(User.id)).all()


# ---------------------------------------------------------------- overdue sweep

def _overdue_ids(limit):
    return db.session.scalars(
        select(HumanTask.id).where(HumanTask.state == "ready",
                                   HumanTask.due_at < clock.now(),
                                   HumanTask.overdue_notified_at.is_(None))
        .order_by(HumanTask.due_at, HumanTask.id).limit(limit)).all()


def _message(user, row, loan_no, holder, as_leader):
    with force_locale(user.locale or "zh_CN"):
        values = {"task": task_title(row), "loan": loan_no or "-", "due": _beijing(row.due_at),
                  "holder": holder.label if holder else _("nobody")}
        if as_leader:
            return _("Overdue task: “%(task)s” of loan %(loan)s was due at %(due)s (Beijing "
                     "time) and is not done; held by %(holder)s.", **values)
        return _("Overdue task: “%(task)s” of loan %(loan)s was due at %(due)s (Beijing time) "
                 "and is not done. Please complete it now.", **values)


def _notify_overdue(task_id):
    """One task: stamp, notify, audit, commit. False when another sweep got it first."""
    now = clock.now()
    # The conditional UPDATE is the guard: two concurrent sweeps cannot both stamp a task.
    result = db.session.execute(
        update(HumanTask).where(HumanTask.id == task_id, HumanTask.state == "ready",
                                HumanTask.overdue_notified_at.is_(None))
        .values(overdue_notified_at=now).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.rollback()
        return False
    row = db.session.get(HumanTask, task_id)
    loan_no = db.session.scalar(select(Loan.loan_no).where(Loan.id == row.case_id)) \
        if row.case_id else None
    holder = row.claimed_by or row.candidate_user
    task_overdue(row, holder)  # the holder's in-app notification (a pool task: nobody's)
    notified = []
    if holder is not None and holder.active:
        enqueue(row.case_id, holder.username, _message(holder, row, loan_no, holder, False),
                channel=NOTIFY_CHANNEL)
        notified.append(holder.username)
    for leader in leaders():
        if leader.username not in notified:
            enqueue(row.case_id, leader.username, _message(leader, row, loan_no, holder, True),
                    channel=NOTIFY_CHANNEL)
            notified.append(leader.username)
    record("task.overdue", case_id=row.case_id, instance_id=row.instance_id, task_id=row.id,
           data={"bpmn_id": row.bpmn_id, "due_at": utc(row.due_at).isoformat(),
                 "holder": holder.username if holder else None, "notified": notified})
    db.session.commit()
    return True


def check_overdue_tasks(limit=500):
    """Notify every newly overdue open task once; returns how many tasks were notified."""
    return sweep(_overdue_ids, _notify_overdue, limit)


# ---------------------------------------------------------------- late follow-ups

def record_late_followup(row, user):
    """complete_task hook (inside its transaction): a task completed after its due date."""
    if row.due_at is None or utc(row.completed_at or clock.now()) <= utc(row.due_at):
        return None
    if row.lane in EXEMPT_LANES:
        return None
    late = LateFollowUp(task_id=row.id, user_id=user.id, loan_id=row.case_id,
                        due_at=row.due_at, recorded_at=clock.now(), fine=Decimal("0"))
    db.session.add(late)
    db.session.flush()
    record("late_followup.recorded", actor=user, case_id=row.case_id,
           instance_id=row.instance_id, task_id=row.id,
           data={"late_followup_id": late.id, "user": user.username, "bpmn_id": row.bpmn_id,
                 "due_at": utc(row.due_at).isoformat(),
                 "completed_at": utc(row.completed_at or clock.now()).isoformat()})
    return late


if record_late_followup not in AFTER_COMPLETE:
    AFTER_COMPLETE.append(record_late_followup)


def _leaders_decision(late_id, reason, actor, what):
    """The checks before the leader fines or waives: role, reason, not the leader's own."""
    if LEADER_ROLE not in actor.roles:
        raise NotAllowed(f"only the department head may {what} a late follow-up",
                         code="not_leader")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidData("a reason is required", code="reason_required",
                          field_errors={"reason": ["required"]})
    if len(reason) > REASON_MAX:
        raise InvalidData(f"at most {REASON_MAX} characters", code="invalid",
                          field_errors={"reason": [f"at most {REASON_MAX} characters"]})
    late = db.session.get(LateFollowUp, late_id)
    if late is None:
        raise NotFound("late follow-up not found", code="late_followup_missing")
    if late.user_id == actor.id:
        raise NotAllowed("a leader does not decide on their own late follow-up",
                         code="own_followup")
    return late, reason


def impose_fine(late_id, reason, actor):
    """The leader finds the lateness was the person's own fault after the leader's
    instruction: a fine of LATE_FINE; commits."""
    late, reason = _leaders_decision(late_id, reason, actor, "fine")
    result = db.session.execute(
        update(LateFollowUp).where(LateFollowUp.id == late.id, LateFollowUp.waived_at.is_(None),
                                   LateFollowUp.fined_at.is_(None))
        .values(fine=LATE_FINE, fined_at=clock.now(), fined_by_id=actor.id,
                fine_reason=reason).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.rollback()
        raise Conflict("this late follow-up was already decided", code="already_decided")
    user = db.session.get(User, late.user_id) if late.user_id else None
    record("late_followup.fined", actor=actor, case_id=late.loan_id, task_id=late.task_id,
           data={"late_followup_id": late.id, "user": user.username if user else None,
                 "fine": str(LATE_FINE), "reason": reason})
    db.session.commit()
    db.session.refresh(late)
    return late


def waive_late_followup(late_id, reason, actor):
    """The leader waives a late follow-up (e.g. the client would not cooperate); commits."""
    late, reason = _leaders_decision(late_id, reason, actor, "waive")
    result = db.session.execute(
        update(LateFollowUp).where(LateFollowUp.id == late.id, LateFollowUp.waived_at.is_(None))
        .values(waived_at=clock.now(), waived_by_id=actor.id, waive_reason=reason)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.rollback()
        raise Conflict("this late follow-up was already waived", code="already_waived")
    user = db.session.get(User, late.user_id) if late.user_id else None
    record("late_followup.waived", actor=actor, case_id=late.loan_id, task_id=late.task_id,
           data={"late_followup_id": late.id, "user": user.username if user else None,
                 "fine": str(late.fine), "reason": reason})
    db.session.commit()
    db.session.refresh(late)
    return late
