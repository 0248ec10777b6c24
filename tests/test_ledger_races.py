"""Races on one loan over real HTTP (issue 9): the app served on 127.0.0.1 by werkzeug's threaded
server, requests released together by a barrier. Every figure must be exact, every refusal a
4xx (never a 500), on SQLite and on PostgreSQL alike.

Run with -s to see the figures (requests, accepted, sum posted) for the closing note.
"""
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bench.ledger_races import (accepted_sum, distinct_repayments, duplicate_repayments,
                                excess_repayments, fire, serve)
from cases.models import Loan
from extensions import db
from ledger.models import Allocation, Installment, Repayment
from ledger.verify import verify
from tests.conftest import is_postgres
from tests.test_extension import REQUEST
from tests.test_servicing import serviced  # noqa: F401  (fixture)
from workflows.models import ProcessInstance

FIGURES = []


@pytest.fixture(scope="module", autouse=True)
def _figures():
    yield
    if FIGURES:
        print("\nledger race figures:\n" + "\n".join(f"  {line}" for line in FIGURES))


@pytest.fixture
def server(app):
    with serve(app) as address:
        yield address


def note(app, scenario, line):
    line = f"{'postgresql' if is_postgres(app) else 'sqlite'} {scenario}: {line}"
    FIGURES.append(line)
    print(f"\n{line}")


def ready_loan(serviced, loan_no):  # noqa: F811
    """A servicing loan, committed so that the server's connections see it."""
    loan = serviced(loan_no=loan_no)
    db.session.commit()
    return loan.id, loan.loan_no, loan.outstanding


def fresh(loan_id):
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(Loan, loan_id)


def paid_on_installments(loan_id):
    return sum((i.principal_paid + i.interest_paid + i.penalty_paid for i in
                Installment.query.filter_by(loan_id=loan_id)), start=Decimal("0.00"))


def posted(loan_id):
    rows = Repayment.query.filter_by(loan_id=loan_id).all()
    return rows, sum((r.amount for r in rows), start=Decimal("0.00"))


def allocated(loan_id):
    return sum(db.session.scalars(select(Allocation.amount)
                                  .where(Allocation.loan_id == loan_id)), start=Decimal("0.00"))


def statuses(results):
    return sorted(status for status, _ in results)


def no_server_errors(results):
    errors = [(status, body) for status, body in results if status >= 500]
    assert not errors, f"server errors: {errors}"


def test_twenty_simultaneous_repayments_are_all_posted_exactly(app, serviced, token_for,  # noqa: F811
                                                               server):
    loan_id, loan_no, before = ready_loan(serviced, "RACE-A")
    headers = token_for("admin")
    db.session.commit()
    bodies = distinct_repayments(loan_no, 20)
    assert sum(Decimal(b["amount"]) for b in bodies) < before
    results = fire(server, f"/api/v1/loans/{loan_no}/repayments", bodies, headers)
    loan = fresh(loan_id)
    rows, total = posted(loan_id)
    accepted = accepted_sum(bodies, results)
    note(app, "20 distinct refs", f"requests {len(bodies)}, accepted "
         f"{statuses(results).count(201)}, sum posted {total}, expected {accepted}")
    no_server_errors(results)
    assert statuses(results) == [201] * 20, results
    assert len(rows) == 20
    assert sorted(r.external_ref for r in rows) == sorted(b["external_ref"] for b in bodies)
    assert total == accepted == sum(Decimal(b["amount"]) for b in bodies)
    assert paid_on_installments(loan_id) == total == allocated(loan_id)
    assert before - loan.outstanding == total
    assert verify() == []


def test_twenty_simultaneous_duplicates_post_once_and_answer_409(app, serviced, token_for,  # noqa: F811
                                                                 server):
    loan_id, loan_no, before = ready_loan(serviced, "RACE-B")
    headers = token_for("admin")
    db.session.commit()
    bodies = duplicate_repayments(loan_no, 20)
    results = fire(server, f"/api/v1/loans/{loan_no}/repayments", bodies, headers)
    loan = fresh(loan_id)
    rows, total = posted(loan_id)
    note(app, "20 same ref", f"requests {len(bodies)}, accepted "
         f"{statuses(results).count(201)}, sum posted {total}, "
         f"expected {accepted_sum(bodies, results)}")
    no_server_errors(results)
    assert statuses(results) == [201] + [409] * 19, results
    assert all(body.get("error") for status, body in results if status == 409)
    assert len(rows) == 1 and rows[0].external_ref == bodies[0]["external_ref"]
    assert total == Decimal("500.00") == paid_on_installments(loan_id) == allocated(loan_id)
    assert before - loan.outstanding == total
    assert verify() == []


def test_simultaneous_payments_above_the_balance_are_refused(app, serviced, token_for,  # noqa: F811
                                                             server):
    loan_id, loan_no, before = ready_loan(serviced, "RACE-C")
    headers = token_for("admin")
    db.session.commit()
    bodies = excess_repayments(loan_no, before, 10)
    amount = Decimal(bodies[0]["amount"])
    fits = int(before // amount)
    assert fits == 3 and amount * 10 > before
    results = fire(server, f"/api/v1/loans/{loan_no}/repayments", bodies, headers)
    loan = fresh(loan_id)
    rows, total = posted(loan_id)
    accepted = accepted_sum(bodies, results)
    note(app, "10 x 30% of the balance", f"requests {len(bodies)}, accepted "
         f"{statuses(results).count(201)}, sum posted {total}, expected {accepted} "
         f"(balance {before})")
    no_server_errors(results)
    assert set(statuses(results)) <= {201, 400}, results
    for status, body in results:
        if status == 400:
            assert "amount" in body.get("field_errors", {}), body
    # Serialized, exactly as many as fit are accepted, and never more than the balance.
    assert statuses(results).count(201) == fits == len(rows)
    assert total == accepted <= before
    assert loan.outstanding == before - total >= 0
    assert paid_on_installments(loan_id) == total == allocated(loan_id)
    assert all(i.outstanding >= 0 for i in loan.installments)
    assert verify() == []


def test_ten_simultaneous_extension_requests_start_one_process(app, serviced, token_for,  # noqa: F811
                                                               server):
    loan_id, loan_no, _ = ready_loan(serviced, "RACE-D")
    headers = token_for("am")  # the loan's account manager
    db.session.commit()
    results = fire(server, f"/api/v1/loans/{loan_no}/extensions", [REQUEST] * 10, headers)
    fresh(loan_id)
    running = db.session.scalar(select(func.count(ProcessInstance.id)).where(
        ProcessInstance.case_id == loan_id, ProcessInstance.business_key == "extension",
        ProcessInstance.status == "running"))
    every = ProcessInstance.query.filter_by(case_id=loan_id, business_key="extension").count()
    note(app, "10 extension requests", f"requests 10, accepted "
         f"{statuses(results).count(201)}, running extension processes {running}, expected 1")
    no_server_errors(results)
    assert statuses(results) == [201] + [409] * 9, results
    assert running == every == 1
    assert verify() == []
