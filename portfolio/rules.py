"""The classification rules as a risk manager reads and changes them: the least DPD of each
category below "normal" (strictly increasing), the provision rate of every category and the
least category of an extended loan.

An edit takes effect at the next daily run (or at once with "reclassify now"): the rules are
read by portfolio.classification when it classifies, never cached across runs.
"""
from collections import namedtuple
from decimal import Decimal, InvalidOperation

from audit.operations import record
from extensions import db
from i18n import N_
from portfolio.models import CATEGORIES, ClassificationPolicy, ClassificationRule
from workflows import clock
from workflows.errors import InvalidData

# min_dpd: {category: int or None (normal)}; rates: {category: Decimal fraction};
# extended_floor: a category.
Rules = namedtuple("Rules", "min_dpd rates extended_floor")
# The categories with a DPD threshold (all but normal), best first.
THRESHOLD_CATEGORIES = CATEGORIES[1:]
MAX_DPD = 100_000
HUNDRED = Decimal(100)
# The regulatory defaults, as migration 0018 seeds them: {category: (rank, least DPD, rate)}.
# Used when a row is missing (a database emptied by hand, or by the test suite's cleanup).
DEFAULTS = {"normal": (0, None, Decimal("0")), "special_mention": (1, 4, Decimal("0.02")),
            "substandard": (2, 91, Decimal("0.25")), "doubtful": (3, 271, Decimal("0.5")),
            "loss": (4, 361, Decimal("1"))}
DEFAULT_FLOOR = "special_mention"


def current_rules():
    """The rules in force (five rows and the policy row, seeded by migration 0018)."""
    rows = {r.category: r for r in db.session.scalars(db.select(ClassificationRule))}
    policy = db.session.get(ClassificationPolicy, 1)
    return Rules(min_dpd={c: rows[c].min_dpd if c in rows else DEFAULTS[c][1]
                          for c in CATEGORIES},
                 rates={c: Decimal(rows[c].provision_rate) if c in rows else DEFAULTS[c][2]
                        for c in CATEGORIES},
                 extended_floor=policy.extended_floor if policy else DEFAULT_FLOOR)


def _parse_dpd(raw, errors, key):
    text = str(raw if raw is not None else "").strip()
    if not text.isdigit():
        errors[key] = [N_("Enter a whole number of days.")]
        return None
    value = int(text)
    if value < 1 or value > MAX_DPD:
        errors[key] = [N_("Must be between 1 and 100000 days.")]
        return None
    return value


def _parse_percent(raw, errors, key):
    text = str(raw if raw is not None else "").strip().rstrip("%").strip()
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        errors[key] = [N_("Enter a percentage, e.g. 25 or 2.5.")]
        return None
    if not value.is_finite() or value < 0 or value > HUNDRED:
        errors[key] = [N_("Must be between 0 and 100 percent.")]
        return None
    if value != value.quantize(Decimal("0.01")):
        errors[key] = [N_("At most two decimal places.")]
        return None
    return (value / HUNDRED).quantize(Decimal("0.0001"))


def validate(min_dpd, rates_percent, extended_floor):
    """Parse what the form sent: {category: text} of days and of percents, a category.
    Returns Rules or raises InvalidData with one message per field (keys `min_dpd-<category>`,
    `rate-<category>`, `extended_floor`)."""
    errors, days, rates = {}, {"normal": None}, {}
    for category in THRESHOLD_CATEGORIES:
        days[category] = _parse_dpd(min_dpd.get(category), errors, f"min_dpd-{category}")
    for category in CATEGORIES:
        rates[category] = _parse_percent(rates_percent.get(category), errors,
                                         f"rate-{category}")
    previous = None
    for category in THRESHOLD_CATEGORIES:  # strictly increasing, best category first
        value = days[category]
        if value is not None and previous is not None and value <= previous:
            errors.setdefault(f"min_dpd-{category}", [N_(
                "Must be more days than the category above it.")])
        if value is not None:
            previous = value
    if extended_floor not in CATEGORIES:
        errors["extended_floor"] = [N_("Choose a category.")]
    if errors:
        raise InvalidData("the classification rules have errors", field_errors=errors,
                          code="invalid")
    return Rules(min_dpd=days, rates=rates, extended_floor=extended_floor)


def update_rules(actor, min_dpd, rates_percent, extended_floor):
    """Validate and store new rules; one audit event with every old and new value. Commits.
    Returns {field: [old, new]} of what changed (empty: nothing changed, nothing recorded)."""
    new = validate(min_dpd, rates_percent, extended_floor)
    changed = {}
    moment = clock.now()
    rows = {r.category: r for r in db.session.scalars(db.select(ClassificationRule))}
    for category in CATEGORIES:
        if category not in rows:  # missing: written from the defaults, then changed below
            rank, days, rate = DEFAULTS[category]
            rows[category] = ClassificationRule(category=category, rank=rank, min_dpd=days,
                                                provision_rate=rate)
            db.session.add(rows[category])
    for row in rows.values():
        category = row.category
        if row.min_dpd != new.min_dpd[category]:
            changed[f"min_dpd.{category}"] = [row.min_dpd, new.min_dpd[category]]
            row.min_dpd = new.min_dpd[category]
        if Decimal(row.provision_rate) != new.rates[category]:
            changed[f"provision_rate.{category}"] = [
                str(Decimal(row.provision_rate).quantize(Decimal("0.0001"))),
                str(new.rates[category])]
            row.provision_rate = new.rates[category]
        if category in {k.split(".")[1] for k in changed}:
            row.updated_at, row.updated_by_id = moment, actor.id
    policy = db.session.get(ClassificationPolicy, 1)
    if policy is None:
        policy = ClassificationPolicy(id=1, extended_floor=DEFAULT_FLOOR)
        db.session.add(policy)
    if policy.extended_floor != new.extended_floor:
        changed["extended_floor"] = [policy.extended_floor, new.extended_floor]
        policy.extended_floor = new.extended_floor
        policy.updated_at, policy.updated_by_id = moment, actor.id
    if changed:
        record("portfolio.rules_changed", actor=actor, data={
            "changes": {key: {"old": o, "new": n} for key, (o, n) in changed.items()}})
    db.session.commit()
    return changed
