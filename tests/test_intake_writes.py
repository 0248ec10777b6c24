"""A loan received one at a time (issue 12): written as rows, not ORM objects, it must leave
exactly what registering it the way the code did before leaves, answer with the case as it
reads back, and cost a fixed number of statements with one commit."""
from sqlalchemy import select

from cases.intake import parse_intake
from cases.models import Collateral, Contact, Guarantor, Loan
from cases.operations import receive_loan
from extensions import db
from tests.test_bulk_intake import reference_add_loan, snapshot
from tests.test_intake import full_payload
from tests.test_round_trips import counting


def parties(prefix):
    """The contacts, guarantors and collateral of the loans numbered prefix…, ids left out."""
    out = {}
    for loan in db.session.scalars(select(Loan).where(Loan.loan_no.like(prefix + "%"))):
        key = loan.loan_no[len(prefix):]
        out[key] = [
            [(c.name, c.relationship, c.phone, c.address, c.knows_about_loan)
             for c in db.session.scalars(select(Contact).where(Contact.loan_id == loan.id)
                                         .order_by(Contact.id))],
            [(g.kind, g.name, g.id_number, g.phone, g.address)
             for g in db.session.scalars(select(Guarantor).where(Guarantor.loan_id == loan.id)
                                         .order_by(Guarantor.id))],
            [(c.kind, c.description, c.location, str(c.area), str(c.valuation),
              c.registration_no, c.released_at)
             for c in db.session.scalars(select(Collateral)
                                         .where(Collateral.loan_id == loan.id)
                                         .order_by(Collateral.id))]]
    return out


def test_receive_loan_writes_what_the_orm_path_wrote(deployed, users):
    payloads = [full_payload("1"), full_payload("2", contacts=[], guarantors=[],
                                                 collateral=[], schedule=None)]
    for payload in payloads:
        reference_add_loan(parse_intake(dict(payload, loan_no="O-" + payload["loan_no"])),
                           users["admin"])
    db.session.commit()
    for payload in payloads:
        loan, created = receive_loan(dict(payload, loan_no="N-" + payload["loan_no"]),
                                     users["admin"])
        assert created and loan.loan_no == "N-" + payload["loan_no"]
    db.session.expire_all()
    assert snapshot("N-") == snapshot("O-")
    assert parties("N-") == parties("O-")
    assert len(parties("N-")["1"][0]) == 2 and len(parties("N-")["1"][2]) == 1


def test_the_answer_to_a_full_loan_is_the_case_as_read_back(app, deployed, users, token_for):
    client, headers = app.test_client(), token_for("am")
    created = client.post("/api/v1/loans", json=full_payload("R-2"), headers=headers)
    assert created.status_code == 201, created.get_json()
    read = client.get("/api/v1/cases/R-2", headers=headers)
    assert created.get_json() == read.get_json()
    assert created.get_json()["collateral"][0]["area"] == "120.50"
    assert [t["bpmn_id"] for t in created.get_json()["open_tasks"]] == ["handover_file"]
    again = client.post("/api/v1/loans", json=full_payload("R-2"), headers=headers)
    assert again.status_code == 200 and again.get_json() == read.get_json()


def test_a_new_loan_costs_a_fixed_number_of_statements(app, deployed, users, token_for):
    client, headers = app.test_client(), token_for("am")
    assert client.post("/api/v1/loans", json=full_payload("W-1"),
                       headers=headers).status_code == 201  # caches warm
    with counting(app) as seen:
        response = client.post("/api/v1/loans", json=full_payload("W-2"), headers=headers)
        assert response.status_code == 201
    # SQLite writes RETURNING rows one at a time (no ordered multi-row RETURNING): an INSERT
    # repeated at once counts as one statement, as PostgreSQL sends it.
    statements = [sql for n, sql in enumerate(seen["statements"])
                  if not (sql.startswith("INSERT") and n and seen["statements"][n - 1] == sql)]
    assert seen["commits"] == 1
    # token, account manager, 11 tables written (search_keys and collateral_valuations too),
    # the definition, the open tasks, audit events
    assert len(statements) <= 16, seen["statements"]
    assert sum(sql.startswith("SELECT") for sql in seen["statements"]) <= 4, seen["statements"]
