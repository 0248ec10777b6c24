"""The compliance case timeline, the case as of a date, and the audited dossier."""
import datetime as dt
from decimal import Decimal

from audit.models import AuditEvent
from cases.records import log_contact
from ledger.repayments import post_repayment
from cases.staging import run_daily
from compliance.timeline import state_as_of, timeline
from tests.conftest import login
from tests.test_servicing import serviced  # noqa: F401  (fixture)
from workflows import clock

UTC = dt.timezone.utc


def busy_case(serviced, users):  # noqa: F811
    """A handed-over loan with a contact log entry (Mar 10), a stage change (May 8) and a
    repayment (May 12)."""
    loan = serviced()
    clock.set_now(dt.datetime(2026, 3, 10, 2, tzinfo=UTC))
    log_contact(loan, users["am"], "call", outcome="reached", number="13800138000", note="电话回访")
    clock.set_now(dt.datetime(2026, 5, 8, 2, tzinfo=UTC))
    run_daily(dt.date(2026, 5, 8))
    clock.set_now(dt.datetime(2026, 5, 12, 2, tzinfo=UTC))
    post_repayment(loan, {"amount": "101000.00", "paid_at": "2026-05-12T10:00:00+08:00",
                          "external_ref": "TL-1"}, users["plo"])
    return loan


def test_timeline_orders_and_classifies(app, serviced, users):  # noqa: F811
    loan = busy_case(serviced, users)
    entries = timeline(loan)
    ats = [(e["event"].at, e["event"].id) for e in entries]
    assert ats == sorted(ats)
    kinds = [e["kind"] for e in entries]
    for kind in ("process", "contact", "stage", "repayment"):
        assert kind in kinds
    order = [e["event"].action for e in entries]
    assert order.index("contact.logged") < order.index("case.stage_changed") \
        < order.index("repayment.posted")
    completed = [e for e in entries if e["event"].action == "task.completed"]
    assert completed and all(e["pairs"] for e in completed)  # the submitted data, readable


def test_filters_by_kind_and_person(app, serviced, users):  # noqa: F811
    loan = busy_case(serviced, users)
    only = timeline(loan, kinds={"repayment"})
    assert "repayment.posted" in [e["event"].action for e in only]
    assert {e["kind"] for e in only} == {"repayment"}
    two = {e["kind"] for e in timeline(loan, kinds={"contact", "stage"})}
    assert two == {"contact", "stage"}
    by_am = timeline(loan, user="am")
    assert by_am and all(e["event"].actor.username == "am" for e in by_am)
    assert "contact.logged" in [e["event"].action for e in by_am]
    client = app.test_client()
    login(client, "compliance")
    page = client.get(f"/cases/{loan.loan_no}/timeline?kind=repayment&user=plo")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "TL-1" in html and "电话回访" not in html
    assert client.get(f"/cases/{loan.loan_no}/timeline?as_of=2026-13-01").status_code == 400


def test_as_of_before_a_repayment_shows_the_earlier_balance(app, serviced, users):  # noqa: F811
    loan = busy_case(serviced, users)
    before = state_as_of(loan, dt.date(2026, 5, 10))
    after = state_as_of(loan, dt.date(2026, 5, 12))
    # The penalty booked by the daily run of May 8 counts from then on; the repayment posted
    # on May 12 first took the penalty accrued up to that day (107.26).
    assert before["outstanding"] == Decimal("303035.75")
    assert after["outstanding"] == Decimal("202107.26")
    assert (before["dpd"], before["stage"]) == (2, "dpd_1_3")
    early = state_as_of(loan, dt.date(2026, 3, 5))
    assert (early["dpd"], early["stage"]) == (0, "current")
    assert "repayment.posted" not in [e["event"].action
                                      for e in timeline(loan, as_of=dt.date(2026, 5, 10))]
    client = app.test_client()
    login(client, "compliance")
    html = client.get(f"/cases/{loan.loan_no}/timeline?as_of=2026-05-10").get_data(as_text=True)
    assert "303,035.75" in html and "TL-1" not in html


def test_dossier_html_has_hashes_and_is_audited(app, serviced, users):  # noqa: F811
    loan = busy_case(serviced, users)
    client = app.test_client()
    login(client, "compliance")
    page = client.get(f"/cases/{loan.loan_no}/dossier")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    event = AuditEvent.query.filter_by(case_id=loan.id, action="repayment.posted").one()
    assert event.hash in html and event.hash[:16] in html
    assert "print.css" in html
    exports = AuditEvent.query.filter_by(case_id=loan.id, action="export.dossier").all()
    assert [e.data["format"] for e in exports] == ["html"]
    assert exports[0].actor.username == "compliance"


def test_dossier_pdf_is_a_pdf_and_audited(app, serviced, users):  # noqa: F811
    loan = busy_case(serviced, users)
    client = app.test_client()
    login(client, "compliance")
    pdf = client.get(f"/cases/{loan.loan_no}/dossier.pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    assert b"STSong-Light" in pdf.data  # Chinese through the built-in CID font
    exports = AuditEvent.query.filter_by(case_id=loan.id, action="export.dossier").all()
    assert [(e.data["format"], e.actor.username) for e in exports] == [("pdf", "compliance")]


def test_access(app, serviced, users):  # noqa: F811
    loan = serviced()
    other = app.test_client()
    login(other, "am2")
    for path in ("timeline", "dossier", "dossier.pdf"):
        assert other.get(f"/cases/{loan.loan_no}/{path}").status_code == 403
    assert not AuditEvent.query.filter_by(action="export.dossier").count()
    compliance = app.test_client()
    login(compliance, "compliance")
    assert compliance.get(f"/cases/{loan.loan_no}/timeline").status_code == 200
    case_page = compliance.get(f"/cases/{loan.loan_no}").get_data(as_text=True)
    assert f"/cases/{loan.loan_no}/timeline" in case_page
    assert f"/cases/{loan.loan_no}/dossier" in case_page


def test_kind_of_decisions_and_actions():
    from compliance.timeline import kind_of
    assert kind_of("task.completed", {"data": {"review_decision": "approve",
                                               "review_comment": "ok"}}) == "approval"
    assert kind_of("task.completed", {"data": {"ledger_no": "TZ"}}) == "process"
    assert kind_of("extension.approved") == "approval"
    assert kind_of("task.reassigned") == "reassignment"
    assert kind_of("document.uploaded") == "document"
    assert kind_of("collection.call_logged") == "contact"
    assert kind_of("export.dossier") == "export"
    assert kind_of("case.created") == "case"
