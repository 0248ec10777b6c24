"""Repayment reversals: asked for with a reason by one person, decided by another (four eyes);
an approved one adds every allocation again negated, never changing a row."""
import datetime as dt
from decimal import Decimal

import pytest
from flask_babel import force_locale
from flask import render_template_string

from accounts.operations import create_user
from audit.models import AuditEvent
from cases.models import Loan
from extensions import db
from ledger.models import Allocation, Installment, Repayment, Reversal
from ledger.presenters import reversal_context
from ledger.repayments import post_repayment
from ledger.reversals import decide_reversal, request_reversal
from ledger.verify import verify
from tests.conftest import PASSWORD, login
from tests.test_servicing import reminder_instances, serviced  # noqa: F401  (fixture)
from workflows import clock
from workflows.errors import Conflict, InvalidData, NotAllowed, NotFound

UTC = dt.timezone.utc
EN = {"Accept-Language": "en"}


@pytest.fixture
def staff(users):
    """Requesters: the clerk (back office), the post-loan officers; deciders: the head and
    the post-loan officers."""
    return {**users, "clerk": create_user("clerk", PASSWORD, ["back_office"]),
            "head": create_user("head", PASSWORD, ["dept_head"])}


def pay(loan, amount, ref, actor, paid_at="2026-03-02"):
    return post_repayment(loan, {"amount": amount, "paid_at": paid_at, "external_ref": ref},
                          actor)


def allocation_rows(repayment_id):
    return [(a.id, a.installment_id, a.part, a.amount, a.reversal_id)
            for a in Allocation.query.filter_by(repayment_id=repayment_id)
            .order_by(Allocation.id)]


def outstanding(loan):
    db.session.expire_all()
    return db.session.get(Loan, loan.id).outstanding


def test_request_and_approve_negate_every_allocation(app, serviced, staff):  # noqa: F811
    loan = serviced()
    before = outstanding(loan)
    assert before == Decimal("303000.00")
    # Pays the first installment off and 500.00 of the second's interest.
    repayment = pay(loan, "101500.00", "CB-1", staff["admin"])
    first = Installment.query.filter_by(loan_id=loan.id, seq=1).one()
    assert first.paid_off_on == dt.date(2026, 3, 2)
    assert {i.business_key: i.status for i in reminder_instances(loan)}["installment:1"] \
        == "cancelled"
    originals = allocation_rows(repayment.id)
    assert len(originals) == 3 and all(row[4] is None for row in originals)
    assert verify() == []

    clock.set_now(dt.datetime(2026, 3, 3, 2, tzinfo=UTC))
    reversal = request_reversal(repayment.id, "  The debit bounced.  ", staff["clerk"])
    assert (reversal.status, reversal.reason, reversal.requested_by_id) == (
        "pending", "The debit bounced.", staff["clerk"].id)
    assert outstanding(loan) == before - Decimal("101500.00")  # nothing moved yet
    assert AuditEvent.query.filter_by(action="ledger.reversal_requested").count() == 1
    assert verify() == []

    decided = decide_reversal(reversal.id, True, "bank confirmed", staff["head"])
    assert decided.status == "approved" and decided.decided_by_id == staff["head"].id
    db.session.expire_all()
    rows = allocation_rows(repayment.id)
    assert rows[:3] == originals  # the original rows are untouched
    negated = rows[3:]
    assert [(r[1], r[2], -r[3], r[4]) for r in negated] == [
        (r[1], r[2], r[3], reversal.id) for r in originals]
    assert outstanding(loan) == before
    assert Installment.query.filter_by(loan_id=loan.id, seq=1).one().paid_off_on is None
    repayment = db.session.get(Repayment, repayment.id)
    assert repayment.reversed_at == clock.now() or \
        repayment.reversed_at.replace(tzinfo=UTC) == clock.now()
    # The reopened installment, not yet due, has its reminder back.
    running = [i.business_key for i in reminder_instances(loan) if i.status == "running"]
    assert running.count("installment:1") == 1
    event = AuditEvent.query.filter_by(action="ledger.reversal_approved").one()
    assert event.actor_id == staff["head"].id
    assert {k: event.data[k] for k in ("principal", "interest", "penalty", "outstanding",
                                       "outstanding_before", "external_ref")} == {
        "principal": "100000.00", "interest": "1500.00", "penalty": "0.00",
        "outstanding": "303000.00", "outstanding_before": "201500.00", "external_ref": "CB-1"}
    assert event.data["reopened"] == [1]
    assert verify() == []
    # Reversed once is reversed: another request is refused.
    with pytest.raises(Conflict) as err:
        request_reversal(repayment.id, "again", staff["clerk"])
    assert err.value.code == "reversal_done"


def test_requester_and_poster_cannot_decide(app, serviced, staff):  # noqa: F811
    loan = serviced()
    by_plo = pay(loan, "1000.00", "CB-1", staff["plo"])  # posted by a post-loan officer
    asked = request_reversal(by_plo.id, "bounced", staff["clerk"])
    with pytest.raises(NotAllowed) as err:
        decide_reversal(asked.id, True, "", staff["plo"])  # the poster
    assert err.value.code == "four_eyes"
    other = pay(loan, "2000.00", "CB-2", staff["admin"])
    own = request_reversal(other.id, "typed twice", staff["plo2"])
    with pytest.raises(NotAllowed) as err:
        decide_reversal(own.id, False, "", staff["plo2"])  # the requester
    assert err.value.code == "four_eyes"
    with pytest.raises(NotAllowed) as err:
        decide_reversal(own.id, True, "", staff["clerk"])  # back office may only ask
    assert err.value.code == "wrong_role"
    with pytest.raises(NotAllowed):
        request_reversal(other.id, "x", staff["collector"])
    assert {r.status for r in Reversal.query} == {"pending"}
    assert outstanding(loan) == Decimal("300000.00")
    assert verify() == []
    # Someone else decides; a second decision finds it decided (409).
    decide_reversal(asked.id, True, "", staff["plo2"])
    with pytest.raises(Conflict) as err:
        decide_reversal(asked.id, False, "", staff["head"])
    assert err.value.code == "reversal_decided"
    assert outstanding(loan) == Decimal("301000.00")
    assert verify() == []


def test_reject_changes_no_money_and_allows_a_new_request(app, serviced, staff):  # noqa: F811
    loan = serviced()
    repayment = pay(loan, "101000.00", "CB-1", staff["admin"])
    rows = allocation_rows(repayment.id)
    before = outstanding(loan)
    reversal = request_reversal(repayment.id, "bounced?", staff["clerk"])
    rejected = decide_reversal(reversal.id, False, "the money arrived", staff["head"])
    assert (rejected.status, rejected.decision_note) == ("rejected", "the money arrived")
    assert allocation_rows(repayment.id) == rows
    assert outstanding(loan) == before
    assert db.session.get(Repayment, repayment.id).reversed_at is None
    assert Installment.query.filter_by(loan_id=loan.id, seq=1).one().paid_off_on is not None
    assert AuditEvent.query.filter_by(action="ledger.reversal_rejected").count() == 1
    assert verify() == []
    # A rejected reversal does not block a later one.
    again = request_reversal(repayment.id, "bounced after all", staff["clerk"])
    assert again.status == "pending"
    assert verify() == []


def test_one_pending_reversal_per_repayment(app, serviced, staff, monkeypatch):  # noqa: F811
    loan = serviced()
    repayment = pay(loan, "1000.00", "CB-1", staff["admin"])
    request_reversal(repayment.id, "bounced", staff["clerk"])
    with pytest.raises(Conflict) as err:
        request_reversal(repayment.id, "bounced too", staff["plo"])
    assert err.value.code == "reversal_pending" and err.value.status == 409
    # Should the check miss it (a race), the partial unique index answers the same.
    monkeypatch.setattr("ledger.reversals.pending_reversal", lambda repayment_id: None)
    with pytest.raises(Conflict) as err:
        request_reversal(repayment.id, "bounced too", staff["plo"])
    assert err.value.code == "reversal_pending"
    assert Reversal.query.count() == 1
    assert AuditEvent.query.filter_by(action="ledger.reversal_requested").count() == 1
    assert verify() == []


def test_reason_note_and_unknown_rows(app, serviced, staff):  # noqa: F811
    loan = serviced()
    repayment = pay(loan, "1000.00", "CB-1", staff["admin"])
    for reason in ("", "   ", None, "x" * 2001):
        with pytest.raises(InvalidData) as err:
            request_reversal(repayment.id, reason, staff["clerk"])
        assert list(err.value.field_errors) == ["reason"]
    with pytest.raises(NotFound):
        request_reversal(repayment.id + 99, "bounced", staff["clerk"])
    reversal = request_reversal(repayment.id, "x" * 2000, staff["clerk"])
    with pytest.raises(InvalidData) as err:
        decide_reversal(reversal.id, True, "n" * 2001, staff["head"])
    assert list(err.value.field_errors) == ["note"]
    with pytest.raises(InvalidData) as err:  # a string is read, never taken as a yes
        decide_reversal(reversal.id, "no", "", staff["head"])
    assert list(err.value.field_errors) == ["decision"]
    with pytest.raises(NotFound):
        decide_reversal(reversal.id, True, "", staff["head"], loan_id=loan.id + 1)
    assert db.session.get(Reversal, reversal.id).status == "pending"


def test_a_case_in_closure_refuses(app, serviced, staff):  # noqa: F811
    loan = serviced()
    part = pay(loan, "3000.00", "CB-1", staff["admin"])
    pending = request_reversal(part.id, "bounced", staff["clerk"])
    rest = pay(loan, "300000.00", "CB-2", staff["admin"])
    assert db.session.get(Loan, loan.id).status == "closing"
    with pytest.raises(Conflict) as err:
        request_reversal(rest.id, "bounced", staff["clerk"])
    assert err.value.code == "reversal_case_closing"
    # A reversal asked for before closure cannot be approved now, only rejected.
    with pytest.raises(Conflict) as err:
        decide_reversal(pending.id, True, "", staff["head"])
    assert err.value.code == "reversal_case_closing"
    assert db.session.get(Reversal, pending.id).status == "pending"
    assert outstanding(loan) == 0
    assert verify() == []
    decide_reversal(pending.id, False, "the case is closing", staff["head"])
    db.session.get(Loan, loan.id).status = "closed"
    db.session.commit()
    with pytest.raises(Conflict) as err:
        request_reversal(part.id, "bounced", staff["clerk"])
    assert err.value.code == "reversal_case_closing"
    assert verify() == []


def test_reversal_of_an_overdue_payment_restages_the_loan(app, serviced, staff):  # noqa: F811
    from cases.staging import run_daily
    loan = serviced()
    clock.set_now(dt.datetime(2026, 5, 8, 2, tzinfo=UTC))
    run_daily(dt.date(2026, 5, 8))
    repayment = pay(loan, "101035.75", "LATE", staff["admin"], paid_at="2026-05-08")
    assert db.session.get(Loan, loan.id).stage == "current"
    reversal = request_reversal(repayment.id, "bounced", staff["clerk"])
    decide_reversal(reversal.id, True, "", staff["head"])
    loan = db.session.get(Loan, loan.id)
    assert (loan.dpd, loan.stage) == (2, "dpd_1_3")
    assert loan.outstanding == Decimal("303035.75")
    assert verify() == []
    # The days since the last accrual are charged by the next daily run, once.
    clock.set_now(dt.datetime(2026, 5, 9, 2, tzinfo=UTC))
    run_daily(dt.date(2026, 5, 9))
    assert verify() == []


def test_web_routes(app, serviced, staff):  # noqa: F811
    loan = serviced()
    repayment = pay(loan, "101000.00", "CB-1", staff["admin"])
    clerk, head, plo = app.test_client(), app.test_client(), app.test_client()
    login(clerk, "clerk"), login(head, "head"), login(plo, "plo")
    base = f"/cases/{loan.loan_no}"
    url = f"{base}/repayments/{repayment.id}/reversal"

    empty = clerk.post(url, data={"reason": " "}, headers=EN, follow_redirects=True)
    assert "Reason for the reversal: This field is required." in empty.get_data(as_text=True)
    assert Reversal.query.count() == 0

    asked = clerk.post(url, data={"reason": "The debit bounced."}, headers=EN)
    assert asked.status_code == 302 and asked.location.endswith(f"{base}#repayments")
    reversal = Reversal.query.one()
    assert (reversal.status, reversal.requested_by_id) == ("pending", staff["clerk"].id)
    page = clerk.get(base, headers=EN).get_data(as_text=True)
    assert "Reversal of repayment CB-1 requested" in page

    again = clerk.post(url, data={"reason": "again"}, headers=EN, follow_redirects=True)
    assert "already waiting for a decision" in again.get_data(as_text=True)
    assert Reversal.query.count() == 1

    decision = f"{base}/reversals/{reversal.id}/decision"
    assert clerk.post(decision, data={"decision": "approve"}).status_code == 403  # role
    bad = head.post(decision, data={"decision": "maybe"}, headers=EN, follow_redirects=True)
    assert "Not a valid choice" in bad.get_data(as_text=True)
    # The requester may not decide: a 403 page saying why.
    plo_asked = request_reversal(pay(loan, "10.00", "CB-2", staff["admin"]).id, "typo",
                                 staff["plo"])
    own = plo.post(f"{base}/reversals/{plo_asked.id}/decision", data={"decision": "approve"},
                   headers=EN)
    assert own.status_code == 403 and "Four eyes" in own.get_data(as_text=True)

    done = head.post(decision, data={"decision": "approve", "note": "bank says so"},
                     headers=EN, follow_redirects=True)
    assert "Reversal approved: 101000.00 of repayment CB-1 taken back" in done.get_data(
        as_text=True)
    assert db.session.get(Reversal, reversal.id).status == "approved"
    late = plo.post(decision, data={"decision": "reject"}, headers=EN, follow_redirects=True)
    assert "already decided this reversal" in late.get_data(as_text=True)
    rejected = head.post(f"{base}/reversals/{plo_asked.id}/decision",
                         data={"decision": "reject"}, headers=EN, follow_redirects=True)
    assert "Reversal rejected" in rejected.get_data(as_text=True)
    assert outstanding(loan) == Decimal("302990.00")
    assert verify() == []
    # A reversal of another case's repayment is not found through this case.
    assert "does not exist on this case" in clerk.post(
        f"/cases/{loan.loan_no}/repayments/999/reversal", data={"reason": "x"}, headers=EN,
        follow_redirects=True).get_data(as_text=True)


def test_api_routes(app, serviced, staff, token_for):  # noqa: F811
    loan = serviced()
    pay(loan, "101000.00", "CB-1", staff["admin"])
    client = app.test_client()
    url = f"/api/v1/loans/{loan.loan_no}/repayments/CB-1/reversal"
    assert client.post(url, json={}, headers=token_for("clerk")).status_code == 400
    missing = client.post(f"/api/v1/loans/{loan.loan_no}/repayments/NOPE/reversal",
                          json={"reason": "x"}, headers=token_for("clerk"))
    assert missing.status_code == 404
    created = client.post(url, json={"reason": "bounced"}, headers=token_for("clerk"))
    assert created.status_code == 201
    body = created.get_json()
    assert {k: body[k] for k in ("status", "external_ref", "amount", "requested_by",
                                 "loan_no")} == {
        "status": "pending", "external_ref": "CB-1", "amount": "101000.00",
        "requested_by": "clerk", "loan_no": loan.loan_no}
    assert client.post(url, json={"reason": "again"},
                       headers=token_for("plo")).status_code == 409
    decision = f"/api/v1/reversals/{body['id']}/decision"
    bad = client.post(decision, json={"decision": "yes"}, headers=token_for("head"))
    assert bad.status_code == 400 and "decision" in bad.get_json()["field_errors"]
    assert client.post(decision, json={"decision": "approve"},
                       headers=token_for("clerk")).status_code == 403
    ok = client.post(decision, json={"decision": "approve", "note": "confirmed"},
                     headers=token_for("head"))
    assert ok.status_code == 200
    assert {k: ok.get_json()[k] for k in ("status", "decided_by", "outstanding")} == {
        "status": "approved", "decided_by": "head", "outstanding": "303000.00"}
    assert ok.get_json()["repayment_reversed_at"] is not None
    assert client.post(decision, json={"decision": "reject"},
                       headers=token_for("plo")).status_code == 409
    assert client.post(url, json={"reason": "x"}, headers=token_for("clerk")).status_code \
        == 409
    assert client.post("/api/v1/reversals/999/decision", json={"decision": "reject"},
                       headers=token_for("head")).status_code == 404
    assert verify() == []


def test_compliance_is_refused(app, serviced, staff, token_for):  # noqa: F811
    create_user("auditor", PASSWORD, ["compliance"])
    loan = serviced()
    repayment = pay(loan, "1000.00", "CB-1", staff["admin"])
    reversal = request_reversal(repayment.id, "bounced", staff["clerk"])
    web = app.test_client()
    login(web, "auditor")
    base = f"/cases/{loan.loan_no}"
    assert web.post(f"{base}/repayments/{repayment.id}/reversal",
                    data={"reason": "x"}).status_code == 403
    assert web.post(f"{base}/reversals/{reversal.id}/decision",
                    data={"decision": "approve"}).status_code == 403
    api = token_for("auditor")
    assert web.post(f"/api/v1/loans/{loan.loan_no}/repayments/CB-1/reversal",
                    json={"reason": "x"}, headers=api).status_code == 403
    assert web.post(f"/api/v1/reversals/{reversal.id}/decision",
                    json={"decision": "approve"}, headers=api).status_code == 403
    assert db.session.get(Reversal, reversal.id).status == "pending"
    assert Reversal.query.count() == 1


def render(app, loan, user):
    with app.test_request_context(headers=EN), force_locale("en"):
        return render_template_string('{% include "ledger/reversals.html" %}', loan=loan,
                                      **reversal_context(loan, user))


def test_the_include_offers_what_each_user_may_do(app, serviced, staff):  # noqa: F811
    auditor = create_user("auditor", PASSWORD, ["compliance"])
    loan = serviced()
    assert render(app, loan, staff["clerk"]).strip() == ""  # no repayments yet
    first = pay(loan, "1000.00", "CB-1", staff["admin"])
    pay(loan, "2000.00", "CB-2", staff["admin"])
    html = render(app, loan, staff["clerk"])
    assert html.count('method="post"') == 2 and "Request reversal" in html
    assert f'<label for="reversal-reason-{first.id}">' in html
    assert f'id="reversal-reason-{first.id}"' in html
    reversal = request_reversal(first.id, "The debit bounced.", staff["clerk"])
    asker = render(app, loan, staff["clerk"])
    assert "Waiting for a decision" in asker and "The debit bounced." in asker
    assert "Requested by clerk" in asker
    assert "/decision" not in asker and asker.count('method="post"') == 1
    head = render(app, loan, staff["head"])
    assert f"/reversals/{reversal.id}/decision" in head
    assert f'<label for="reversal-note-{reversal.id}">' in head
    assert 'value="approve"' in head and 'value="reject"' in head
    assert "/reversal\"" not in head  # a department head does not ask
    assert 'method="post"' not in render(app, loan, auditor)
    decide_reversal(reversal.id, True, "confirmed", staff["head"])
    after = render(app, loan, staff["plo"])
    assert "Reversed" in after and "Approved by head" in after and "confirmed" in after
    assert after.count('method="post"') == 1  # only CB-2 can still be reversed
