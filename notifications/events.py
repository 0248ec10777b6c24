"""Who is told what: hooks of the engine facade that write users' notifications inside the
transaction of the event (workflows.service AFTER_TASKS_CREATED, workflows.tasks AFTER_COMPLETE /
AFTER_REASSIGN, and the overdue sweep of management.sla).

Nobody to tell costs no statement (tests/test_round_trips.py counts them): a new pool task,
or a completion without a decision, returns before touching the database.
"""
import time

from flask import current_app
from sqlalchemy import Integer, bindparam, event, exists, insert, select
from sqlalchemy.orm import Session

from accounts.models import User
from cases.models import Loan
from extensions import db
from notifications.labels import message_in, step_label
from notifications.outbox import enqueue
from notifications.user_models import NotificationPreference, UserNotification
from workflows import clock
from workflows.models import HumanTask, HumanTaskExclusion, ProcessInstance
from workflows.service import AFTER_TASKS_CREATED
from workflows.tasks import AFTER_COMPLETE, AFTER_REASSIGN

# Lanes of the people who decide (the managers' view calls a ready task there an approval);
# whoever did the last other step of the instance asked for their decision.
APPROVER_LANES = ("dept_head", "general_manager", "risk_manager")
# A completed step's submitted value that is a decision or a check's result, whatever the
# field is called (visit_decision, approval_decision, review_result, check_result …).
OUTCOMES = {"approve": "approved", "approved": "approved",
            "reject": "rejected", "rejected": "rejected",
            "returned": "returned", "incomplete": "returned"}
# The outcome of the completion of the current transaction (session.info), dropped when the
# transaction ends.
_OUTCOME = "notifications.outcome"

_COLUMNS = UserNotification.__table__.c
# One statement for any number of notifications (executemany), skipping a person whom four
# eyes exclude from the task handed to them ("guard"): no round trip to read the exclusions.
_INSERT = insert(UserNotification.__table__).from_select(
    ["user_id", "kind", "case_id", "task_id", "actor_id", "context", "created_at"],
    select(*(bindparam(name, type_=_COLUMNS[name].type) for name in (
        "user_id", "kind", "case_id", "task_id", "actor_id", "context", "created_at")))
    .where(~exists().where(HumanTaskExclusion.task_id == bindparam("guard", type_=Integer),
                           HumanTaskExclusion.user_id == bindparam("user_id"))))
# The kinds that hand a task to its recipient: not told to someone four eyes exclude from it
# (a decision is told to the requester, whom four eyes exclude from deciding).
_HANDED = frozenset({"assigned", "returned"})
# Who has outbox preferences, memoized per process for PREFERENCES_CACHE_SECONDS (default
# 30) so that telling someone without any costs no statement; a change in this process
# clears it, one in another process is seen within that time.
_PREFERRING = {"until": 0.0, "users": frozenset()}


def users_with_preferences():
    moment = time.monotonic()
    if moment >= _PREFERRING["until"]:
        _PREFERRING["users"] = frozenset(db.session.scalars(
            select(NotificationPreference.user_id)))
        _PREFERRING["until"] = moment + current_app.config.get(
            "PREFERENCES_CACHE_SECONDS", 30)
    return _PREFERRING["users"]


def forget_preferences():
    _PREFERRING["until"] = 0.0


def _context(task):
    return {"process": task["process_key"], "step": task["bpmn_id"], "name": task["name"]}


def notify(items):
    """Write notifications: items are dicts of user_id, kind, case_id, task_id, actor_id,
    context. One INSERT for all (none for a person four eyes exclude from the task), then
    the outbox copies the users asked for."""
    if not items:
        return
    moment = clock.now()
    rows = [{"actor_id": None, "case_id": None, "task_id": None, **item,
             "created_at": moment} for item in items]
    db.session.execute(_INSERT, [dict(row, guard=row["task_id"] if row["kind"] in _HANDED
                                      else None) for row in rows])
    preferring = users_with_preferences()
    if any(row["user_id"] in preferring for row in rows):
        _send_out(rows)


def _send_out(rows):
    """The outbox copies of the kinds each recipient chose, in the recipient's language."""
    preferences = {pref.user_id: (pref, locale) for pref, locale in db.session.execute(
        select(NotificationPreference, User.locale)
        .join(User, User.id == NotificationPreference.user_id)
        .where(NotificationPreference.user_id.in_({row["user_id"] for row in rows}),
               User.active.is_(True)))}
    wanted = [(row, *preferences[row["user_id"]]) for row in rows
              if row["user_id"] in preferences
              and row["kind"] in (preferences[row["user_id"]][0].kinds or [])]
    if not wanted:
        return
    excluded = set(db.session.execute(
        select(HumanTaskExclusion.task_id, HumanTaskExclusion.user_id).where(
            HumanTaskExclusion.task_id.in_({row["task_id"] for row, *_ in wanted
                                            if row["task_id"]}))))
    wanted = [item for item in wanted if item[0]["kind"] not in _HANDED
              or (item[0]["task_id"], item[0]["user_id"]) not in excluded]
    tasks = {task.id: task for task in db.session.scalars(
        select(HumanTask).where(HumanTask.id.in_({row["task_id"] for row, *_ in wanted
                                                  if row["task_id"]})))}
    loans = dict(db.session.execute(select(Loan.id, Loan.loan_no).where(
        Loan.id.in_({row["case_id"] for row, *_ in wanted if row["case_id"]}))).all())
    actors = {user.id: user.label for user in db.session.scalars(select(User).where(
        User.id.in_({row["actor_id"] for row, *_ in wanted if row["actor_id"]})))}
    for row, pref, locale in wanted:
        title = step_label(tasks.get(row["task_id"]), row["context"], locale)
        body = message_in(locale, row["kind"], title, loans.get(row["case_id"]),
                          actors.get(row["actor_id"]), row["context"].get("process"))
        user = db.session.get(User, row["user_id"])
        enqueue(row["case_id"], pref.address or user.username, body, channel=pref.channel)


# ---------------------------------------------------------------- hooks

def tasks_created(tasks):
    """New human tasks: the person a task went straight to is told it is waiting
    ("assigned"). A step done before in the instance is "returned" when the completion of
    this transaction sent it back (a check found the file incomplete, a decision rejected or
    returned it); a returned pool task is then told to whoever did that step last time
    (unless they were just told of the rejection). A step that simply comes round again (the
    next collection call) is no one's news. Four eyes win: an excluded person is not told."""
    outcome = db.session().info.get(_OUTCOME) or {}
    sent_back = [t for t in tasks if t.get("returned")
                 and t.get("instance_id") == outcome.get("instance_id")
                 and outcome.get("negative")]
    direct = [t for t in tasks if t.get("claimed_by_id") or t.get("candidate_user_id")]
    pooled = [t for t in sent_back if t not in direct]
    if not direct and not pooled:
        return
    recipients = [(t, t.get("claimed_by_id") or t["candidate_user_id"]) for t in direct]
    recipients += [(t, user_id) for t, user_id in _previous_doers(pooled)
                   if user_id != outcome.get("told")]
    notify([{"user_id": user_id, "kind": "returned" if task in sent_back else "assigned",
             "case_id": task.get("case_id"), "task_id": task["id"],
             "context": _context(task)}
            for task, user_id in recipients if user_id is not None])


def _previous_doers(tasks):
    """[(task, user id)]: who completed each task's step last in the same instance."""
    found = []
    for task in tasks:
        user_id = db.session.scalar(
            select(HumanTask.completed_by_id)
            .where(HumanTask.instance_id == task["instance_id"],
                   HumanTask.bpmn_id == task["bpmn_id"], HumanTask.state == "completed")
            .order_by(HumanTask.completed_at.desc(), HumanTask.id.desc()).limit(1))
        found.append((task, user_id))
    return found


def outcome(values):
    """'approved' / 'rejected' / 'returned' for a submission holding a decision or a check
    result, else None."""
    for name, given in (values or {}).items():
        if isinstance(given, str) and given in OUTCOMES and (
                name == "decision" or name.endswith(("_decision", "_result"))):
            return OUTCOMES[given]
    return None


def task_completed(row, user):
    """A decision step done: whoever asked for it is told it was approved or rejected. The
    outcome is kept for this transaction: tasks_created tells a step sent back."""
    kind = outcome(row.data)
    info = db.session().info
    info[_OUTCOME] = {"instance_id": row.instance_id,
                      "negative": kind in ("rejected", "returned")}
    if kind not in ("approved", "rejected"):
        return
    requester = requester_of(row)
    if requester is None or requester == user.id:
        return
    info[_OUTCOME]["told"] = requester
    notify([{"user_id": requester, "kind": kind, "case_id": row.case_id, "task_id": row.id,
             "actor_id": user.id,
             "context": {"process": row.process_key, "step": row.bpmn_id, "name": row.name,
                         "decision": kind}}])


def requester_of(row):
    """Who asked for a decision: the completer of the instance's latest step outside the
    approvers' lanes, else whoever started the instance (e.g. requested an extension)."""
    earlier = db.session.scalar(
        select(HumanTask.completed_by_id)
        .where(HumanTask.instance_id == row.instance_id, HumanTask.state == "completed",
               HumanTask.id != row.id, HumanTask.completed_by_id.is_not(None),
               HumanTask.lane.not_in(APPROVER_LANES))
        .order_by(HumanTask.completed_at.desc(), HumanTask.id.desc()).limit(1))
    if earlier is not None:
        return earlier
    return db.session.scalar(select(ProcessInstance.started_by_id)
                             .where(ProcessInstance.id == row.instance_id))


def task_reassigned(row, old_user_id, new_user, actor):
    context = {"process": row.process_key, "step": row.bpmn_id, "name": row.name}
    items = [{"user_id": new_user.id, "kind": "reassigned_to_you", "case_id": row.case_id,
              "task_id": row.id, "actor_id": actor.id, "context": context}]
    if old_user_id is not None and old_user_id != new_user.id:
        items.append({"user_id": old_user_id, "kind": "reassigned_away",
                      "case_id": row.case_id, "task_id": row.id, "actor_id": actor.id,
                      "context": context})
    notify([item for item in items if item["user_id"] != actor.id])


def task_overdue(row, holder):
    """The overdue sweep (management.sla): the task's holder is told; a pool task is no one
    person's, its leaders are told by the sweep's own notice."""
    if holder is None or not holder.active:
        return
    notify([{"user_id": holder.id, "kind": "overdue", "case_id": row.case_id,
             "task_id": row.id,
             "context": {"process": row.process_key, "step": row.bpmn_id, "name": row.name}}])


@event.listens_for(Session, "after_transaction_end")
def _forget_outcome(session, transaction):
    if transaction.parent is None:
        session.info.pop(_OUTCOME, None)


for _list, _hook in ((AFTER_TASKS_CREATED, tasks_created), (AFTER_COMPLETE, task_completed),
                     (AFTER_REASSIGN, task_reassigned)):
    if _hook not in _list:
        _list.append(_hook)
