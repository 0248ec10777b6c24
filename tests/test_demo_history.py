"""The demo's history (demo_history.py): loans written by the project's own operations as the
clock moves through past months. A small history here (the demo loads 300 loans over twelve
months): the ledger and the audit chain verify, every bucket holds loans, the collectors
worked, promises were kept and broken, and the same seed gives the same book."""
import datetime as dt
import random
import time
from decimal import Decimal

from sqlalchemy import func, select

from accounts.models import Team, User
from audit.verification import verify as verify_audit
from cases.models import ContactLogEntry, LateFollowUp, Loan, PromiseToPay
from demo import DEMO_PASSWORD
from demo_history import SEED, bucket_counts, history_start, load_history, plan
from demo_people import new_users, set_up_teams
from extensions import db
from ledger.models import Repayment
from ledger.verify import verify as verify_ledger
from tests.conftest import empty_database
from workflows import clock
from workflows.models import HumanTask

LOANS, MONTHS = 28, 5


def _people():
    from accounts.operations import create_user
    from accounts.roles import ROLES
    for role in ROLES:
        create_user(role, DEMO_PASSWORD, [role], display_name=f"{role}人")
    for name, roles in {"account_manager2": ["account_manager"],
                        "post_loan_officer2": ["post_loan_officer"],
                        "dual": ["account_manager", "post_loan_officer"]}.items():
        create_user(name, DEMO_PASSWORD, roles, display_name=f"{name}人")
    new_users(DEMO_PASSWORD)
    set_up_teams(User.query.filter_by(username="admin").one())


def _load():
    _people()
    started = time.perf_counter()
    kinds = load_history(LOANS, MONTHS)
    return kinds, time.perf_counter() - started


def _book():
    """(loan number, outstanding, DPD) of every loan, by number."""
    return [(loan.loan_no, loan.outstanding, loan.dpd)
            for loan in Loan.query.order_by(Loan.loan_no)]


def test_the_plan_is_seeded_and_spreads_the_loans_over_the_months(app):
    today = dt.date(2026, 12, 1)
    first, again = (plan(300, today, random.Random(SEED)) for _ in range(2))
    assert [s.payload for s in first] == [s.payload for s in again]
    assert [s.payments for s in first] == [s.payments for s in again]
    numbers = [s.payload["loan_no"] for s in first]
    assert len(set(numbers)) == 300 and numbers[0] == "DH2025-1001" and \
        numbers[-1] == "DH2026-1300"
    months = {s.disbursed.replace(day=1) for s in first}
    assert min(months) == history_start(today) == dt.date(2025, 12, 1)
    assert len(months) == 12 and max(s.disbursed for s in first) < today
    assert len({s.payload["borrower_name"] for s in first}) == 300
    kinds = [s.kind for s in first]
    assert kinds.count("default") == 30 and 180 < kinds.count("good") < 260
    # no payment is dated today or later, and none before its loan was disbursed
    assert all(s.disbursed < day < today for s in first for day, _seq, _f in s.payments)


def test_the_history_is_written_by_the_operations_verifies_and_is_deterministic(app, deployed):
    kinds, seconds = _load()
    assert sum(kinds.values()) == LOANS and seconds < 240
    # Ledger and audit chain hold after a few thousand operations.
    assert verify_ledger() == []
    report = verify_audit()
    assert report.ok, report
    buckets = bucket_counts()
    assert all(buckets.get(b, 0) >= 1 for b in ("M1", "M2", "M3", "M3+")), buckets
    assert sum(buckets.values()) == LOANS
    # The collectors of both teams called, and their calls are in the contact log.
    collectors = {u.id: u.username for u in User.query.filter(
        User.username.in_(["collector", "collector2"]))}
    done = dict(db.session.execute(
        select(HumanTask.completed_by_id, func.count()).where(
            HumanTask.bpmn_id == "phone_collection", HumanTask.state == "completed")
        .group_by(HumanTask.completed_by_id)).all())
    assert set(done) == set(collectors) and min(done.values()) >= 3
    calls = ContactLogEntry.query.filter_by(kind="call").count()
    assert calls == sum(done.values())
    statuses = dict(db.session.execute(select(PromiseToPay.status, func.count())
                                       .group_by(PromiseToPay.status)).all())
    assert statuses.get("kept", 0) >= 1 and statuses.get("broken", 0) >= 1, statuses
    # The leaders decided on their teams' late follow-ups (waived, now and then fined).
    waived = db.session.scalar(select(func.count()).select_from(LateFollowUp)
                               .where(LateFollowUp.waived_by_id.is_not(None)))
    assert waived >= 1
    # Repayments: never after the clock's now, never before the loan's disbursement.
    first_paid, last_paid = db.session.execute(
        select(func.min(Repayment.paid_at), func.max(Repayment.paid_at))).one()
    assert last_paid.replace(tzinfo=dt.timezone.utc) < clock.now()
    late = db.session.scalar(select(func.count()).select_from(Repayment).join(Loan).where(
        func.date(Repayment.paid_at) < Loan.disbursed_on))
    assert late == 0 and first_paid is not None
    # Teams: two, each with its leader, account manager, collector, post-loan officer.
    teams = {t.name: {u.username for u in User.query.filter_by(team_id=t.id)}
             for t in Team.query}
    assert teams["杭州一部"] >= {"dept_head", "account_manager", "collector",
                             "post_loan_officer"}
    assert teams["杭州二部"] >= {"dept_head2", "account_manager2", "collector2",
                             "post_loan_officer2"}
    # Loading again does nothing.
    assert load_history(LOANS, MONTHS) == {}
    assert Loan.query.count() == LOANS
    # A second load into a fresh database gives the same book.
    book = _book()
    paid = db.session.scalar(select(func.sum(Repayment.amount)))
    assert len(book) == LOANS and paid > Decimal(0)
    empty_database(app)  # a second load starts from a fresh database
    from workflows.definitions import deploy_paths
    from tests.conftest import ROOT
    deploy_paths(sorted((ROOT / "bpmn").glob("*.bpmn")), ROOT / "bpmn" / "forms")
    _load()
    assert _book() == book
    assert db.session.scalar(select(func.sum(Repayment.amount))) == paid
