"""The revaluation process (issue 16): a post-loan officer enters, a different person
reviews (four eyes), approved → the valuation is stored and the case's LTV changes; sent back
→ the same officer corrects."""
import datetime as dt
from decimal import Decimal

import pytest

from accounts.operations import create_user
from cases.models import Loan
from extensions import db
from guarantees.collateral import business_key, ltv, start_revaluation
from guarantees.models import CollateralValuation
from tests.conftest import PASSWORD, csrf_from, login, simultaneous_posts
from workflows.errors import InvalidData, NotAllowed, WorkflowError
from workflows.inbox import open_tasks_of_case
from workflows.tasks import claim_task, complete_task

ENTRY = {"new_value": "400000.00", "valued_on": "2026-03-02", "method": "appraisal",
         "valuer": "浙江中联资产评估有限公司", "valuation_note": "市场下行"}


@pytest.fixture
def case(new_loan):
    return new_loan("R-1", maturity_on="2026-12-31", collateral=[{
        "kind": "mortgage", "description": "厂房", "valuation": "1000000.00",
        "registration_no": "浙(2026)余杭不动产第00001号", "asset_type": "real_estate"}])


@pytest.fixture
def staff(app):
    return {"both": create_user("both", PASSWORD, ["post_loan_officer", "risk_manager"]),
            "rm": create_user("rm", PASSWORD, ["risk_manager"])}


def task(loan, bpmn_id):
    return next(t for t in open_tasks_of_case(loan.id) if t.bpmn_id == bpmn_id)


def test_four_eyes_approval_updates_the_ltv(app, case, users, staff):
    loan = db.session.get(Loan, case.id)
    assert ltv(loan)[0] == Decimal("0.5000")
    start_revaluation(loan, loan.collateral[0].id, users["plo"])
    with pytest.raises(WorkflowError):  # a second one of the same item
        start_revaluation(loan, loan.collateral[0].id, users["plo"])
    entry = task(loan, "enter_valuation")
    claim_task(entry.id, staff["both"])
    with pytest.raises(InvalidData) as bad:
        complete_task(entry.id, staff["both"], data=dict(ENTRY, valued_on="2027-01-01"))
    assert "valued_on" in bad.value.field_errors
    complete_task(entry.id, staff["both"], data=ENTRY)
    review = task(loan, "review_valuation")
    assert review.lane == "risk_manager"
    with pytest.raises(WorkflowError):  # four eyes: not the one who entered it
        claim_task(review.id, staff["both"])
    claim_task(review.id, staff["rm"])
    # the reviewer reads the sums with separators: the latest valuation, the principal, the new
    client = app.test_client()
    login(client, "rm")
    page = client.get(f"/tasks/{review.id}", headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert "1,000,000.00" in html and "500,000.00" in html and "400,000.00" in html, html
    complete_task(review.id, staff["rm"], data={"review_result": "approved"})
    row = CollateralValuation.query.filter_by(source="revaluation").one()
    assert (row.value, row.entered_by_id, row.reviewed_by_id, row.method) == (
        Decimal("400000.00"), staff["both"].id, staff["rm"].id, "appraisal")
    db.session.expire_all()
    assert ltv(db.session.get(Loan, case.id))[0] == Decimal("1.2500")


def test_sent_back_the_same_officer_corrects(case, users, staff):
    loan = db.session.get(Loan, case.id)
    start_revaluation(loan, loan.collateral[0].id, users["plo"])
    entry = task(loan, "enter_valuation")
    claim_task(entry.id, users["plo"])
    complete_task(entry.id, users["plo"], data=ENTRY)
    review = task(loan, "review_valuation")
    claim_task(review.id, staff["rm"])
    complete_task(review.id, staff["rm"], data={"review_result": "returned",
                                                "review_remarks": "评估日期有误"})
    again = task(loan, "enter_valuation")
    assert again.claimed_by_id == users["plo"].id
    with pytest.raises(WorkflowError):
        claim_task(again.id, users["plo2"])
    complete_task(again.id, users["plo"], data=dict(ENTRY, new_value="800000"))
    review = task(loan, "review_valuation")
    claim_task(review.id, staff["rm"])
    complete_task(review.id, staff["rm"], data={"review_result": "approved"})
    assert CollateralValuation.query.filter_by(source="revaluation").one().value == \
        Decimal("800000.00")


def test_staff_start_from_the_case_page(app, case, users):
    client = app.test_client()
    login(client, "compliance")
    url = f"/cases/R-1/collateral/{case.collateral[0].id}/revaluation"
    assert client.post(url, data={}).status_code == 403
    client = app.test_client()
    login(client, "plo")
    page = client.get("/cases/R-1").get_data(as_text=True)
    assert "50.00%" in page
    answer = client.post(url, data={"csrf_token": csrf_from(page)})
    assert answer.status_code == 302
    assert task(case, "enter_valuation").lane == "post_loan_officer"
    assert "Revaluation under way" in client.get(
        "/cases/R-1", headers={"Accept-Language": "en"}).get_data(as_text=True)


def test_only_editors_start_a_revaluation(case, users):
    loan = db.session.get(Loan, case.id)
    with pytest.raises(NotAllowed):
        start_revaluation(loan, loan.collateral[0].id, users["collector"])
    assert dt.date  # (dt used by the other tests' data)


def test_simultaneous_starts_run_one_revaluation(app, case, users):
    """Six officers press "Start a revaluation" at the same moment over real HTTP: one
    process, the others told one is under way (never a 500), on SQLite and PostgreSQL."""
    from workflows.models import ProcessInstance

    loan_id, item_id = case.id, case.collateral[0].id
    db.session.commit()
    statuses = simultaneous_posts(app, "plo", f"/cases/R-1/collateral/{item_id}/revaluation",
                                  {}, 6)
    assert statuses == [302] * 6
    db.session.rollback()
    assert ProcessInstance.query.filter_by(
        case_id=loan_id, business_key=business_key(item_id)).count() == 1
