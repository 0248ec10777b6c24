"""The daily run at scale (issue 12): staging writes only the loans whose DPD or stage moved,
and collections started together read their loans once for all, with the same result."""
import datetime as dt
from decimal import Decimal

from sqlalchemy import event, insert

from cases.models import ContactLogEntry, Loan, PromiseToPay, StageChange
from cases.staging import run_daily
from collection.facts import starting
from collection.operations import refresh
from extensions import db
from ledger.models import Installment
from tests.test_collection import at, staff  # noqa: F401 (fixture)
from tests.test_contact_rules import BORROWER, DAY, PEOPLE
from tests.test_servicing import serviced  # noqa: F401 (fixture)

DAY1, DAY2 = dt.date(2026, 6, 1), dt.date(2026, 6, 2)


def _book(manager, dues):
    """One loan per due date (a single installment each): {name: loan id}."""
    db.session.execute(insert(Loan), [
        {"loan_no": f"W-{name}", "borrower_name": "x", "principal": 1000,
         "interest_rate": Decimal("0.05"), "disbursed_on": dt.date(2026, 1, 5),
         "maturity_on": dt.date(2026, 12, 1), "account_manager_id": manager,
         "status": "servicing", "product": "term", "purpose": "", "repayment_account": "",
         "dpd": 0, "stage": "current"} for name in dues])
    ids = {loan.loan_no[2:]: loan.id for loan in Loan.query}
    db.session.execute(insert(Installment), [
        {"loan_id": ids[name], "seq": 1, "due_on": due, "principal_due": 1000,
         "interest_due": 10, "penalty_due": 0, "principal_paid": 0, "interest_paid": 0,
         "penalty_paid": 0} for name, due in dues.items()])
    db.session.commit()
    return ids


def _loan_rows_written(day):
    """run_daily(day), counting the loan rows its UPDATE statements changed."""
    written = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE LOANS"):
            written.append(max(cursor.rowcount, 0))
    event.listen(db.engine, "after_cursor_execute", count)
    try:
        counts = run_daily(day)
    finally:
        event.remove(db.engine, "after_cursor_execute", count)
    return counts, sum(written)


def test_staging_writes_only_the_loans_whose_dpd_or_stage_moved(app, users):
    ids = _book(users["am"].id, {
        "current": dt.date(2026, 6, 20),  # not due yet on either day
        "overdue": dt.date(2026, 5, 20),  # overdue both days: its DPD moves
        "turning": DAY1,  # falls due on DAY1: overdue from DAY2
        "paid": dt.date(2026, 5, 25),  # overdue on DAY1, paid before DAY2
        "quiet": dt.date(2026, 7, 1)})
    counts, written = _loan_rows_written(DAY1)
    assert counts["stage_changes"] == 2 and written == 2  # overdue and paid turn overdue
    paid = Installment.query.filter_by(loan_id=ids["paid"]).one()
    paid.principal_paid, paid.interest_paid, paid.penalty_paid = 1000, 10, paid.penalty_due
    paid.paid_off_on = DAY1
    db.session.commit()
    counts, written = _loan_rows_written(DAY2)
    # The two current loans are not written; the three that moved are, once each.
    assert written == 3
    assert counts["stage_changes"] == 2
    loans = {loan.loan_no[2:]: loan for loan in Loan.query.populate_existing()}
    assert {name: (loan.dpd, loan.stage, loan.stage_since) for name, loan in loans.items()} == {
        "current": (0, "current", None), "quiet": (0, "current", None),
        "overdue": (13, "dpd_8_30", DAY1), "turning": (1, "dpd_1_3", DAY2),
        "paid": (0, "current", DAY2)}
    changes = {(c.loan_id, c.changed_on, c.from_stage, c.to_stage, c.dpd)
               for c in StageChange.query.filter_by(changed_on=DAY2)}
    assert changes == {(ids["turning"], DAY2, "current", "dpd_1_3", 1),
                       (ids["paid"], DAY2, "dpd_4_7", "current", 0)}
    # The same day again moves nothing and writes nothing.
    assert _loan_rows_written(DAY2)[1] == 0


def test_refresh_reads_the_same_when_collections_start_together(app, serviced, staff):
    loan = serviced(**PEOPLE)
    at(DAY, 10)
    assert run_daily(DAY)["overdue"] == 1  # its collection started through `starting`
    loan = db.session.get(Loan, loan.id)
    at(DAY, 14, 40)
    db.session.add_all([
        ContactLogEntry(loan_id=loan.id, at=dt.datetime(2026, 5, 8, 2, 0, tzinfo=dt.timezone.utc),
                        kind="call", number=BORROWER, answered_by="borrower"),
        ContactLogEntry(loan_id=loan.id, at=dt.datetime(2026, 5, 8, 6, 35, tzinfo=dt.timezone.utc),
                        kind="call", number=PEOPLE["contacts"][0]["phone"]),
        PromiseToPay(loan_id=loan.id, promised_on=dt.date(2026, 5, 7), amount=100,
                     status="broken")])
    db.session.flush()
    alone = {"loan_no": loan.loan_no}
    refresh(alone)
    statements = []

    def counted(*_args):
        statements.append(1)
    with starting([loan.id]):
        together = {"loan_no": loan.loan_no}
        event.listen(db.engine, "before_cursor_execute", counted)
        try:
            refresh(together)
        finally:
            event.remove(db.engine, "before_cursor_execute", counted)
    assert statements == []  # read before, for the whole batch
    assert together == alone
    assert alone["dpd"] == 2 and alone["broken_promises"] == 1
    assert alone["overdue_amount"] == str(Installment.query.filter_by(
        loan_id=loan.id, seq=1).one().outstanding)
    # The 10:00 call to the borrower counts, the 14:35 call to the spouse does not.
    assert "09:30–11:00 1/" in alone["calls_today"] and "14:30–15:30 0/" in alone["calls_today"]
    assert "赵六" in alone["contacts_on_file_zh"]
