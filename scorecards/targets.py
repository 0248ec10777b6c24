"""The collectors' daily targets (issue 14 item 6): set by the leader of the collector's team,
from a date on; the latest one not after a day holds that day. A target starts today or later,
so a past day's report never changes."""
from decimal import Decimal, InvalidOperation

from sqlalchemy import select

from accounts.teams import leads
from audit.operations import record
from extensions import db
from scorecards.models import CollectionTarget
from workflows import clock
from workflows.errors import InvalidData, NotAllowed
from workflows.clock import BEIJING

COUNT_MAX = 100_000
AMOUNT_MAX = Decimal("1000000000000")
COUNTS = ("calls", "contacts", "promises")


def _count(value, name, errors):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= COUNT_MAX:
        errors[name] = ["not_a_count"]
        return 0
    return value


def _amount(value, errors):
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        amount = None
    if amount is None or not amount.is_finite() or amount < 0 or amount > AMOUNT_MAX \
            or amount != amount.quantize(Decimal("0.01")):
        errors["amount"] = ["not_an_amount"]
        return Decimal(0)
    return amount.quantize(Decimal("0.01"))


def set_target(collector, effective_from, calls, contacts, promises, amount, actor):
    """The collector's daily targets from `effective_from` on (replacing one set for the same
    day); only the leader of the collector's team. Commits; the target."""
    if not leads(actor, collector):
        raise NotAllowed(f"{actor.username} does not lead {collector.username}'s team",
                         code="not_their_leader")
    errors = {}
    counts = {name: _count(value, name, errors)
              for name, value in zip(COUNTS, (calls, contacts, promises))}
    amount = _amount(amount, errors)
    if effective_from is None:
        errors["effective_from"] = ["required"]
    elif effective_from < clock.now().astimezone(BEIJING).date():
        errors["effective_from"] = ["target_in_past"]
    if errors:
        raise InvalidData("the targets are not valid", code="bad_target", field_errors=errors)
    target = db.session.scalar(select(CollectionTarget).where(
        CollectionTarget.user_id == collector.id,
        CollectionTarget.effective_from == effective_from))
    if target is None:
        target = CollectionTarget(user_id=collector.id, effective_from=effective_from)
        db.session.add(target)
    for name, value in counts.items():
        setattr(target, name, value)
    target.amount, target.set_by_id, target.set_at = amount, actor.id, clock.now()
    db.session.flush()
    record("collection_target.set", actor=actor, data={
        "user": collector.username, "effective_from": effective_from.isoformat(),
        **counts, "amount": str(amount)})
    db.session.commit()
    return target


def targets_on(user_ids, day):
    """{user_id: CollectionTarget} in force on `day` (users without one are left out)."""
    user_ids = list(user_ids)
    if not user_ids:
        return {}
    rows = db.session.scalars(select(CollectionTarget).where(
        CollectionTarget.user_id.in_(user_ids), CollectionTarget.effective_from <= day)
        .order_by(CollectionTarget.user_id, CollectionTarget.effective_from))
    return {row.user_id: row for row in rows}  # the latest of each user wins


def history(user_id, limit=20):
    return db.session.scalars(select(CollectionTarget).where(CollectionTarget.user_id == user_id)
                              .order_by(CollectionTarget.effective_from.desc()).limit(limit)).all()
