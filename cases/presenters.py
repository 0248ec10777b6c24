"""Plain-data views of a case, shared by the web pages and the API."""
from accounts.models import utc
from cases.models import CaseProblem, Loan, ContactLogEntry, Document, StageChange
from ledger.models import Repayment
from extensions import db
from workflows.inbox import open_tasks_of_case, task_summary, task_title
from workflows.models import HumanTask


def loan_dict(loan):
    return {"loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
            "principal": str(loan.principal), "interest_rate": str(loan.interest_rate),
            "disbursed_on": loan.disbursed_on.isoformat(),
            "maturity_on": loan.maturity_on.isoformat(),
            "account_manager": loan.account_manager.username, "status": loan.status,
            "risk_group": loan.risk_group, "inspection_frequency": loan.inspection_frequency,
            "product": loan.product, "outstanding": str(loan.outstanding),
            "dpd": loan.dpd, "stage": loan.stage,
            "closed_at": utc(loan.closed_at).isoformat() if loan.closed_at else None,
            "created_at": utc(loan.created_at).isoformat()}


def _text(value):
    return None if value is None else str(value)


def loan_details(loan):
    """What intake registered besides the loan's figures: borrower, contacts, guarantors,
    collateral and the installment schedule (with what is paid)."""
    b = loan.borrower
    return {
        "purpose": loan.purpose, "repayment_account": loan.repayment_account,
        "borrower": {"kind": b.kind, "name": b.name, "id_number": b.id_number,
                     "phones": list(b.phones or []), "addresses": list(b.addresses or [])}
        if b is not None else {"kind": "person", "name": loan.borrower_name, "id_number": "",
                               "phones": [], "addresses": []},
        "contacts": [{"name": c.name, "relationship": c.relationship, "phone": c.phone,
                      "address": c.address, "knows_about_loan": c.knows_about_loan}
                     for c in loan.contacts],
        "guarantors": [{"kind": g.kind, "name": g.name, "id_number": g.id_number,
                        "phone": g.phone, "address": g.address} for g in loan.guarantors],
        "collateral": [{"kind": c.kind, "description": c.description, "location": c.location,
                        "area": _text(c.area), "valuation": _text(c.valuation),
                        "registration_no": c.registration_no,
                        "released_at": utc(c.released_at).isoformat() if c.released_at else None}
                       for c in loan.collateral],
        "schedule": [{"seq": i.seq, "due_on": i.due_on.isoformat(),
                      "principal": _text(i.principal_due), "interest": _text(i.interest_due),
                      "penalty": _text(i.penalty_due), "outstanding": _text(i.outstanding),
                      "paid_off_on": i.paid_off_on.isoformat() if i.paid_off_on else None}
                     for i in loan.installments],
    }


def case_dict(loan):
    body = loan_dict(loan) | loan_details(loan)
    body["open_tasks"] = [task_summary(t, loan.loan_no) for t in open_tasks_of_case(loan.id)]
    return body


def history_rows(events, user=None, loan=None):
    """Audit events of a case made readable for `user` (default: the logged-in one):
    (event, task title or None, [(label, text)]): submitted form data by its form's labels,
    other details by audit/presenting.py (codes labelled, ID and phone numbers masked)."""
    from audit.presenting import event_fields
    if loan is None and events and events[0].case_id:
        loan = db.session.get(Loan, events[0].case_id)  # the own-loans rule (identity map)
    task_ids = {e.task_id for e in events if e.task_id}
    tasks = {t.id: t for t in db.session.query(HumanTask).filter(HumanTask.id.in_(task_ids))}
    rows = []
    for event in events:
        task = tasks.get(event.task_id)
        pairs = event_fields(event, task, user=user, loan=loan)
        rows.append((event, task_title(task) if task is not None else None, pairs))
    return rows


def plain(item):
    """A borrower's phone or address as stored (a string, or a mapping such as
    {"type": "home", "value": "…"}) as one line of text."""
    if isinstance(item, dict):
        return " · ".join(str(v) for v in item.values() if v not in (None, ""))
    return str(item)


def case_records(loan):
    """What the case page lists besides tasks and history, each oldest first except the
    contact log and the documents (newest first)."""
    by_loan = {"loan_id": loan.id}
    log = (ContactLogEntry.query.filter_by(**by_loan)
           .order_by(ContactLogEntry.at.desc(), ContactLogEntry.id.desc()).all())
    return {
        "contact_log": [(entry, entry.address, entry.note) for entry in log],
        "repayments": Repayment.query.filter_by(**by_loan)
        .order_by(Repayment.paid_at, Repayment.id).all(),
        "documents": Document.query.filter_by(**by_loan)
        .order_by(Document.uploaded_at.desc(), Document.id.desc()).all(),
        "stage_changes": StageChange.query.filter_by(**by_loan)
        .order_by(StageChange.changed_on, StageChange.id).all(),
        "problems": CaseProblem.query.filter_by(resolved_at=None, **by_loan)
        .order_by(CaseProblem.opened_at).all(),
    }
