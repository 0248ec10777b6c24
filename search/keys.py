"""Keeping search_keys in step with the loans (search.models explains the keys).

Two ways in, so that no write path is missed:
- the bulk path (cases.operations._write_loans: the API, the web form and the CSV import)
  writes Core rows and calls `add_written` with them: one more INSERT, nothing read;
- anything written through the ORM (a contact added, a borrower's new phone, a renamed
  borrower, a guarantor) is caught by a flush listener that rewrites the keys of the loans it
  touched, in the same transaction.
"""
from sqlalchemy import delete, event, inspect, select

from bulk import insert_rows
from cases.models import Borrower, Contact, Guarantor, Loan
from extensions import db
from search.models import SearchKey
from search.normalize import name_keys, normalize, phone_keys


def loan_keys(loan_no, borrower_name, id_numbers=(), phones=()):
    """{(key, kind)} of one loan."""
    keys = {(normalize(loan_no), "loan")}
    keys |= {(k, "name") for k in name_keys(borrower_name)}
    keys |= {(normalize(n), "id") for n in id_numbers}
    keys |= {(k, "phone") for p in phones for k in phone_keys(p)}
    return {(key, kind) for key, kind in keys if key}


def _rows(loan_id, keys):
    return [{"loan_id": loan_id, "key": key, "kind": kind} for key, kind in sorted(keys)]


def add_written(written):
    """The keys of loans just written by cases.operations._write_loans (its row dicts)."""
    rows = []
    for w in written:
        borrower, loan = w["borrower"], w["loan"]
        guarantors = w.get("guarantors", ())
        rows += _rows(loan["id"], loan_keys(
            loan["loan_no"], loan["borrower_name"],
            [borrower.get("id_number", "")] + [g.get("id_number", "") for g in guarantors],
            list(borrower.get("phones") or ()) + [c.get("phone", "") for c in
                                                   w.get("contacts", ())]
            + [g.get("phone", "") for g in guarantors]))
    insert_rows(SearchKey.__table__, rows)


def refresh(loan_ids, connection=None):
    """Rewrite the keys of these loans from what is stored now."""
    loan_ids = sorted(set(loan_ids))
    if not loan_ids:
        return
    connection = connection or db.session.connection()
    loans = connection.execute(
        select(Loan.id, Loan.loan_no, Loan.borrower_name, Borrower.id_number, Borrower.phones)
        .outerjoin(Borrower, Borrower.id == Loan.borrower_id)
        .where(Loan.id.in_(loan_ids))).all()
    ids, phones = {}, {}
    for loan_id, _no, _name, id_number, borrower_phones in loans:
        ids[loan_id], phones[loan_id] = [id_number or ""], list(borrower_phones or ())
    for loan_id, phone in connection.execute(
            select(Contact.loan_id, Contact.phone).where(Contact.loan_id.in_(loan_ids))):
        phones.setdefault(loan_id, []).append(phone)
    for loan_id, id_number, phone in connection.execute(
            select(Guarantor.loan_id, Guarantor.id_number, Guarantor.phone)
            .where(Guarantor.loan_id.in_(loan_ids))):
        ids.setdefault(loan_id, []).append(id_number)
        phones.setdefault(loan_id, []).append(phone)
    connection.execute(delete(SearchKey.__table__).where(SearchKey.loan_id.in_(loan_ids)))
    insert_rows(SearchKey.__table__, [
        row for loan_id, no, name, *_ in loans
        for row in _rows(loan_id, loan_keys(no, name, ids[loan_id], phones[loan_id]))],
        connection=connection)


# The attributes each model's keys are made of.
_WATCHED = {Loan: ("loan_no", "borrower_name", "borrower_id"),
            Borrower: ("name", "id_number", "phones"),
            Contact: ("phone", "loan_id"), Guarantor: ("id_number", "phone", "loan_id")}


def _changed(obj):
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in _WATCHED[type(obj)])


@event.listens_for(db.session, "after_flush")
def _after_flush(session, _context):
    """The loans whose keys this flush may have changed, rewritten (search.keys)."""
    loans, borrowers = set(), set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        kind = type(obj)
        if kind not in _WATCHED or not (obj in session.new or obj in session.deleted
                                        or _changed(obj)):
            continue
        if kind is Loan:
            if obj not in session.deleted:
                loans.add(obj.id)
        elif kind is Borrower:
            borrowers.add(obj.id)
        else:
            loans.add(obj.loan_id)
            old = inspect(obj).attrs.loan_id.history.deleted
            loans.update(i for i in old or () if i is not None)
    if not (loans or borrowers):
        return
    connection = session.connection()
    if borrowers:
        loans.update(connection.scalars(select(Loan.id).where(Loan.borrower_id.in_(borrowers))))
    refresh({i for i in loans if i is not None}, connection)
