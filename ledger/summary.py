"""What the case page shows of the ledger beyond the schedule: the penalty terms in force,
the charges added to installments (penalty, extension interest, a recall's give-back), the
recall and where each repayment came from."""
from sqlalchemy import func, select

from cases.models import Product
from extensions import db
from ledger.models import REPAYMENT_SOURCES, Charge, Installment, Recall
from ledger.penalty import DEFAULT_MARKUP, cap_on, legal_caps, penalty_rate
from workflows import clock

SOURCE_ORDER = ("penalty", "extension", "recall")


def penalty_terms(loan, day=None):
    """The annual penalty rate today, the contract rate and markup it comes from, the cap."""
    product = db.session.get(Product, loan.product)
    markup = product.penalty_markup if product else DEFAULT_MARKUP
    cap = cap_on(legal_caps(), day or clock.today())
    return {"rate": penalty_rate(loan.interest_rate, markup, cap), "markup": markup,
            "contract_rate": loan.interest_rate, "cap": cap,
            "capped": cap is not None and loan.interest_rate * (1 + markup) > cap,
            "compound": bool(product and product.compound_interest)}


def added_charges(loan):
    """Charges beyond the schedule, one row per installment and source: total, the days
    covered, the last rate used."""
    rows = db.session.execute(
        select(Installment.seq, Charge.source, func.sum(Charge.amount),
               func.min(Charge.period_start), func.max(Charge.period_end),
               func.max(Charge.rate), func.count(Charge.id))
        .join(Installment, Installment.id == Charge.installment_id)
        .where(Charge.loan_id == loan.id, Charge.source != "schedule")
        .group_by(Installment.seq, Charge.source)
        .order_by(Installment.seq)).all()
    return sorted(({"seq": seq, "source": source, "amount": amount, "start": start,
                    "end": end, "rate": rate, "count": count}
                   for seq, source, amount, start, end, rate, count in rows),
                  key=lambda r: (r["seq"], SOURCE_ORDER.index(r["source"])))


def ledger_context(loan):
    return {"penalty": penalty_terms(loan), "added_charges": added_charges(loan),
            "recall": Recall.query.filter_by(loan_id=loan.id).first(),
            "REPAYMENT_SOURCES": REPAYMENT_SOURCES}
