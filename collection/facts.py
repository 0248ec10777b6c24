"""What collection's operations read of a loan: the loan and the actor of a task's data, the
task just completed, the fresh collection facts (DPD, overdue amount, broken promises), the
same facts for many loans read at once (`starting`), and the contact log they write to."""
import contextvars
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from accounts.models import User
from cases.models import ContactLogEntry, Loan, PromiseToPay
from collection.contact_rules import calls_on_day
from collection.windows import next_call_window, window_range
from extensions import db
from ledger.book import ZERO
from ledger.book import overdue_amount as ledger_overdue_amount
from ledger.models import Installment
from workflows import clock
from workflows.models import HumanTask


def loan_of(data):
    return Loan.query.filter_by(loan_no=data["loan_no"]).one()


def actor_of(data, bpmn_id):
    username = (data.get("completed_by") or {}).get(bpmn_id)
    if not username:
        return None
    return User.query.filter_by(username=username).first()


def completed_task_id(loan, bpmn_id):
    """The human task just completed (the facade marks it completed before running on)."""
    return db.session.scalar(
        select(HumanTask.id).where(HumanTask.case_id == loan.id, HumanTask.bpmn_id == bpmn_id,
                                   HumanTask.state == "completed")
        .order_by(HumanTask.id.desc()).limit(1))


def completed_step(data, bpmn_id):
    """The loan, the user who completed the task `bpmn_id` and that task's id."""
    loan = loan_of(data)
    return loan, actor_of(data, bpmn_id), completed_task_id(loan, bpmn_id)


def decimal_or_none(value):
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def overdue_amount(loan, as_of=None):
    """What is due before `as_of` (Beijing today) and not yet paid."""
    return ledger_overdue_amount(loan.id, as_of or clock.today())


def snapshot(loan):
    """The loan's collection facts now, read from the database (task data is a snapshot).
    The stage is not among them: the diagram decides it from `dpd`."""
    # DPD and the broken promises in one statement (it runs at every collection start).
    broken = (select(func.count(PromiseToPay.id))
              .where(PromiseToPay.loan_id == loan.id, PromiseToPay.status == "broken")
              .scalar_subquery())
    dpd, broken_promises = db.session.execute(
        select(Loan.dpd, broken).where(Loan.id == loan.id)).one()
    opens, closes = next_call_window()
    return {"dpd": dpd, "overdue_amount": str(overdue_amount(loan)),
            "next_call_window": window_range(opens, closes), "broken_promises": broken_promises}


# Collections started together (the daily run): what `refresh` reads of each of their loans,
# read for all of them at once ({loan no: (loan, snapshot, today's calls)}), or None.
_STARTING = contextvars.ContextVar("collection_starting", default=None)


@contextmanager
def starting(loan_ids):
    """Inside, `refresh` of these loans (the first step of a collection start) reads them from
    five statements for all of them instead of four per loan; the same values as without."""
    ids = list(loan_ids)
    loans = db.session.scalars(select(Loan).where(Loan.id.in_(ids)).options(
        joinedload(Loan.borrower), selectinload(Loan.contacts), selectinload(Loan.guarantors))
        .execution_options(populate_existing=True)).unique().all()
    broken = dict(db.session.execute(
        select(PromiseToPay.loan_id, func.count(PromiseToPay.id))
        .where(PromiseToPay.loan_id.in_(ids), PromiseToPay.status == "broken")
        .group_by(PromiseToPay.loan_id)).all())
    today = clock.today()
    owed = {}
    for row in db.session.scalars(select(Installment).where(
            Installment.loan_id.in_(ids), Installment.paid_off_on.is_(None),
            Installment.due_on < today)):
        owed[row.loan_id] = owed.get(row.loan_id, ZERO) + row.outstanding
    opens, closes = next_call_window()
    calls = calls_on_day(ids, clock.now())
    token = _STARTING.set({loan.loan_no: (loan, {
        "dpd": loan.dpd, "overdue_amount": str(owed.get(loan.id, ZERO)),
        "next_call_window": window_range(opens, closes),
        "broken_promises": broken.get(loan.id, 0)}, calls[loan.id]) for loan in loans})
    try:
        yield
    finally:
        _STARTING.reset(token)


def read_at_start(loan_no):
    """What `starting` read of this loan (loan, facts, today's calls), or None outside it."""
    return (_STARTING.get() or {}).get(loan_no)


def log_contact(loan, actor, kind, task_id=None, **values):
    entry = ContactLogEntry(loan_id=loan.id, at=clock.now(), kind=kind,
                            user_id=getattr(actor, "id", None), task_id=task_id, **values)
    db.session.add(entry)
    db.session.flush()
    return entry


def settlement(loan):
    """Is collection over? Nothing overdue left, or the loan written off [002 F]."""
    from ledger.writeoff import written_off
    left = overdue_amount(loan)
    return {"overdue_amount": str(left), "overdue_cleared": left <= 0,
            "written_off": written_off(loan) is not None}
