"""Issue 16, guarantor watch (DOMAIN.md §5.6, §5.7 category 8, §5.3 [002 E]): each guarantor's
status is checked on each inspection and by staff; a check finding the guarantor weaker than
before raises one risk signal; the demand on the guarantor runs from collection to a payment
posted through the ledger; the demo has the story."""
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.operations import create_user
from audit.models import AuditEvent
from cases.models import Guarantor, Loan, RiskSignal
from cases.operations import register_loan
from collection.guarantors import GuarantorDemand
from extensions import db
from guarantees import guarantors as ops
from guarantees.models import GUARANTOR_CAPACITY, LICENCE_STATUSES, GuarantorCheck
from ledger.verify import verify
from tests.conftest import HANDOVER_DATA, PASSWORD, login
from tests.test_collection import (CALL, collection, db_loan, do, overdue,  # noqa: F401
                                   overdue_now, ready, staff)
from tests.test_guarantor_demand import GUARANTORS
from tests.test_inspection_risk import FIRST, REPORT, fire_at
from tests.test_browser import live_server  # noqa: F401 (fixture)
from tests.test_browser_pages import open_page  # noqa: F401 (fixture)
from tests.test_servicing import serviced, three_installment_payload  # noqa: F401 (fixture)
from workflows import clock
from workflows.errors import InvalidData
from workflows.inbox import open_tasks_of_case
from workflows.models import HumanTask, ProcessInstance
from workflows.tasks import complete_task

OK = {"reachable": True, "capacity": "adequate", "court_enforcement": False}
COMPANY_OK = dict(OK, licence_status="normal")


@pytest.fixture
def people(deployed, users):
    users = dict(users)
    users["boss"] = create_user("boss", PASSWORD, ["dept_head"])
    users["risk"] = create_user("risk", PASSWORD, ["risk_manager"])
    return users


def guaranteed(people, loan_no="G-1", manager="am"):
    """A registered loan with a person and a company guarantor, inspected monthly."""
    loan = register_loan(three_installment_payload(loan_no, account_manager=manager,
                                                   guarantors=GUARANTORS), people["admin"])
    complete_task(open_tasks_of_case(loan.id)[0].id, people[manager], data=HANDOVER_DATA)
    complete_task(open_tasks_of_case(loan.id)[0].id, people["plo"],
                  data={"check_result": "complete"})
    complete_task(open_tasks_of_case(loan.id)[0].id, people["plo"], data={
        "ledger_no": "TZ", "risk_group": "normal", "inspection_frequency": "monthly"})
    return db.session.get(Loan, loan.id)


def task(loan, bpmn_id):
    return HumanTask.query.filter_by(case_id=loan.id, bpmn_id=bpmn_id, state="ready").one()


def signals(loan):
    return RiskSignal.query.filter_by(loan_id=loan.id).order_by(RiskSignal.id).all()


def guarantor_section(html):
    start = html.index('<section id="guarantors">')
    return html[start:html.index("</section>", start)]


# ---------------------------------------------------------------- the check and the signal

def test_a_check_records_the_status_now_and_raises_only_when_weaker(app, people):
    loan = guaranteed(people)
    person, company = loan.guarantors
    check = ops.record_check(person, OK, people["am"], "staff")
    person = db.session.get(Guarantor, person.id)
    assert (person.reachable, person.capacity, person.court_enforcement) == (
        True, "adequate", False)
    assert person.checked_at is not None and check.checked_by_id == people["am"].id
    assert check.source == "staff" and check.signal_id is None and signals(loan) == []
    event = AuditEvent.query.filter_by(action="guarantor.checked").one()
    assert event.case_id == loan.id and event.data["guarantor"] == "李强"

    # Unreachable and weakened: one signal of category 8 naming both (in Chinese, as staff
    # write theirs); the audit event keeps the codes, read in the reader's language.
    weaker = ops.record_check(person, dict(OK, reachable=False, capacity="weakened",
                                           capacity_note="名下房产已被查封"),
                              people["plo"], "staff")
    (signal,) = signals(loan)
    assert (signal.category, signal.source, signal.raised_by_id) == (
        8, "guarantor", people["plo"].id)
    assert weaker.signal_id == signal.id
    assert signal.description.startswith("保证人李强状况变差：无法联系；代偿能力减弱\n")
    checked = AuditEvent.query.filter_by(action="guarantor.checked").order_by(
        AuditEvent.id.desc()).first()
    assert checked.data["weaker"] == ["unreachable", "capacity_weakened"]
    assert "名下房产已被查封" in signal.description
    assert ProcessInstance.query.filter_by(id=signal.instance_id).one().status == "running"

    # The same bad status at the next check: nothing raised again.
    ops.record_check(person, dict(OK, reachable=False, capacity="weakened",
                                  capacity_note="仍未恢复"), people["am"], "staff")
    assert len(signals(loan)) == 1
    # Worse again (insufficient) raises; better (reachable, adequate) does not; losing
    # contact once more raises.
    ops.record_check(person, dict(OK, reachable=False, capacity="insufficient",
                                  capacity_note="已无代偿能力"), people["am"], "staff")
    assert len(signals(loan)) == 2 and "代偿能力不足" in signals(loan)[-1].description
    ops.record_check(person, OK, people["am"], "staff")
    assert len(signals(loan)) == 2
    ops.record_check(person, dict(OK, reachable=False), people["am"], "staff")
    assert len(signals(loan)) == 3
    # A company's licence: abnormal raises, revoked raises, abnormal after revoked does not.
    ops.record_check(company, COMPANY_OK, people["am"], "staff")
    ops.record_check(company, dict(COMPANY_OK, licence_status="abnormal"), people["am"],
                     "staff")
    ops.record_check(company, dict(COMPANY_OK, licence_status="revoked"), people["am"],
                     "staff")
    ops.record_check(company, dict(COMPANY_OK, licence_status="abnormal"), people["am"],
                     "staff")
    assert len(signals(loan)) == 5
    assert "营业执照被吊销" in signals(loan)[-1].description
    assert GuarantorCheck.query.filter_by(guarantor_id=company.id).count() == 4


STATUS = st.fixed_dictionaries({
    "reachable": st.sampled_from([None, True, False]),
    "capacity": st.sampled_from((None,) + GUARANTOR_CAPACITY),
    "court_enforcement": st.sampled_from([None, True, False]),
    "licence_status": st.sampled_from((None,) + LICENCE_STATUSES)})


@given(STATUS, STATUS)
def test_weaker_means_some_part_of_the_status_got_worse(previous, now):
    def bad(s):
        return (s["reachable"] is False, ops.CAPACITY_RANK[s["capacity"]],
                s["court_enforcement"] is True, ops.LICENCE_RANK[s["licence_status"]])
    worse = any(n > p for p, n in zip(bad(previous), bad(now)))
    assert bool(ops.findings(previous, now)) == worse
    assert ops.findings(now, now) == []


def test_field_errors_and_nothing_stored(app, people):
    loan = guaranteed(people)
    person, company = loan.guarantors
    with pytest.raises(InvalidData) as err:
        ops.record_check(person, {"capacity": "weakened", "court_enforcement": "yes",
                                  "licence_status": "normal"}, people["am"], "staff")
    assert set(err.value.field_errors) == {"reachable", "capacity_note", "enforcement_note",
                                           "licence_status"}
    with pytest.raises(InvalidData) as err:
        ops.record_check(company, dict(OK, capacity="gone"), people["am"], "staff")
    assert set(err.value.field_errors) == {"capacity", "licence_status"}
    assert GuarantorCheck.query.count() == 0 and signals(loan) == []
    assert db.session.get(Guarantor, person.id).checked_at is None


# ---------------------------------------------------------------- on each inspection

def test_the_inspection_report_waits_for_each_guarantor_check(app, people):
    loan = guaranteed(people)
    person, company = loan.guarantors
    fire_at(FIRST + dt.timedelta(seconds=1))
    clock.set_now(FIRST + dt.timedelta(hours=2))  # the inspection day, 11:00
    inspect = task(loan, "inspect")
    with pytest.raises(InvalidData) as err:
        complete_task(inspect.id, people["am"], data=REPORT)
    (message,) = err.value.field_errors[ops.REPORT_FIELD]
    assert "李强" in message and "杭州信达担保有限公司" in message
    db.session.rollback()  # the refused completion's transaction (and SQLite's write lock)

    # The task page shows the panel and links to the check form of each guarantor.
    client = app.test_client()
    login(client, "am")
    page = client.get(f"/tasks/{inspect.id}", headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert 'id="guarantor-panel"' in html and "Not checked in this inspection" in html
    url = f"/cases/{loan.loan_no}/guarantors/{person.id}/check?task={inspect.id}"
    assert url in html
    answer = client.post(url, data={f"g{person.id}-reachable": "yes",
                                    f"g{person.id}-capacity": "adequate",
                                    f"g{person.id}-court_enforcement": "no"})
    assert answer.status_code == 302 and answer.location.endswith(
        f"/tasks/{inspect.id}#guarantor-panel")
    check = GuarantorCheck.query.one()
    assert (check.source, check.task_id, check.instance_id) == (
        "inspection", inspect.id, inspect.instance_id)
    # One still missing: the web form shows the refusal on the report's guarantor field.
    refused = client.post(f"/tasks/{inspect.id}", data=REPORT,
                          headers={"Accept-Language": "en"})
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "Check each guarantor first" in text and "杭州信达担保有限公司" in text
    assert 'id="guarantor_note-error"' in text
    ops.record_check(company, COMPANY_OK, people["am"], "inspection", task=inspect)
    complete_task(inspect.id, people["am"], data=REPORT)
    done = db.session.get(HumanTask, inspect.id)
    assert sorted(done.data["guarantor_checks"]) == sorted(
        c.id for c in GuarantorCheck.query)

    # The four-eyes reviewer sees the checks; a report sent back keeps this cycle's checks.
    login(client, "plo")
    review = client.get(f"/tasks/{task(loan, 'review').id}", headers={"Accept-Language": "en"})
    text = review.get_data(as_text=True)
    assert "Guarantors checked in this inspection" in text and "Reachable" in text
    assert "Record the check" not in text
    complete_task(task(loan, "review").id, people["plo"], data={
        "review_result": "returned", "review_remarks": "补充银行流水"})
    complete_task(task(loan, "inspect").id, people["am"], data=REPORT)
    complete_task(task(loan, "review").id, people["plo"], data={"review_result": "approved"})
    complete_task(task(loan, "approve").id, people["boss"],
                  data={"approval_result": "approved"})
    # The next inspection needs new checks.
    instance = ProcessInstance.query.filter_by(case_id=loan.id,
                                               business_key="inspection").one()
    second = instance.next_timer_at.replace(tzinfo=dt.timezone.utc)
    fire_at(second + dt.timedelta(seconds=1))
    clock.set_now(second + dt.timedelta(hours=2))
    with pytest.raises(InvalidData):
        complete_task(task(loan, "inspect").id, people["am"], data=REPORT)


# ---------------------------------------------------------------- the check form

@pytest.mark.parametrize("user, status", [("am", 200), ("plo", 200), ("risk", 200),
                                          ("am2", 403), ("collector", 403),
                                          ("compliance", 403)])
def test_who_may_record_a_check(app, people, user, status):
    loan = guaranteed(people)
    person = loan.guarantors[0]
    client = app.test_client()
    login(client, user)
    url = f"/cases/{loan.loan_no}/guarantors/{person.id}/check"
    assert client.get(url).status_code == status
    answer = client.post(url, data={f"g{person.id}-reachable": "yes",
                                    f"g{person.id}-capacity": "adequate",
                                    f"g{person.id}-court_enforcement": "no"})
    assert answer.status_code == (302 if status == 200 else 403)
    assert GuarantorCheck.query.count() == (1 if status == 200 else 0)


def test_the_form_is_csrf_protected_and_shows_field_errors(app, people):
    loan = guaranteed(people)
    person, company = loan.guarantors
    client = app.test_client()
    login(client, "am")
    url = f"/cases/{loan.loan_no}/guarantors/{company.id}/check"
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        page = client.get(url).get_data(as_text=True)
        assert f'name="g{company.id}-csrf_token"' in page
        assert client.post(url, data={f"g{company.id}-reachable": "yes"}).status_code == 400
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert GuarantorCheck.query.count() == 0
    bad = client.post(url, data={f"g{company.id}-reachable": "yes",
                                 f"g{company.id}-capacity": "weakened",
                                 f"g{company.id}-court_enforcement": "yes"},
                      headers={"Accept-Language": "en"})
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    for name in ("capacity_note", "enforcement_note", "licence_status"):
        assert f'id="g{company.id}-{name}-error"' in html
    assert "Say what weakened the guarantor" in html
    assert GuarantorCheck.query.count() == 0
    # A person has no licence field.
    page = client.get(f"/cases/{loan.loan_no}/guarantors/{person.id}/check").get_data(
        as_text=True)
    assert "licence_status" not in page
    # A good check of a weaker company: flashed, the case page shows it in words.
    good = client.post(url, data={f"g{company.id}-reachable": "no",
                                  f"g{company.id}-capacity": "adequate",
                                  f"g{company.id}-court_enforcement": "no",
                                  f"g{company.id}-licence_status": "abnormal"})
    assert good.status_code == 302 and len(signals(loan)) == 1
    case = client.get(f"/cases/{loan.loan_no}", headers={"Accept-Language": "en"})
    html = case.get_data(as_text=True)
    section = guarantor_section(html)
    assert "Unreachable" in section and "Listed for abnormal operation" in section
    assert "Checks of 杭州信达担保有限公司 (1)" in section and "abnormal<" not in section
    assert f"g{person.id}-reachable" in section  # the inline form of each guarantor


# ---------------------------------------------------------------- the demand, end to end

def test_lost_contact_demands_from_the_guarantor_through_to_a_posted_payment(
        app, overdue, staff):
    loan = overdue(guarantors=GUARANTORS)  # 8 May: 101 035.75 overdue, collection runs
    before = db_loan(loan).outstanding
    do(loan, "phone_collection", staff["collector"], **dict(
        CALL, answered_by="nobody", collection_result="switched_off",
        client_type="lost_contact", next_step="demand_guarantor"))
    assert ready(loan) == ["send_demand_notice"]
    do(loan, "send_demand_notice", staff["collector"], demand_guarantor_no=1,
       demand_sent_on="2026-05-08", demand_channel="registered_mail",
       demand_receipt="signed")
    client = app.test_client()
    login(client, "collector")
    html = client.get(f"/cases/{loan.loan_no}", headers={"Accept-Language": "en"}).get_data(
        as_text=True)
    assert "Demands on the guarantors" in html and "¥101,035.75" in html
    assert "Awaiting the answer" in html and "Registered mail" in html
    do(loan, "record_guarantor_response", staff["collector"], demand_response="agreed",
       demand_promised_amount="60000.00", demand_promised_on="2026-05-08")
    do(loan, "record_guarantor_payment", staff["collector"], guarantor_paid_amount="60000.00",
       guarantor_paid_on="2026-05-08", guarantor_payment_ref="BOC-0508-1")
    demand = GuarantorDemand.query.one()
    assert (demand.paid_amount, demand.result) == (Decimal("60000.00"), "partly_paid")
    assert db_loan(loan).outstanding == before - Decimal("60000.00")
    assert not verify([loan.id])
    # Collection sees the part payment and goes back to its calls.
    assert collection(loan).status == "running" and ready(loan) == ["phone_collection"]
    assert Decimal(ready(loan, "phone_collection").context["overdue_amount"]) == \
        overdue_now(loan)
    html = client.get(f"/cases/{loan.loan_no}", headers={"Accept-Language": "en"}).get_data(
        as_text=True)
    section = guarantor_section(html)
    assert "Paid in part" in section and "¥60,000.00" in section and "partly_paid" not in section


# ---------------------------------------------------------------- the demo

def test_the_demo_demands_payment_from_the_guarantor_of_a_lost_borrower(app, deployed):
    from demo import load_demo
    load_demo()
    loan = Loan.query.filter_by(loan_no="DH2026-0022").one()
    demand = GuarantorDemand.query.filter_by(loan_id=loan.id).one()
    assert demand.guarantor.kind == "company" and demand.response is None
    waiting = HumanTask.query.filter_by(case_id=loan.id, state="ready",
                                        bpmn_id="record_guarantor_response").one()
    assert waiting.lane == "collector"
    assert all(g.checked_at is not None for g in loan.guarantors)
    weaker = Loan.query.filter_by(loan_no="DH2026-0019").one()
    (signal,) = RiskSignal.query.filter_by(loan_id=weaker.id, source="guarantor").all()
    assert signal.category == 8 and signal.instance_id is not None
    other = Loan.query.filter_by(loan_no="DH2026-0021").one()
    assert other.guarantors and HumanTask.query.filter_by(
        case_id=other.id, state="ready", bpmn_id="phone_collection").count() == 1


# ---------------------------------------------------------------- in the browser

def test_the_guarantor_section_and_form_in_a_phone_browser(capsys, app, people, open_page):
    from tests.test_browser import browser_login, require_chromium
    from tests.test_browser_pages import check
    require_chromium(capsys)
    loan = guaranteed(people)
    person, company = loan.guarantors
    ops.record_check(person, dict(OK, capacity="weakened", capacity_note="房产已抵押"),
                     people["am"], "staff")
    ops.record_check(company, dict(COMPANY_OK, licence_status="abnormal"), people["plo"],
                     "staff")
    page = open_page("phone", "zh-CN")
    problems = []
    browser_login(page, "am")
    page.goto(f"/cases/{loan.loan_no}")
    page.evaluate("document.querySelectorAll('#guarantors details').forEach(d => d.open = true)")
    check(page, "guarantors-case", problems, "phone")
    page.click(f"#guarantor-{company.id}-check button[type=submit]")
    page.wait_for_selector(".invalid-feedback")
    check(page, "guarantors-form-errors", problems, "phone")
    assert page.locator(".invalid-feedback").count() == 4  # reachable, capacity, court, licence
    assert not problems, problems
