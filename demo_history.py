"""A year of demo history (issue 14): a few hundred loans disbursed over the twelve months
before the current one, written by the project's own operations while the clock moves forward
day by day — the bulk intake (add_loans), the handover, repayments on (or after, or instead
of) their due dates, the daily run, the timers, and the staff completing their tasks: the back
office's reminders, the account managers' inspections, the collectors' calls and notices, the
leaders' approvals. Nothing is written behind the operations' back, so the month-end
snapshots, scores and scorecards the daily run's hooks compute see a believable year.

Everything is seeded: two loads into empty databases give the same loans and balances."""
import contextlib
import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from accounts.models import User
from calendars.workdays import is_working_day
from cases.intake import parse_intake
from cases.models import Loan
from cases.operations import add_loans
from cases.staging import run_daily
from demo_people import TEAMS, borrower_party
from extensions import db
from ledger.penalty import accrue
from ledger.repayments import post_repayment
from workflows import clock
from workflows.clock import BEIJING
from workflows.models import HumanTask
from workflows.tasks import claim_task, complete_task
from workflows.timers import fire_due_timers

CENT = Decimal("0.01")
SEED = 20261201
# Behaviour of the borrowers, in shares of the loans (the rest pay on their due dates).
LATE, PARTIAL, CURED, DEFAULT = 0.10, 0.04, 0.05, 0.10
# Default targets: where the defaulted loans' DPD lands at the end, round robin, so every
# bucket of the dashboard holds loans.
# Disbursements grow over the year: a day at the end sees (1 + GROWTH) / GROWTH times the
# loans of a day at the start.
GROWTH = 0.3
DEFAULT_DPD = ((8, 28), (35, 58), (65, 88), (95, 200))
HANDOVER = {"documents": ["contract", "iou", "guarantee", "due_diligence", "approval_minutes"],
            "purpose": "补充流动资金", "repayment_source": "经营收入",
            "risk_points": "行业回款周期较长"}


@dataclass
class Story:
    """One history loan: its intake payload and what its borrower does."""
    payload: dict
    disbursed: dt.date
    kind: str                      # good, late, partial, cured, default
    team: str
    payments: list = field(default_factory=list)   # (day, up to seq, fraction)
    stop_seq: int | None = None    # a defaulter pays nothing from this installment on
    promises: dict = field(default_factory=dict)   # day -> promised day (made on a call)
    loan_id: int | None = None


def _add_months(day, months):
    month = day.month - 1 + months
    return dt.date(day.year + month // 12, month % 12 + 1, min(day.day, 28))


def _money(value):
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _schedule(product, principal, rate, disbursed):
    """Monthly equal principal with interest on the balance (installment), or interest every
    quarter and the principal at maturity (term); twelve months either way."""
    rows, balance, previous = [], principal, disbursed
    months = range(1, 13) if product == "installment" else (3, 6, 9, 12)
    share = _money(principal / 12)
    for n, month in enumerate(months, start=1):
        due = _add_months(disbursed, month)
        interest = _money(balance * rate * (due - previous).days / 365)
        if product == "installment":
            part = share if n < 12 else balance
        else:
            part = principal if n == len(months) else Decimal("0.00")
        rows.append({"due_on": due.isoformat(), "principal": str(part),
                     "interest": str(interest)})
        balance, previous = balance - part, due
    return rows


def plan(loans, today, rng, months=12):
    """The stories of `loans` loans disbursed on working days of the `months` months before
    today's month, each with its borrower's behaviour."""
    start = history_start(today, months)
    days = [start + dt.timedelta(days=n) for n in range((today - start).days - 25)]
    days = [d for d in days if is_working_day(d)]
    stories, names = [], set()
    for n in range(loans):
        disbursed = days[int(_growing(n / loans) * len(days))]
        party = borrower_party(rng, names, n)
        company = party["borrower"]["kind"] == "company"
        product = "term" if rng.random() < 0.65 else "installment"
        unit = 100000 if company else 10000
        principal = Decimal(unit * rng.choice((3, 5, 8, 10, 15, 20, 30, 50)))
        rate = Decimal(rng.choice(("0.0365", "0.0385", "0.0420", "0.0435", "0.0480", "0.0550")))
        team = "one" if n % 5 < 3 else "two"
        schedule = _schedule(product, principal, rate, disbursed)
        payload = {"loan_no": f"DH{disbursed.year}-{1001 + n}", "product": product,
                   "principal": str(principal), "interest_rate": str(rate),
                   "disbursed_on": disbursed.isoformat(), "maturity_on": schedule[-1]["due_on"],
                   "account_manager": TEAMS[team]["account_manager"],
                   "purpose": rng.choice(("采购原材料", "补充流动资金", "支付货款", "设备购置",
                                          "门店装修", "农资采购")),
                   "repayment_account": f"6228 4803 {1001 + n:04d} {rng.randrange(10000):04d}",
                   "schedule": schedule, **party}
        stories.append(Story(payload, disbursed, "good", team))
    _behaviours(stories, today, rng)
    return stories


def _missed(story, today, low, high):
    return [seq for seq, due in _dues(story) if low <= (today - due).days <= high]


def _monthly(story):
    """Make a term loan of the plan an installment loan (its schedule with it)."""
    payload = story.payload
    payload["product"] = "installment"
    payload["schedule"] = _schedule("installment", Decimal(payload["principal"]),
                                    Decimal(payload["interest_rate"]), story.disbursed)
    payload["maturity_on"] = payload["schedule"][-1]["due_on"]


def _growing(u, a=GROWTH):
    """The share of the history's days gone when a share `u` of its loans is disbursed, for
    a book that grows: disbursements per day rise linearly (density a + t over t in [0, 1]).
    Fewer old loans also mean fewer installments and inspections to replay."""
    return -a + (a * a + 2 * u * (a + 0.5)) ** 0.5


def _dues(story):
    return [(seq, dt.date.fromisoformat(item["due_on"]))
            for seq, item in enumerate(story.payload["schedule"], start=1)]


def _behaviours(stories, today, rng):
    """Give each story its borrower's behaviour and its payments (only those before today).
    A tenth of the loans (at least one per bucket) default, each on an installment whose
    DPD today falls in the next bucket of DEFAULT_DPD, so every bucket holds loans."""
    order = list(range(len(stories)))
    rng.shuffle(order)
    wanted = max(len(DEFAULT_DPD), round(DEFAULT * len(stories)))
    for n in range(wanted):
        low, high = DEFAULT_DPD[n % len(DEFAULT_DPD)]
        # A term loan has a due date a quarter only: in a small history no loan may have
        # one in the bucket's days; then the earliest term loan is made monthly.
        earliest = sorted(range(len(stories)), key=lambda k: stories[k].disbursed)
        for k, convert in [(k, False) for k in order] + [(k, True) for k in earliest]:
            story = stories[k]
            if story.kind != "good":
                continue
            if convert and story.payload["product"] == "term":
                _monthly(story)
            missed = _missed(story, today, low, high)
            if missed:
                story.kind, story.stop_seq = "default", missed[0]
                break
    shares = (("late", LATE), ("partial", PARTIAL), ("cured", CURED))
    for k in order:
        story, draw = stories[k], rng.random()
        dues = [(seq, due) for seq, due in _dues(story) if due < today]
        if story.kind == "good":
            for kind, share in shares:
                if draw < share:
                    story.kind = kind
                    break
                draw -= share
        _payments(story, dues, today, rng)


def _payments(story, dues, today, rng):
    cured_seq = rng.choice(dues)[0] if story.kind == "cured" and dues else None
    covered = 0
    for seq, due in dues:
        if seq <= covered:
            continue
        if story.stop_seq is not None and seq >= story.stop_seq:
            if rng.random() < 0.4:  # a part paid after a promise, the rest never
                story.payments.append((due + dt.timedelta(days=rng.randint(12, 25)), seq,
                                       Decimal("0.3")))
            break
        late = story.kind == "late" and rng.random() < 0.5
        if seq == cured_seq:
            day = due + dt.timedelta(days=rng.randint(12, 70))
            # everything due by then is cleared at once
            upto = max(s for s, d in dues if d <= day)
            story.payments.append((day, upto, Decimal(1)))
            covered = upto
        elif story.kind == "partial" and rng.random() < 0.5:
            story.payments.append((due, seq, Decimal("0.5")))
            story.payments.append((due + dt.timedelta(days=rng.randint(4, 15)), seq, Decimal(1)))
        else:
            lag = rng.randint(2, 20) if late else 0
            story.payments.append((due + dt.timedelta(days=lag), seq, Decimal(1)))
    story.payments = [p for p in story.payments if p[0] < today]


# ---------------------------------------------------------------- the year, day by day

def at(day, hour, minute=0, end=None):
    """Move the clock to `hour:minute` Beijing time on `day` (only ever forward); False, and
    the clock left alone, when that is after `end`."""
    moment = dt.datetime.combine(day, dt.time(hour, minute), BEIJING).astimezone(dt.timezone.utc)
    if end is not None and moment > end:
        return False
    clock.set_now(moment)
    return True


def history_start(today, months=12):
    return _add_months(today.replace(day=1), -months)


def load_history(loans=200, months=12, seed=SEED, admin=None):
    """Write the history of `loans` loans disbursed over the `months` months before this one,
    up to now (today's steps until now); the clock is left as it was. Returns {kind of borrower: loans}. Does
    nothing when the first history loan exists."""
    end = clock.now()
    today = end.astimezone(BEIJING).date()
    rng = random.Random(seed)
    stories = plan(loans, today, rng, months)
    if not stories or Loan.query.filter_by(loan_no=stories[0].payload["loan_no"]).first():
        return {}
    previous = clock._frozen
    try:
        World(stories, rng, admin).run(history_start(today, months), today, end)
    finally:
        clock.set_now(previous)
    kinds = {}
    for story in stories:
        kinds[story.kind] = kinds.get(story.kind, 0) + 1
    return kinds


class World:
    """The staff and borrowers of the history, working through the days."""

    def __init__(self, stories, rng, admin):
        self.stories, self.rng = stories, rng
        self.users = {u.username: u for u in User.query}
        self.admin = admin or self.users["admin"]
        self.by_day, self.pay_on = {}, {}
        for story in stories:
            self.by_day.setdefault(story.disbursed, []).append(story)
            for day, upto, fraction in story.payments:
                self.pay_on.setdefault(day, []).append((story, upto, fraction))
        self.by_loan = {}

    def staff(self, story, role):
        return self.users[TEAMS[story.team][role]]

    def run(self, start, today, end):
        """Every day from `start` to `today`, each step at its hour, until `end` (now)."""
        from demo_work import Work
        work = Work(self)
        day = start
        while day <= today:
            working = is_working_day(day)
            # The staging on working days (and each month's first day, whose run takes the
            # month-end snapshots): a run costs the whole book's ledger check, and a year of
            # every day's runs would cost a third more.
            steps = [((6, 0), working or day.day == 1, lambda: run_daily(day)),
                     ((9, 1), True, fire_due_timers),
                     ((9, 10), day in self.by_day, lambda: self.register(self.by_day[day])),
                     ((9, 45), working or day.weekday() == 5, lambda: work.calls(day)),
                     ((10, 0), True, lambda: self.pay(day)),
                     ((10, 30), working, lambda: work.reminders(day)),
                     ((11, 0), working, lambda: (work.leaders(day), work.notices(day))),
                     ((12, 31), True, fire_due_timers),
                     ((14, 0), working, lambda: work.handovers(day)),
                     ((14, 31), True, fire_due_timers),
                     ((15, 0), working, lambda: work.inspections(day)),
                     ((16, 1), True, fire_due_timers),
                     ((16, 30), working, lambda: work.tracking(day)),
                     ((17, 0), day.weekday() == 4, lambda: work.late_followups(day)),
                     ((18, 1), True, fire_due_timers),
                     ((19, 1), True, fire_due_timers)]
            for (hour, minute), wanted, step in steps:
                if not at(day, hour, minute, end):
                    return
                if wanted:
                    step()
            day += dt.timedelta(days=1)

    def register(self, stories):
        """The day's disbursed loans through the bulk intake, one transaction."""
        managers = {}
        intakes = [parse_intake(story.payload, managers) for story in stories]
        ids = add_loans(intakes, self.admin)
        db.session.commit()
        for story, loan_id in zip(stories, ids):
            story.loan_id = loan_id
            self.by_loan[loan_id] = story

    def pay(self, day):
        """The day's repayments from core banking: a fraction of what the installments up to
        `upto` still owe (the penalty to today included)."""
        for story, upto, fraction in self.pay_on.get(day, ()):
            loan = db.session.get(Loan, story.loan_id)
            if loan.status in ("closing", "closed"):
                continue
            accrue(day, loan.id)
            owed = sum((i.outstanding for i in loan.installments if i.seq <= upto), Decimal(0))
            amount = _money(owed * fraction)
            if amount <= 0:
                db.session.rollback()
                continue
            post_repayment(loan, {"amount": str(amount), "paid_at": clock.now().isoformat(),
                                  "external_ref": f"CB{day:%Y%m%d}-{story.payload['loan_no']}"
                                                  f"-{upto}-{fraction}"}, self.admin)

    def next_payment(self, story, day):
        """The borrower's next repayment day after `day`, or None."""
        later = [p for p, _upto, _f in story.payments if p > day]
        return min(later) if later else None


def ready(bpmn_ids):
    return db.session.scalars(select(HumanTask).where(
        HumanTask.state == "ready", HumanTask.bpmn_id.in_(bpmn_ids))
        .order_by(HumanTask.id)).all()


def do(task, user, data):
    if task.claimed_by_id is None:
        claim_task(task.id, user)
    complete_task(task.id, user, data=data)


def bucket_counts():
    """Open loans per DPD bucket (M1..M3+), for the report and the tests."""
    from portfolio.labels import bucket_of
    counts = {}
    for dpd, in db.session.execute(select(Loan.dpd).where(Loan.status != "closed",
                                                         Loan.loan_no.like("DH%-1%"))):
        bucket = bucket_of(dpd or 0)
        counts[bucket] = counts.get(bucket, 0) + 1
    return counts


@contextlib.contextmanager
def before_history():
    """The clock at 09:00 Beijing the day before the history starts (then back)."""
    today = clock.now().astimezone(BEIJING).date()
    previous = clock._frozen
    at(history_start(today) - dt.timedelta(days=1), 9)
    try:
        yield
    finally:
        clock.set_now(previous)
