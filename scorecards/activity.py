"""What each person did in a period (a Beijing day or month): calls, contacts reached,
promises, tasks done, money collected. Each figure is one GROUP BY query over all the people
asked for, so a team's page costs the same few queries as one person's.

Definitions (shown on the pages):
- a call is a contact-log entry of kind "call" logged by the person (`contact_log.user_id`);
- a contact reached is such a call whose outcome says someone answered: reached, refused to
  pay or promised to pay (collection.contact_rules.UNREACHABLE and "other" are not);
- promises made: promises to pay the person recorded in the period (`made_at`); promises
  kept / broken: the person's promises whose promised date fell in the period and that were
  found kept / broken;
- money collected: repayments (not reversed) received in the period on a loan on which the
  person completed a collection task in the ATTRIBUTION_DAYS days up to the payment. Two
  people who both worked the loan are both credited; a team's total counts each repayment
  once.
"""
import datetime as dt
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import case, func, select

from accounts.models import utc
from cases.models import ContactLogEntry, PromiseToPay
from extensions import db
from ledger.models import Repayment
from workflows.models import HumanTask

REACHED_OUTCOMES = ("reached", "refused", "promised_to_pay")
COLLECTION_PROCESS = "collection"
ATTRIBUTION_DAYS = 30
ZERO = Decimal("0.00")
FIELDS = ("calls", "contacts", "promises_made", "promised_amount", "promises_kept",
          "promises_broken", "tasks_done", "collected")


def _blank():
    return {name: (ZERO if name in ("promised_amount", "collected") else 0) for name in FIELDS}


def activity(user_ids, start, end):
    """{user_id: {field: value}} for every id asked for (zeros included) and, under the key
    None, the group's total (money collected counts each repayment once)."""
    user_ids = list(user_ids)
    result = {uid: _blank() for uid in user_ids}
    total = _blank()
    if not user_ids:
        result[None] = total
        return result
    first, after = start.date(), end.date()  # Beijing dates of the bounds
    # SQLite keeps the wall time of what it is given: compare in UTC, as stored.
    start, end = start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)
    reached = case((ContactLogEntry.outcome.in_(REACHED_OUTCOMES), 1), else_=0)
    for uid, calls, contacts in db.session.execute(
            select(ContactLogEntry.user_id, func.count(ContactLogEntry.id), func.sum(reached))
            .where(ContactLogEntry.kind == "call", ContactLogEntry.user_id.in_(user_ids),
                   ContactLogEntry.at >= start, ContactLogEntry.at < end)
            .group_by(ContactLogEntry.user_id)):
        result[uid].update(calls=int(calls), contacts=int(contacts or 0))
    for uid, made, amount in db.session.execute(
            select(PromiseToPay.user_id, func.count(PromiseToPay.id), func.sum(PromiseToPay.amount))
            .where(PromiseToPay.user_id.in_(user_ids), PromiseToPay.made_at >= start,
                   PromiseToPay.made_at < end).group_by(PromiseToPay.user_id)):
        result[uid].update(promises_made=int(made), promised_amount=Decimal(amount or 0))
    for uid, kept, broken in db.session.execute(
            select(PromiseToPay.user_id,
                   func.sum(case((PromiseToPay.status == "kept", 1), else_=0)),
                   func.sum(case((PromiseToPay.status == "broken", 1), else_=0)))
            .where(PromiseToPay.user_id.in_(user_ids), PromiseToPay.promised_on >= first,
                   PromiseToPay.promised_on < after).group_by(PromiseToPay.user_id)):
        result[uid].update(promises_kept=int(kept or 0), promises_broken=int(broken or 0))
    for uid, done in db.session.execute(
            select(HumanTask.completed_by_id, func.count(HumanTask.id))
            .where(HumanTask.state == "completed", HumanTask.completed_by_id.in_(user_ids),
                   HumanTask.completed_at >= start, HumanTask.completed_at < end)
            .group_by(HumanTask.completed_by_id)):
        result[uid]["tasks_done"] = int(done)
    credited, team_collected = collected(user_ids, start, end)
    for uid, amount in credited.items():
        result[uid]["collected"] = amount
    for uid in user_ids:
        for name in FIELDS:
            total[name] += result[uid][name]
    total["collected"] = team_collected
    result[None] = total
    return result


def collected(user_ids, start, end):
    """({user_id: amount}, group total): repayments received in [start, end) credited to the
    people who completed a collection task on the loan in the ATTRIBUTION_DAYS before."""
    window = dt.timedelta(days=ATTRIBUTION_DAYS)
    start, end = start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)
    worked = (select(HumanTask.case_id, HumanTask.completed_by_id, HumanTask.completed_at)
              .where(HumanTask.state == "completed", HumanTask.process_key == COLLECTION_PROCESS,
                     HumanTask.completed_by_id.in_(user_ids), HumanTask.case_id.is_not(None),
                     HumanTask.completed_at >= start - window, HumanTask.completed_at < end))
    tasks = defaultdict(list)
    for loan_id, uid, at in db.session.execute(worked):
        tasks[loan_id].append((uid, utc(at)))
    per_user, total = defaultdict(lambda: ZERO), ZERO
    if not tasks:
        return per_user, total
    payments = db.session.execute(
        select(Repayment.loan_id, Repayment.amount, Repayment.paid_at)
        .where(Repayment.loan_id.in_(list(tasks)), Repayment.reversed_at.is_(None),
               Repayment.paid_at >= start, Repayment.paid_at < end)
        .order_by(Repayment.id))
    for loan_id, amount, paid_at in payments:
        paid_at = utc(paid_at)
        who = {uid for uid, at in tasks[loan_id] if paid_at - window <= at <= paid_at}
        for uid in who:
            per_user[uid] += Decimal(amount)
        if who:
            total += Decimal(amount)
    return per_user, total
