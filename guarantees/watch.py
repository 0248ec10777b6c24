"""The daily collateral watch (issue 16): registrations and insurance about to expire,
revaluations due, loan-to-value over the threshold — each a risk signal once.

Run by the daily run (cases.staging.AFTER_DAILY_RUN) inside its transaction. Every rule is one
query over the whole book (no query per loan); each warning found is stored as a
CollateralWarning whose unique (loan, reason, key) keeps it from being raised twice, and
raised as a RiskSignal of category 8 (weakened guarantee, DOMAIN.md §5.7) with its risk
warning for the leader and the risk manager. Only loans still serviced are watched (not
closing, not closed) and only items not released.

- registration_expiring / insurance_expiring: today >= expiry - N working days (N per asset
  type, CollateralPolicy.expiry_warning_days), on the statutory calendar. The N-th working day
  before the expiry is on or before today exactly when the expiry is on or before the N-th
  working day after today (W): one date per N, so the query compares the expiry with W. Key:
  the item and the expiry date (a renewed registration warns again on its new date).
- revaluation_due: the latest valuation is `revaluation_months` old (per asset type, 0 =
  never), due on the first working day on or after that date; the watch starts the
  revaluation process too. Key: the item and its latest valuation (a new valuation restarts
  the clock).
- ltv_high: outstanding principal / latest values of the unreleased items above the lowest
  threshold of the loan's valued items. Key: the newest of those valuations (a revaluation
  that leaves the loan over the threshold warns again; repayments alone do not).

A working-day count that reaches a year whose calendar is unknown (DOMAIN.md §4) counts that
year's Mondays to Fridays as working days, and each item whose expiry falls in that
uncertain stretch (up to 14 days after the estimated date) opens a calendar_year_missing case
problem for the administrators, instead of silently warning late.
"""
import datetime as dt
from collections import namedtuple
from decimal import Decimal

from sqlalchemy import BigInteger, String, case, cast, exists, extract, func, literal, select

from audit.operations import record
from calendars.workdays import CalendarUnknown, is_working_day
from cases.models import CaseProblem, Collateral, Loan
from extensions import db
from formatting import money, rate
from guarantees import collateral as _collateral  # noqa: F401  (its BPMN service)
from guarantees.models import (ASSET_TYPES, CollateralPolicy, CollateralValuation,
                               CollateralWarning)
from ledger.models import Installment
from workflows import clock
from workflows.models import ProcessDefinition, ProcessInstance

Policy = namedtuple("Policy", "revaluation_months expiry_warning_days ltv_threshold")
# No CollateralPolicy row for a type: these. Real estate moves slowly and its registration
# takes weeks to renew; vehicles and equipment lose value fast; inventory turns over; a
# deposit is worth its balance and never needs a valuer.
DEFAULT_POLICIES = {
    "real_estate": Policy(12, 30, Decimal("0.70")),
    "vehicle": Policy(6, 20, Decimal("0.60")),
    "equipment": Policy(6, 20, Decimal("0.60")),
    "inventory": Policy(3, 10, Decimal("0.50")),
    "deposit": Policy(0, 10, Decimal("0.90")),
    "equity": Policy(6, 20, Decimal("0.50")),
    "other": Policy(12, 20, Decimal("0.70")),
}
ACTIVE = ("closing", "closed")
UNCERTAIN_DAYS = 14
CATEGORY = 8


def policies():
    """{asset type: Policy}: the stored rows over the defaults."""
    out = dict(DEFAULT_POLICIES)
    for row in CollateralPolicy.query.all():
        out[row.asset_type] = Policy(row.revaluation_months, row.expiry_warning_days,
                                     Decimal(row.ltv_threshold))
    return out


# ---------------------------------------------------------------- calendar arithmetic

def _working(day, unknown):
    """Whether `day` is a working day; in a year of unknown calendar, Monday to Friday (the
    year is added to `unknown`)."""
    try:
        return is_working_day(day)
    except CalendarUnknown as exc:
        unknown.add(exc.year)
        return day.weekday() < 5


def warning_horizon(today, days, unknown=None):
    """W: the N-th working day after today. An expiry E warns today exactly when
    E - N working days <= today, i.e. E <= W."""
    unknown = set() if unknown is None else unknown
    day, left = today, days
    while left > 0:
        day += dt.timedelta(days=1)
        if _working(day, unknown):
            left -= 1
    return day


def warns_on(expires_on, days, unknown=None):
    """The day the warning of an expiry is due: N working days before it."""
    unknown = set() if unknown is None else unknown
    day, left = expires_on, days
    while left > 0:
        day -= dt.timedelta(days=1)
        if _working(day, unknown):
            left -= 1
    return day


def last_working_day(today):
    """The latest working day on or before today (today itself when unknown)."""
    day = today
    for _ in range(40):
        try:
            if is_working_day(day):
                return day
        except CalendarUnknown:
            return today
        day -= dt.timedelta(days=1)
    return today


def add_months(day, months):
    from monitoring.risk import add_months as plus
    return plus(day, months)


def valued_by(cutoff, months):
    """The latest valuation date whose revaluation (months later) is due by `cutoff`."""
    day = add_months(cutoff, -months)
    while add_months(day + dt.timedelta(days=1), months) <= cutoff:
        day += dt.timedelta(days=1)
    while add_months(day, months) > cutoff:
        day -= dt.timedelta(days=1)
    return day


def revaluation_due_on(valued_on, months):
    """The first working day on or after valued_on + months (None: never)."""
    if not months:
        return None
    day = add_months(valued_on, months)
    for _ in range(40):
        try:
            if is_working_day(day):
                return day
        except CalendarUnknown:
            return day
        day += dt.timedelta(days=1)
    return day


# ---------------------------------------------------------------- the rules

def _by_type(column, values, default):
    """CASE column WHEN type THEN value … ELSE default END."""
    return case(*((column == t, v) for t, v in values.items()), else_=default)


def _not_warned(reason, key):
    return ~exists().where(CollateralWarning.loan_id == Collateral.loan_id,
                           CollateralWarning.reason == reason, CollateralWarning.key == key)


def _open_items():
    return (select(Collateral, Loan.loan_no).join(Loan, Loan.id == Collateral.loan_id)
            .where(Loan.status.not_in(ACTIVE), Collateral.released_at.is_(None)))


def _expiry_rule(today, rules, column, reason):
    """Items whose `column` date is within N working days (per asset type); returns
    [(item, loan_no, horizon)] and the uncertain items [(item, year)]."""
    unknown_by_days, horizons = {}, {}
    for days in {p.expiry_warning_days for p in rules.values()}:
        unknown = set()
        horizons[days] = warning_horizon(today, days, unknown)
        unknown_by_days[days] = unknown
    per_type = {t: horizons[p.expiry_warning_days] for t, p in rules.items()}
    horizon = _by_type(Collateral.asset_type, per_type, per_type.get("other"))
    key = cast(Collateral.id, String) + literal(":") + cast(column, String)
    found = db.session.execute(_open_items().where(
        column.is_not(None), column <= horizon, _not_warned(reason, key))
        .order_by(Collateral.id)).all()
    uncertain = []
    for days, unknown in unknown_by_days.items():
        if not unknown:
            continue
        types = [t for t, p in rules.items() if p.expiry_warning_days == days]
        start = horizons[days]
        uncertain += db.session.execute(_open_items().where(
            column > start, column <= start + dt.timedelta(days=UNCERTAIN_DAYS),
            Collateral.asset_type.in_(types), extract("year", column).in_(sorted(unknown)))
            .order_by(Collateral.id)).all()
    return [(item, loan_no, per_type.get(item.asset_type, per_type.get("other")))
            for item, loan_no in found], uncertain


def _latest():
    """Each item's latest valuation (by date, then id): (collateral_id, loan_id, id, value,
    valued_on) as a subquery."""
    ranked = select(CollateralValuation.collateral_id, CollateralValuation.loan_id,
                    CollateralValuation.id, CollateralValuation.value,
                    CollateralValuation.valued_on,
                    func.row_number().over(
                        partition_by=CollateralValuation.collateral_id,
                        order_by=(CollateralValuation.valued_on.desc(),
                                  CollateralValuation.id.desc())).label("n")).subquery()
    return select(ranked.c.collateral_id, ranked.c.loan_id, ranked.c.id, ranked.c.value,
                  ranked.c.valued_on).where(ranked.c.n == 1).subquery("latest")


def _revaluation_rule(today, rules):
    """Items whose latest valuation is due for renewal: [(item, loan_no, valuation id, value,
    valued_on)]."""
    cutoff = last_working_day(today)
    per_type = {t: valued_by(cutoff, p.revaluation_months) for t, p in rules.items()
                if p.revaluation_months}
    if not per_type:
        return []
    latest = _latest()
    key = cast(Collateral.id, String) + literal(":") + cast(latest.c.id, String)
    never = [t for t, p in rules.items() if not p.revaluation_months]
    # A type revalued never (or unknown, when "other" is never revalued) has no limit.
    limit = _by_type(Collateral.asset_type, per_type, per_type.get("other"))
    where = [Loan.status.not_in(ACTIVE), Collateral.released_at.is_(None),
             latest.c.valued_on <= limit, _not_warned("revaluation_due", key)]
    if never:
        where.append(Collateral.asset_type.not_in(never))
    return db.session.execute(
        select(Collateral, Loan.loan_no, latest.c.id, latest.c.value, latest.c.valued_on)
        .join(Loan, Loan.id == Collateral.loan_id)
        .join(latest, latest.c.collateral_id == Collateral.id)
        .where(*where).order_by(Collateral.id)).all()


def _ltv_rule(rules):
    """Loans over their threshold: [(loan id, loan no, principal cents, value cents,
    threshold basis points, newest valuation id)]."""
    latest = _latest()
    bp = {t: int(p.ltv_threshold * 10000) for t, p in rules.items()}
    values = (select(Collateral.loan_id.label("loan_id"),
                     func.sum(cast(func.round(latest.c.value * 100), BigInteger))
                     .label("cents"),
                     func.min(_by_type(Collateral.asset_type, bp, bp.get("other")))
                     .label("bp"),
                     func.max(latest.c.id).label("newest"))
              .join(latest, latest.c.collateral_id == Collateral.id)
              .where(Collateral.released_at.is_(None))
              .group_by(Collateral.loan_id).subquery("valued"))
    balances = (select(Installment.loan_id.label("loan_id"),
                       cast(func.round(func.sum(Installment.principal_due
                                                - Installment.principal_paid) * 100),
                            BigInteger).label("cents"))
                .group_by(Installment.loan_id).subquery("balances"))
    key = literal("v") + cast(values.c.newest, String)
    return db.session.execute(
        select(Loan.id, Loan.loan_no, balances.c.cents, values.c.cents, values.c.bp,
               values.c.newest)
        .join(values, values.c.loan_id == Loan.id)
        .join(balances, balances.c.loan_id == Loan.id)
        .where(Loan.status.not_in(ACTIVE), values.c.cents > 0,
               balances.c.cents * 10000 > values.c.bp * values.c.cents,
               ~exists().where(CollateralWarning.loan_id == Loan.id,
                               CollateralWarning.reason == "ltv_high",
                               CollateralWarning.key == key))
        .order_by(Loan.id)).all()


# ---------------------------------------------------------------- raising

def _expiry_text(reason, item, day, today):
    """The signal's text, in Chinese as the staff's own signals are written."""
    gone = day < today
    if reason == "registration_expiring":
        return (f"抵押登记{'已于' if gone else '将于'}{day.isoformat()}到期：{item.description}，"
                f"登记证号{item.registration_no or '—'}，登记机关{item.registration_office or '—'}")
    return (f"抵押物保险{'已于' if gone else '将于'}{day.isoformat()}到期：{item.description}，"
            f"保单号{item.insurance_policy or '—'}，保险公司{item.insurer or '—'}")


def _warn(loan, item_id, reason, key, today, detail, description, actor):
    from monitoring.risk import _raise
    signal = _raise(loan, actor, CATEGORY, description, "collateral")
    warning = CollateralWarning(loan_id=loan.id, collateral_id=item_id, reason=reason, key=key,
                                raised_on=today, detail=detail, signal_id=signal.id)
    db.session.add(warning)
    record("collateral.warning_raised", actor=actor, case_id=loan.id, data={
        "reason": reason, "key": key, "collateral_id": item_id, "signal_id": signal.id,
        **detail})
    return warning


def _calendar_problem(item, year, reason, day):
    open_ = CaseProblem.query.filter_by(loan_id=item.loan_id, kind="calendar_year_missing",
                                        year=year, resolved_at=None).all()
    if any(p.detail.get("process") == "collateral_watch"
           and p.detail.get("collateral_id") == item.id for p in open_):
        return False
    detail = {"process": "collateral_watch", "collateral_id": item.id, "reason": reason,
              "expires_on": day.isoformat()}
    db.session.add(CaseProblem(loan_id=item.loan_id, kind="calendar_year_missing", year=year,
                               detail=detail, opened_at=clock.now()))
    record("case.problem_opened", case_id=item.loan_id,
           data={"kind": "calendar_year_missing", "year": year, **detail})
    return True


def _running_revaluations(collateral_ids):
    from guarantees.collateral import PROCESS, business_key
    if not collateral_ids:
        return set()
    keys = [business_key(i) for i in collateral_ids]
    return set(db.session.scalars(
        select(ProcessInstance.business_key).join(ProcessInstance.definition)
        .where(ProcessDefinition.process_key == PROCESS, ProcessInstance.status == "running",
               ProcessInstance.business_key.in_(keys))))


def watch(today, actor=None):
    """Raise today's collateral warnings; flushes (the daily run commits). Returns counts."""
    from guarantees.collateral import business_key, start_revaluation
    from workflows.definitions import latest_definition
    rules = policies()
    loans = {}

    def loan_of(loan_id):
        if loan_id not in loans:
            loans[loan_id] = db.session.get(Loan, loan_id)
        return loans[loan_id]

    counts = {"collateral_warnings": 0, "collateral_revaluations": 0,
              "collateral_calendar_problems": 0}
    for column, reason in ((Collateral.registration_expires_on, "registration_expiring"),
                           (Collateral.insurance_expires_on, "insurance_expiring")):
        found, uncertain = _expiry_rule(today, rules, column, reason)
        for item, _loan_no, horizon in found:
            day = getattr(item, column.key)
            policy = rules.get(item.asset_type, rules["other"])
            _warn(loan_of(item.loan_id), item.id, reason, f"{item.id}:{day.isoformat()}", today,
                  {"expires_on": day.isoformat(), "expiry_warning_days": policy.expiry_warning_days,
                   "horizon": horizon.isoformat()},
                  _expiry_text(reason, item, day, today), actor)
            counts["collateral_warnings"] += 1
        for item, _loan_no in uncertain:
            day = getattr(item, column.key)
            if _calendar_problem(item, day.year, reason, day):
                counts["collateral_calendar_problems"] += 1
    due = _revaluation_rule(today, rules)
    running = _running_revaluations([row[0].id for row in due])
    deployed = latest_definition("collateral_revaluation") is not None
    for item, _loan_no, valuation_id, value, valued_on in due:
        loan = loan_of(item.loan_id)
        months = rules.get(item.asset_type, rules["other"]).revaluation_months
        warning = _warn(loan, item.id, "revaluation_due", f"{item.id}:{valuation_id}", today,
                        {"valuation_id": valuation_id, "valued_on": valued_on.isoformat(),
                         "months": months},
                        f"抵押物需重新评估：{item.description}，上次评估日{valued_on.isoformat()}，"
                        f"评估值{money(value)}，评估周期{months}个月", actor)
        counts["collateral_warnings"] += 1
        if deployed and business_key(item.id) not in running:
            instance = start_revaluation(loan, item.id, None, reason="due", commit=False)
            warning.instance_id = instance.id
            counts["collateral_revaluations"] += 1
    for loan_id, _loan_no, principal, value, bp, newest in _ltv_rule(rules):
        principal, value = Decimal(principal) / 100, Decimal(value) / 100
        ratio = principal / value
        threshold = Decimal(bp) / 10000
        _warn(loan_of(loan_id), None, "ltv_high", f"v{newest}", today,
              {"ltv": str(ratio.quantize(Decimal("0.0001"))), "threshold": str(threshold),
               "principal": str(principal), "value": str(value)},
              f"抵押率{rate(ratio)}超过警戒线{rate(threshold)}：贷款本金余额{money(principal)}，"
              f"抵押物最新评估值合计{money(value)}", actor)
        counts["collateral_warnings"] += 1
    db.session.flush()
    return counts


def daily_hook(as_of, actor):
    return watch(as_of, actor)


def warnings_of(loan_id):
    return (CollateralWarning.query.filter_by(loan_id=loan_id)
            .order_by(CollateralWarning.raised_on.desc(), CollateralWarning.id.desc()).all())


def _register():
    from cases.staging import AFTER_DAILY_RUN
    if daily_hook not in AFTER_DAILY_RUN:
        AFTER_DAILY_RUN.append(daily_hook)


_register()
assert set(DEFAULT_POLICIES) == set(ASSET_TYPES)


# ---------------------------------------------------------------- policies (admin page)

POLICY_LIMITS = {"revaluation_months": (0, 120), "expiry_warning_days": (0, 250)}


def set_policy(actor, asset_type, revaluation_months, expiry_warning_days, ltv_percent):
    """Store one asset type's policy (the threshold entered as a percentage, stored as a
    fraction); audited with the old and new values; commits. Bad input: InvalidData listing
    every field's error, nothing changed."""
    from i18n import N_
    from workflows.errors import InvalidData, NotAllowed
    if not actor.has_role("admin"):
        raise NotAllowed("only an administrator may change the collateral policies",
                         code="wrong_role")
    errors = {}
    if asset_type not in ASSET_TYPES:
        errors["asset_type"] = [N_("Choose one of the asset types.")]
    values = {}
    for name, raw in (("revaluation_months", revaluation_months),
                      ("expiry_warning_days", expiry_warning_days)):
        low, high = POLICY_LIMITS[name]
        try:
            number = int(raw)
        except (TypeError, ValueError):
            number = None
        if number is None or not low <= number <= high or str(raw).strip() != str(number):
            errors[name] = [N_("A whole number from %(min)d to %(max)d.")]
        values[name] = number
    try:
        percent = Decimal(str(raw_percent := ltv_percent).strip())
        ok = percent.is_finite() and Decimal(1) <= percent <= Decimal(100) \
            and percent == percent.quantize(Decimal("0.01"))
    except (ArithmeticError, ValueError):
        ok = False
    if not ok or raw_percent is None:
        errors["ltv_threshold"] = [N_("A percentage from 1 to 100, at most two decimals.")]
    if errors:
        raise InvalidData("the policy has errors", field_errors=errors, code="invalid")
    threshold = (percent / 100).quantize(Decimal("0.0001"))
    old = policies()[asset_type]
    row = db.session.get(CollateralPolicy, asset_type) or CollateralPolicy(asset_type=asset_type)
    row.revaluation_months = values["revaluation_months"]
    row.expiry_warning_days = values["expiry_warning_days"]
    row.ltv_threshold, row.updated_at, row.updated_by_id = threshold, clock.now(), actor.id
    db.session.add(row)
    record("collateral.policy_changed", actor=actor, data={
        "asset_type": asset_type,
        "from": {"revaluation_months": old.revaluation_months,
                 "expiry_warning_days": old.expiry_warning_days,
                 "ltv_threshold": str(old.ltv_threshold)},
        "to": {"revaluation_months": row.revaluation_months,
               "expiry_warning_days": row.expiry_warning_days,
               "ltv_threshold": str(threshold)}})
    db.session.commit()
    return row
