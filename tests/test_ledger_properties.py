"""Ledger properties (issue 9): random schedules, then random steps — repayments (some too large,
some repeating a reference), days passing with the daily run (penalty interest), an extension
approved through its process, reversals — with every invariant checked after each step.

Each example starts from emptied loan tables (users, products and process definitions stay),
so verify() and the sums see only the example's loan.
"""
import datetime as dt
import itertools
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select

from accounts.operations import create_user
from extension_requests.operations import latest_extended_maturity, request_extension
from cases.models import DailyRun, Loan, LoanExtension
from cases.operations import register_loan
from cases.staging import run_daily
from extensions import db
from ledger.models import PARTS, Allocation, Charge, Installment, LegalRateCap, Repayment
from ledger.penalty import cap_on, legal_caps
from ledger.repayments import post_repayment
from ledger.verify import verify
from tests.conftest import PASSWORD, T0, empty_tables
from tests.test_extension import approve, review
from tests.test_servicing import hand_over, three_installment_payload
from workflows import clock
from workflows.errors import Conflict, InvalidData

try:  # being written alongside; reversal steps run once it is there
    from ledger.reversals import decide_reversal, request_reversal
except ImportError:  # pragma: no cover
    request_reversal = decide_reversal = None

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
LAST_DAY = dt.date(2026, 12, 31)  # the statutory calendar knows 2026, not 2027
KEEP = {"products", "users", "user_roles", "api_tokens", "process_definitions",
        "form_definitions", "process_drafts", "calendar_days",
        "teams", "classification_rules", "classification_policy"}  # users refer to teams
STEPS = ["pay", "pay", "pay", "advance", "advance", "advance", "extend", "reverse", "reverse",
         "duplicate", "too_much"]
SETTINGS = settings(max_examples=40, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
loan_numbers = itertools.count(1)


def money(cents):
    return (Decimal(cents) / 100).quantize(CENT)


@st.composite
def loans(draw):
    """A schedule of 1–6 installments within 2026, amounts in cents, a rate, maybe a ceiling."""
    n = draw(st.integers(1, 6), label="installments")
    due, items = T0.date(), []
    for _ in range(n):
        due += dt.timedelta(days=draw(st.integers(3, 45)))
        principal = draw(st.integers(0, 30_000_000))
        interest = draw(st.integers(0 if principal else 1, 300_000))
        items.append({"due_on": due.isoformat(), "principal": str(money(principal)),
                      "interest": str(money(interest))})
    if not any(Decimal(i["principal"]) for i in items):
        items[-1]["principal"] = str(money(draw(st.integers(1, 30_000_000))))
    rate = draw(st.sampled_from(["0.0435", "0.06", "0.12", "0.18", "0.24"]), label="rate")
    cap = draw(st.sampled_from([None, "0.03", "0.0345"]), label="one-year LPR (×4 ceiling)")
    return {"schedule": items, "rate": rate, "cap": cap}


def wipe():
    """Empty what the example wrote, as conftest's empty_database does, keeping the staff,
    products and deployed processes."""
    db.session.rollback()
    tables = [t.name for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP]
    empty_tables(tables, restart_ids=False)  # ids go on, as they did here
    db.session.commit()
    clock.set_now(T0)


def open_loan(spec, staff):
    items = spec["schedule"]
    loan_no = f"P-{next(loan_numbers)}"
    principal = sum(Decimal(i["principal"]) for i in items)
    if spec["cap"]:
        db.session.add(LegalRateCap(effective_on=T0.date(), lpr_one_year=Decimal(spec["cap"]),
                                    multiple=4))
        db.session.commit()
    loan = register_loan(three_installment_payload(
        loan_no, principal=str(principal), interest_rate=spec["rate"], schedule=items,
        maturity_on=items[-1]["due_on"]), staff["admin"])
    return hand_over(loan, staff).id


# ------------------------------------------------------------------------------ the figures

def snapshot(loan_id):
    """Everything read afresh: the loan, its installments, charges, allocations, repayments."""
    db.session.rollback()
    db.session.expire_all()
    loan = db.session.get(Loan, loan_id)
    installments = Installment.query.filter_by(loan_id=loan_id).order_by(Installment.seq).all()
    charges = db.session.scalars(select(Charge).where(Charge.loan_id == loan_id)).all()
    allocations = db.session.scalars(
        select(Allocation).where(Allocation.loan_id == loan_id)).all()
    repayments = Repayment.query.filter_by(loan_id=loan_id).order_by(Repayment.id).all()
    return loan, installments, charges, allocations, repayments


def outstanding(loan_id):
    return snapshot(loan_id)[0].outstanding


def charges_total(loan_id):
    return sum((c.amount for c in snapshot(loan_id)[2]), start=ZERO)


def check_invariants(loan_id):
    loan, installments, charges, allocations, repayments = snapshot(loan_id)
    assert verify() == []
    for inst in installments:
        for part in PARTS:
            due, paid = getattr(inst, f"{part}_due"), getattr(inst, f"{part}_paid")
            assert due - paid >= 0, f"installment {inst.seq}: {part} due {due} < paid {paid}"
            assert paid >= 0, f"installment {inst.seq}: {part} paid {paid} is negative"
    for rep in repayments:
        own = [a.amount for a in allocations if a.repayment_id == rep.id]
        original = sum((a.amount for a in allocations
                        if a.repayment_id == rep.id and a.reversal_id is None), start=ZERO)
        assert original == rep.amount, f"{rep.external_ref}: allocated {original} ≠ {rep.amount}"
        if rep.reversed_at is None:
            assert sum(own, start=ZERO) == rep.amount, rep.external_ref
        else:
            assert sum(own, start=ZERO) == 0, f"{rep.external_ref}: reversed, rows {own}"
    charged = sum((c.amount for c in charges), start=ZERO)
    paid = sum((a.amount for a in allocations), start=ZERO)
    assert loan.outstanding == charged - paid, (loan.outstanding, charged, paid)
    assert loan.outstanding >= 0
    event(f"penalty accrued: {any(c.source == 'penalty' for c in charges)}")
    if loan.status in ("closing", "closed"):
        assert loan.outstanding == 0
    today = clock.today()
    if db.session.get(DailyRun, today) is not None:
        # The daily run already ran today: a re-run accrues nothing (an approved reversal
        # accrues the reopened installments' penalty itself).
        before = len(snapshot(loan_id)[2])
        run_daily(today)
        assert len(snapshot(loan_id)[2]) == before, "a second daily run charged again"
        assert verify() == []


# -------------------------------------------------------------------------------- the steps

def pay(data, loan_id, staff, refs):
    loan = snapshot(loan_id)[0]
    owed = int(loan.outstanding * 100)
    ref = f"R{len(refs) + 1}"
    if loan.status in ("closing", "closed") or owed <= 0:
        with pytest.raises(Conflict):
            post_repayment(loan, {"amount": "1.00", "paid_at": clock.now().isoformat(),
                                  "external_ref": ref}, staff["admin"])
        return "refused, loan in closure"
    payoff = data.draw(st.integers(0, 5), label="pay off (5)") == 5
    cents = owed if payoff else data.draw(st.integers(1, owed), label="pay (cents)")
    # The value date: today, or a few days back (penalty runs until the money arrived).
    back = data.draw(st.integers(0, min(3, (clock.today() - T0.date()).days)),
                     label="value date, days back")
    before, charged = loan.outstanding, charges_total(loan_id)
    repayment = post_repayment(loan, {"amount": str(money(cents)),
                                      "paid_at": (clock.now() - dt.timedelta(days=back))
                                      .isoformat(),
                                      "external_ref": ref}, staff["admin"])
    refs.append(ref)
    accrued = charges_total(loan_id) - charged  # penalty up to today, if not accrued yet
    assert repayment.amount == money(cents)
    assert outstanding(loan_id) == before + accrued - money(cents)
    return "paid off" if cents == owed else "posted"


def too_much(data, loan_id, staff, refs):
    loan = snapshot(loan_id)[0]
    before, rows = loan.outstanding, len(snapshot(loan_id)[4])
    extra = data.draw(st.integers(1, 10_000_000), label="above the balance (cents)")
    amount, ref = before + money(extra), f"R{len(refs) + 1}"
    try:
        post_repayment(loan, {"amount": str(amount), "paid_at": clock.now().isoformat(),
                              "external_ref": ref}, staff["admin"])
    except InvalidData as exc:
        assert "amount" in exc.field_errors
    except Conflict:
        assert loan.status in ("closing", "closed")
    else:
        # Only penalty accrued inside the posting (today not yet run) can make room for it.
        refs.append(ref)
        assert outstanding(loan_id) >= 0
        return "accepted after accruing penalty"
    assert outstanding(loan_id) == before and len(snapshot(loan_id)[4]) == rows
    return "refused"


def duplicate(data, loan_id, staff, refs):
    if not refs:
        return "skipped"
    ref = data.draw(st.sampled_from(refs), label="repeat reference")
    loan, _, charges, allocations, repayments = snapshot(loan_id)
    with pytest.raises(Conflict):
        post_repayment(loan, {"amount": "1.00", "paid_at": clock.now().isoformat(),
                              "external_ref": ref}, staff["admin"])
    after = snapshot(loan_id)
    assert (len(after[2]), len(after[3]), len(after[4])) == (
        len(charges), len(allocations), len(repayments))
    return "refused"


def advance(data, loan_id, staff, refs):
    today = clock.today()
    if today >= LAST_DAY:
        return "skipped"
    days = data.draw(st.integers(1, min(60, (LAST_DAY - today).days)), label="days pass")
    clock.set_now(clock.now() + dt.timedelta(days=days))
    if data.draw(st.booleans(), label="daily run"):
        run_daily()
        return "with the daily run"
    return "without the daily run"


def extend(data, loan_id, staff, refs):
    loan, installments = snapshot(loan_id)[:2]
    if loan.status != "servicing" or loan.maturity_on >= LAST_DAY or \
            LoanExtension.query.filter_by(loan_id=loan_id).count():
        return "skipped"
    # Within the lending rules: the longest extension and the legal ceiling on the rate.
    longest = (latest_extended_maturity(loan) - loan.maturity_on).days
    cap = cap_on(legal_caps(), clock.today())
    rates = [r for r in ("0.05", "0.0435", "0.09") if cap is None or Decimal(r) <= cap]
    if longest < 1 or not rates:
        return "skipped (beyond the lending rules)"
    days = data.draw(st.integers(1, min(60, (LAST_DAY - loan.maturity_on).days, longest)),
                     label="extension (days)")
    rate = data.draw(st.sampled_from(rates), label="extension rate")
    final = installments[-1]
    old_due, unpaid = final.due_on, final.principal_due - final.principal_paid
    interest_before = final.interest_due
    new_maturity = loan.maturity_on + dt.timedelta(days=days)
    request_extension(loan, {"new_maturity_on": new_maturity.isoformat(),
                             "proposed_rate": rate, "reason": "property test"}, staff["am"])
    review(loan, staff["dh"])
    approve(loan, staff["gm"])
    loan, installments = snapshot(loan_id)[:2]
    final = installments[-1]
    expected = (unpaid * Decimal(rate) * (new_maturity - old_due).days / 365).quantize(
        CENT, ROUND_HALF_UP) if unpaid > 0 else ZERO
    assert (loan.maturity_on, final.due_on) == (new_maturity, new_maturity)
    assert loan.interest_rate == Decimal(rate)
    assert final.interest_due - interest_before == expected
    return "approved with interest" if expected else "approved, no principal left"


def reverse(data, loan_id, staff, refs):
    if request_reversal is None:
        return "skipped (no ledger.reversals)"
    loan, _, _, _, repayments = snapshot(loan_id)
    live = [r for r in repayments if r.reversed_at is None]
    if not live:
        return "skipped"
    repayment = data.draw(st.sampled_from(live), label="reverse")
    approve_it = data.draw(st.booleans(), label="approve the reversal")
    before, amount = loan.outstanding, repayment.amount
    if loan.status in ("closing", "closed"):
        with pytest.raises(Conflict):
            request_reversal(repayment.id, "the debit bounced", staff["plo"])
        assert outstanding(loan_id) == before
        return "refused, loan in closure"
    charged_before = charges_total(loan_id)
    reversal = request_reversal(repayment.id, "the debit bounced", staff["plo"])
    decide_reversal(reversal.id, approve_it, "checked with the bank", staff["plo2"])
    # An approval also charges the reopened installments' penalty up to today.
    penalty = charges_total(loan_id) - charged_before
    assert penalty >= 0 and (approve_it or penalty == 0)
    assert outstanding(loan_id) == before + (amount if approve_it else 0) + penalty
    return "approved" if approve_it else "rejected"


ACTIONS = {"pay": pay, "too_much": too_much, "duplicate": duplicate, "advance": advance,
           "extend": extend, "reverse": reverse}


@pytest.fixture
def staff(users, deployed):
    return users | {name: create_user(name, PASSWORD, roles) for name, roles in {
        "dh": ["dept_head"], "gm": ["general_manager"]}.items()}


@SETTINGS
@given(spec=loans(), data=st.data())
def test_ledger_invariants_hold_after_every_step(app, staff, spec, data):
    wipe()
    try:
        loan_id = open_loan(spec, staff)
        check_invariants(loan_id)
        steps = data.draw(st.lists(st.sampled_from(STEPS), min_size=1, max_size=10),
                          label="steps")
        refs = []
        for i, step in enumerate(steps):
            note(f"step {i}: {step} on {clock.today()}")
            outcome = ACTIONS[step](data, loan_id, staff, refs)
            event(f"{step}: {outcome}")
            check_invariants(loan_id)
    finally:
        clock.set_now(T0)
