"""The features of the propensity-to-pay score, read in bulk: a handful of grouped queries for
every loan of a scope, never a query per loan.

A scope is a SELECT of loan ids (the overdue open loans now, or the loans overdue at the start
of a past month for the fit) and each loan's base: DPD, amount due and principal balance. Every
time window counts back from `as_of` (exclusive), so a past date reads what was known then —
except guarantors and collateral, which carry no history.

Raw features of a loan (a dict):
  dpd, amount_due (Decimal), broken_90 / kept_90 (promises due in the last 90 days, broken /
  kept), calls_30 / reached_30 (calls in the last 30 days, to anyone but a guarantor, and those
  that reached someone), paid_60 (a repayment in the last 60 days), on_time (installments paid
  off by their due date), guarantor (a guarantor with a phone whose calls in the last 30 days,
  if any, reached someone at least once), collateral (collateral not released), ltv (balance /
  the collateral's valuation, None without a valuation).
"""
import datetime as dt
from collections import namedtuple
from decimal import Decimal

from sqlalchemy import and_, case, func, literal_column, select, text

from cases.models import OFF_CURRENT, Collateral, ContactLogEntry, Guarantor, Loan, PromiseToPay
from collection.contact_rules import digits
from extensions import db
from ledger.models import Installment, Repayment
from workflows.clock import BEIJING

ZERO = Decimal("0.00")
# Call outcomes in which someone answered (contact_rules.UNREACHABLE are the others).
REACHED = frozenset({"reached", "refused", "promised_to_pay"})

Base = namedtuple("Base", "loan_id dpd amount_due balance")


def _start_of(day):
    """The UTC instant a Beijing date starts (in UTC: SQLite compares the stored text)."""
    return dt.datetime.combine(day, dt.time(), BEIJING).astimezone(dt.timezone.utc)


def _outstanding():
    i = Installment
    return (i.principal_due + i.interest_due + i.penalty_due
            - i.principal_paid - i.interest_paid - i.penalty_paid)


def overdue_scope():
    """The open loans overdue now, through the partial index of loans off "current"."""
    return select(Loan.id).where(text(f"({OFF_CURRENT})"), Loan.dpd > 0,
                                 Loan.status != literal_column("'closed'"))


def current_bases(as_of):
    """[Base] of the open loans overdue now, by loan id: one grouped query."""
    overdue = and_(Installment.due_on < as_of, Installment.paid_off_on.is_(None))
    query = (select(Loan.id, Loan.dpd,
                    func.coalesce(func.sum(case((overdue, _outstanding()), else_=0)), 0),
                    func.coalesce(func.sum(Installment.principal_due
                                           - Installment.principal_paid), 0))
             .join(Installment, Installment.loan_id == Loan.id)
             .where(Loan.id.in_(overdue_scope()))
             .group_by(Loan.id, Loan.dpd).order_by(Loan.id))
    return [Base(loan_id, dpd, Decimal(due).quantize(ZERO), Decimal(balance).quantize(ZERO))
            for loan_id, dpd, due, balance in db.session.execute(query)]


def gather(as_of, bases, scope):
    """{loan id: raw features} of `bases`; `scope` selects the same loan ids (SQL)."""
    features = {b.loan_id: {"dpd": b.dpd, "amount_due": b.amount_due, "broken_90": 0,
                            "kept_90": 0, "calls_30": 0, "reached_30": 0, "paid_60": False,
                            "on_time": 0, "guarantor": False, "collateral": False,
                            "ltv": None} for b in bases}
    if not features:
        return features
    run = db.session.execute
    since_90, since_60 = as_of - dt.timedelta(days=90), as_of - dt.timedelta(days=60)
    since_30 = as_of - dt.timedelta(days=30)

    for loan_id, status, n in run(
            select(PromiseToPay.loan_id, PromiseToPay.status, func.count())
            .where(PromiseToPay.loan_id.in_(scope), PromiseToPay.promised_on >= since_90,
                   PromiseToPay.promised_on < as_of,
                   PromiseToPay.status.in_(("kept", "broken")))
            .group_by(PromiseToPay.loan_id, PromiseToPay.status)):
        features[loan_id]["kept_90" if status == "kept" else "broken_90"] += n

    guarantor_phones = {}
    for loan_id, phone in run(select(Guarantor.loan_id, Guarantor.phone)
                              .where(Guarantor.loan_id.in_(scope))):
        if digits(phone):
            guarantor_phones.setdefault(loan_id, {})[digits(phone)] = None  # None: not called
    for loan_id, number, outcome, n in run(
            select(ContactLogEntry.loan_id, ContactLogEntry.number, ContactLogEntry.outcome,
                   func.count())
            .where(ContactLogEntry.loan_id.in_(scope), ContactLogEntry.kind == "call",
                   ContactLogEntry.at >= _start_of(since_30), ContactLogEntry.at < _start_of(as_of))
            .group_by(ContactLogEntry.loan_id, ContactLogEntry.number, ContactLogEntry.outcome)):
        reached = outcome in REACHED
        phones = guarantor_phones.get(loan_id, {})
        if digits(number) in phones:
            phones[digits(number)] = bool(phones[digits(number)]) or reached
            continue
        features[loan_id]["calls_30"] += n
        features[loan_id]["reached_30"] += n if reached else 0
    for loan_id, phones in guarantor_phones.items():
        # Not called lately counts as reachable: nothing says otherwise.
        features[loan_id]["guarantor"] = any(v is None or v for v in phones.values())

    for (loan_id,) in run(select(Repayment.loan_id).distinct()
                          .where(Repayment.loan_id.in_(scope),
                                 Repayment.paid_at >= _start_of(since_60),
                                 Repayment.paid_at < _start_of(as_of),
                                 Repayment.reversed_at.is_(None))):
        features[loan_id]["paid_60"] = True

    for loan_id, n in run(select(Installment.loan_id, func.count())
                          .where(Installment.loan_id.in_(scope),
                                 Installment.paid_off_on <= Installment.due_on,
                                 Installment.paid_off_on < as_of)
                          .group_by(Installment.loan_id)):
        features[loan_id]["on_time"] = n

    balances = {b.loan_id: b.balance for b in bases}
    for loan_id, n, valuation in run(
            select(Collateral.loan_id, func.count(), func.sum(Collateral.valuation))
            .where(Collateral.loan_id.in_(scope), Collateral.released_at.is_(None))
            .group_by(Collateral.loan_id)):
        features[loan_id]["collateral"] = n > 0
        if valuation and Decimal(valuation) > 0:
            features[loan_id]["ltv"] = (Decimal(balances[loan_id]) / Decimal(valuation)
                                        ).quantize(Decimal("0.0001"))
    return features
