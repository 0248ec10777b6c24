"""The search keys of each loan and its balance, read by the header search and the case list.

Why a table of normalized keys (and not SQLite FTS5 / PostgreSQL pg_trgm): the same SQL and
the same answers on both databases, no extension to install (pg_trgm needs CREATE privileges
the production role may not have), and Chinese names of two characters are found, which
trigram indexes cannot do without a second path. Each loan has one row per key:

- its loan number, the borrower's and guarantors' ID numbers, the borrower's, contacts' and
  guarantors' phone numbers (also without +86): found by a prefix of the key;
- every suffix of the borrower's name (at most search.normalize.MAX_SUFFIXES): any part of
  the name is the prefix of one of them, whatever its length, one character included.

A query is normalized like the keys (search.normalize) and read as one range of the primary
key (`key >= q AND key < q || U+10FFFF`), which both databases answer from the B-tree. On
PostgreSQL the key is compared byte-wise (COLLATE "C"), so the range is exactly the keys
starting with q whatever the database's locale.

The keys are written with the loan by the bulk path (cases.operations._write_loans calls
search.keys.add_written) and refreshed by a flush listener whenever a borrower, loan,
contact or guarantor changes through the ORM (search.keys).

`loan_balances` holds each loan's outstanding amount and next unpaid due date (NO_DUE when
nothing is left to pay) for sorting
and filtering the case list; database triggers on `installments` keep it (migration 0016),
so every ledger write path (repayments, penalty accrual, reversals, write-offs) is covered
without a hook.
"""
import datetime as dt

from extensions import db
from cases.models import Loan

# next_due_on of a loan with nothing left to pay (never NULL: sorting by it stays an index
# walk on both databases, and such loans come last).
NO_DUE = dt.date(9999, 12, 31)

KEY_TYPE = db.String(200).with_variant(db.String(200, collation="C"), "postgresql")


class SearchKey(db.Model):
    __tablename__ = "search_keys"
    key = db.Column(KEY_TYPE, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id", ondelete="CASCADE"),
                        primary_key=True, index=True)
    kind = db.Column(db.String(8), primary_key=True)  # loan | id | phone | name


class LoanBalance(db.Model):
    __tablename__ = "loan_balances"
    # With the loan id: the case list's order (value, then loan) read from the index alone.
    __table_args__ = (db.Index("ix_loan_balances_outstanding", "outstanding", "loan_id"),
                      db.Index("ix_loan_balances_next_due_on", "next_due_on", "loan_id"))
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id", ondelete="CASCADE"),
                        primary_key=True)
    outstanding = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    next_due_on = db.Column(db.Date)


# The case list's sort orders at 100k loans (cases.listing): each is an index walk, stopped
# after a page, instead of a sort of every loan. Declared here, with the listing they serve.
db.Index("ix_loans_dpd_id", Loan.dpd, Loan.id)
db.Index("ix_loans_borrower_name", Loan.borrower_name, Loan.id)
