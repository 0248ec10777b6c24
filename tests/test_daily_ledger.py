"""The daily run's ledger work done set-based (issue 12): `accrue_all` charges exactly what the
per-loan `accrue` charges, on random books; the merged invariant query finds every break the
checks find one by one.

The books are written straight into the ledger tables (no process runs) and never committed:
each example rolls back.
"""
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select

from accounts.operations import create_user
from cases.models import Loan, Product
from extensions import db
from ledger.models import Allocation, Charge, Installment, LegalRateCap, Repayment, WriteOff
from ledger.operations import check_and_report
from ledger.penalty import accrue, accrue_all
from ledger.verify import verify
from tests.conftest import PASSWORD

THROUGH = dt.date(2026, 6, 15)
SETTINGS = settings(max_examples=60, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
cents = st.integers(0, 5_000_000).map(lambda c: Decimal(c) / 100)


@pytest.fixture
def manager(app):
    user = create_user("am_daily", PASSWORD, ["account_manager"])
    db.session.commit()
    return user.id


installments = st.fixed_dictionaries({
    "due": st.integers(-120, 3),  # days from THROUGH
    "principal": cents, "interest": cents,
    "principal_paid_share": st.sampled_from([0, 0, 0, 0.5, 1]),
    "interest_paid_share": st.sampled_from([0, 0, 0.5, 1]),
    "penalty_due": cents,
    # paid beyond due (a broken ledger) leaves nothing outstanding after a charge: paid off
    "penalty_paid_share": st.sampled_from([0, 0.5, 1, 40]),
    # the last penalty accrual ended this many days before THROUGH (None: never accrued)
    "accrued_until": st.one_of(st.none(), st.integers(-2, 90)),
})
loans = st.fixed_dictionaries({
    "rate": st.sampled_from(["0.0435", "0.06", "0.123456", "0.18", "0.24"]),
    "product": st.sampled_from(["term", "installment", "bridge"]),
    "status": st.sampled_from(["servicing", "servicing", "servicing", "closing", "closed"]),
    "written_off": st.booleans(),
    "installments": st.lists(installments, min_size=1, max_size=3),
})
books = st.fixed_dictionaries({
    "loans": st.lists(loans, min_size=1, max_size=6),
    "markups": st.lists(st.sampled_from(["0", "0.5", "0.3333", "1.25"]), min_size=3,
                        max_size=3),
    "compound": st.lists(st.booleans(), min_size=3, max_size=3),
    # legal ceilings taking effect this many days before THROUGH, with their LPR
    "caps": st.lists(st.tuples(st.integers(0, 100), st.sampled_from(["0.03", "0.0345",
                                                                      "0.031234"])),
                     max_size=3, unique_by=lambda c: c[0]),
})


def _share(amount, share):
    return (amount * Decimal(str(share))).quantize(Decimal("0.01"))


def build(book, manager):
    """The book's rows, flushed (not committed)."""
    for code, markup, compound in zip(("term", "installment", "bridge"), book["markups"],
                                      book["compound"]):
        product = db.session.get(Product, code)
        product.penalty_markup, product.compound_interest = Decimal(markup), compound
    for days, lpr in book["caps"]:
        db.session.add(LegalRateCap(effective_on=THROUGH - dt.timedelta(days=days),
                                    lpr_one_year=Decimal(lpr), multiple=4))
    for n, spec in enumerate(book["loans"]):
        loan = Loan(loan_no=f"DL-{n}", borrower_name="王", principal=Decimal("1"),
                    interest_rate=Decimal(spec["rate"]), disbursed_on=dt.date(2026, 1, 1),
                    maturity_on=dt.date(2026, 12, 1), account_manager_id=manager,
                    status=spec["status"], product=spec["product"])
        db.session.add(loan)
        db.session.flush()
        if spec["written_off"]:
            db.session.add(WriteOff(loan_id=loan.id, written_off_on=THROUGH, principal=0,
                                    interest=0, penalty=0))
        for seq, item in enumerate(spec["installments"], start=1):
            due_on = THROUGH + dt.timedelta(days=item["due"])
            inst = Installment(
                loan_id=loan.id, seq=seq, due_on=due_on, principal_due=item["principal"],
                interest_due=item["interest"], penalty_due=item["penalty_due"],
                principal_paid=_share(item["principal"], item["principal_paid_share"]),
                interest_paid=_share(item["interest"], item["interest_paid_share"]),
                penalty_paid=_share(item["penalty_due"], item["penalty_paid_share"]))
            db.session.add(inst)
            db.session.flush()
            if item["accrued_until"] is not None:
                end = THROUGH - dt.timedelta(days=item["accrued_until"])
                db.session.add(Charge(loan_id=loan.id, installment_id=inst.id, kind="penalty",
                                      source="penalty", amount=Decimal("0.01"),
                                      period_start=end, period_end=end))
    db.session.flush()


def ledger_state():
    """The charges and the installments as the database has them now."""
    db.session.flush()
    charges = db.session.execute(
        select(Charge.loan_id, Charge.installment_id, Charge.kind, Charge.source, Charge.amount,
               Charge.base, Charge.rate, Charge.period_start, Charge.period_end, Charge.note,
               Charge.created_at).order_by(Charge.installment_id, Charge.period_end)).all()
    rows = db.session.execute(select(Installment.__table__).order_by(Installment.id)).all()
    return [tuple(c) for c in charges], [tuple(r) for r in rows]


@SETTINGS
@given(book=books)
def test_accrue_all_charges_what_accrue_charges_per_loan(app, manager, book):
    try:
        build(book, manager)
        outer = db.session.begin_nested()
        accrued = accrue_all(THROUGH)
        by_set = ledger_state()
        outer.rollback()
        db.session.expire_all()
        inner = db.session.begin_nested()
        charges = []
        for loan_id in db.session.scalars(select(Loan.id).order_by(Loan.id)):
            charges += accrue(THROUGH, loan_id)
        per_loan = ledger_state()
        inner.rollback()
        note(f"{len(charges)} charges per loan, {len(accrued)} set-based")
        assert by_set == per_loan
        assert sorted((a.loan_id, a.installment_id, a.amount) for a in accrued) == sorted(
            (c.loan_id, c.installment_id, c.amount) for c in charges)
    finally:
        db.session.rollback()


def test_accrue_all_twice_charges_nothing_more(app, manager):
    book = {"loans": [{"rate": "0.06", "product": "term", "status": "servicing",
                       "written_off": False, "installments": [
                           {"due": -10, "principal": Decimal("1000.00"),
                            "interest": Decimal("10.00"), "principal_paid_share": 0,
                            "interest_paid_share": 0, "penalty_due": Decimal("0"),
                            "penalty_paid_share": 0, "accrued_until": None}]}],
            "markups": ["0.5"] * 3, "compound": [False] * 3, "caps": []}
    build(book, manager)
    first = accrue_all(THROUGH)
    # 1000 × 0.09 × 10 / 365 = 2.4657… → 2.47, for the 10 days after the due date
    assert [a.amount for a in first] == [Decimal("2.47")]
    assert accrue_all(THROUGH) == []
    inst = db.session.scalars(select(Installment)).one()
    assert inst.penalty_due == Decimal("2.47") and inst.paid_off_on is None
    db.session.rollback()


def _broken_book(manager):
    """One loan with two installments, sound, then broken in every way verify knows."""
    book = {"loans": [{"rate": "0.06", "product": "term", "status": "servicing",
                       "written_off": False, "installments": [
                           {"due": -10, "principal": Decimal("100.00"),
                            "interest": Decimal("5.00"), "principal_paid_share": 0,
                            "interest_paid_share": 0, "penalty_due": Decimal("0"),
                            "penalty_paid_share": 0, "accrued_until": None}] * 2}],
            "markups": ["0.5"] * 3, "compound": [False] * 3, "caps": []}
    build(book, manager)
    loan = db.session.scalars(select(Loan)).one()
    first, second = db.session.scalars(select(Installment).order_by(Installment.seq)).all()
    for inst in (first, second):
        for kind in ("principal", "interest"):
            db.session.add(Charge(loan_id=loan.id, installment_id=inst.id, kind=kind,
                                  source="schedule", amount=getattr(inst, f"{kind}_due")))
    loan.principal = Decimal("200.00")
    db.session.flush()
    return loan, first, second


def test_verify_finds_every_break_of_every_installment_check(app, manager):
    loan, first, second = _broken_book(manager)
    assert verify() == []
    first.interest_due += Decimal("1")  # due ≠ charges
    first.principal_paid = Decimal("-1.00")  # paid ≠ allocations, and paid below 0
    second.penalty_paid = Decimal("3.00")  # paid ≠ allocations, and paid above due
    second.paid_off_on = THROUGH  # flagged paid off while owing
    for days in (2, 1):  # two accruals covering the day before THROUGH
        db.session.add(Charge(loan_id=loan.id, installment_id=second.id, kind="penalty",
                              source="penalty", amount=Decimal("0.10"),
                              period_start=THROUGH - dt.timedelta(days=days),
                              period_end=THROUGH - dt.timedelta(days=days - 1)))
    repayment = Repayment(loan_id=loan.id, external_ref="R-1", amount=Decimal("7.00"),
                          paid_at=dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc),
                          principal=Decimal("7.00"))
    db.session.add(repayment)
    db.session.flush()
    db.session.add(Allocation(loan_id=loan.id, repayment_id=repayment.id,
                              installment_id=first.id, part="principal",
                              amount=Decimal("6.00")))
    db.session.flush()
    found = {(b.code, b.detail) for b in verify()}
    expected_codes = {"due_matches_charges", "paid_matches_allocations", "paid_within_due",
                      "paid_off_flag", "penalty_periods", "repayment_allocated"}
    assert {code for code, _detail in found} == expected_codes
    details = {detail for _code, detail in found}
    assert any(d.startswith("installment 1: interest due 6.00 ≠ charges 5") for d in details)
    assert any(d.startswith("installment 1: principal paid -1.00 ≠ allocations 6")
               for d in details)
    assert any(d.startswith("installment 1: principal paid -1.00 outside 0…100")
               for d in details)
    assert any(d.startswith("installment 2: penalty paid 3.00 ≠ allocations") for d in details)
    assert any(d.startswith("installment 2: penalty paid 3.00 outside 0…0.00") for d in details)
    assert any(d.startswith("installment 2: outstanding") for d in details)
    assert any(d.startswith("installment 2: penalty due 0.00 ≠ charges 0.2") for d in details)
    # verify of other loans only sees none of it; of this loan, all of it
    assert verify([loan.id + 1]) == []
    assert {(b.code, b.detail) for b in verify([loan.id])} == found
    breaks = check_and_report()
    assert len(breaks) == len(found)
    db.session.rollback()


def test_verify_finds_the_loan_breaks(app, manager):
    loan, first, _second = _broken_book(manager)
    other = Loan(loan_no="DL-other", borrower_name="李", principal=Decimal("0"),
                 interest_rate=Decimal("0.06"), disbursed_on=dt.date(2026, 1, 1),
                 maturity_on=dt.date(2026, 12, 1), account_manager_id=manager, status="closed")
    db.session.add(other)
    loan.status, loan.principal = "closing", Decimal("150.00")
    db.session.flush()
    found = {(b.loan_no, b.code, b.detail) for b in verify()}
    # a closed loan with nothing outstanding (here: no installments) is sound
    assert {(no, code) for no, code, _detail in found} == {
        ("DL-0", "principal_scheduled"), ("DL-0", "closed_settled")}
    assert any(d.startswith("loan: principal 150.00 ≠ principal charged 200") for *_x, d in found)
    assert any(d.startswith("loan: status closing with 210") for *_x, d in found)
    db.session.rollback()


# Penalty accruals of one installment: (first day, days) each, at most one ending on a day.
PERIODS = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 6)), max_size=8,
                   unique_by=lambda p: p[0] + p[1])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=PERIODS, second=PERIODS)
def test_overlapping_penalty_accruals_are_found_whatever_their_order(app, manager, first,
                                                                   second):
    """verify reports an installment's penalty periods exactly when two of its accruals share a
    day, and each pair it names does; the other installment's accruals never pair with these."""
    try:
        loan, one, two = _broken_book(manager)
        start = THROUGH - dt.timedelta(days=60)
        added = {}
        for installment, periods in ((one, first), (two, second)):
            for begin, days in periods:
                charge = Charge(loan_id=loan.id, installment_id=installment.id, kind="penalty",
                                source="penalty", amount=Decimal("0.01"),
                                period_start=start + dt.timedelta(days=begin),
                                period_end=start + dt.timedelta(days=begin + days))
                db.session.add(charge)
                installment.penalty_due += charge.amount
                db.session.flush()
                added[charge.id] = (installment.seq, charge.period_start, charge.period_end)
        found = [b.detail for b in verify() if b.code == "penalty_periods"]
        for seq, periods in ((1, first), (2, second)):
            overlapping = any(a[0] <= b[0] + b[1] and b[0] <= a[0] + a[1]
                              for i, a in enumerate(periods) for b in periods[i + 1:])
            named = [d for d in found if d.startswith(f"installment {seq}:")]
            assert bool(named) == overlapping, (seq, periods, found)
        for detail in found:
            a, b = (int(n) for n in detail.split("accruals ")[1].split(" overlap")[0]
                    .split(" and "))
            assert added[a][0] == added[b][0]  # the same installment
            assert added[a][1] <= added[b][2] and added[b][1] <= added[a][2]  # sharing a day
    finally:
        db.session.rollback()
