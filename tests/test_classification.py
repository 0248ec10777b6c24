"""Five-category classification (issue 14 item 1): the rules on their boundary DPDs, the
extension floor, the dated history, the daily run's hook, rule edits, provisions, and manual
overrides with four eyes."""
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import literal, select

from accounts.operations import create_user
from audit.models import AuditEvent
from cases.models import Loan, LoanExtension
from cases.staging import run_daily
from extensions import db
from portfolio.classification import (categories_of, category_of, classify, rule_category,
                                      rule_category_sql, totals_now)
from portfolio.models import CATEGORIES, CategoryChange, CategoryOverride, LoanCategory
from portfolio.overrides import lift_override, request_override
from portfolio.rules import Rules, current_rules, update_rules
from tests.conftest import PASSWORD, login
from workflows.errors import Conflict, InvalidData, NotAllowed
from workflows.models import HumanTask
from workflows.tasks import complete_task

D1, D2, D3 = dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)
DEFAULT = Rules(min_dpd={"normal": None, "special_mention": 4, "substandard": 91,
                         "doubtful": 271, "loss": 361},
                rates={}, extended_floor="special_mention")


@pytest.fixture
def staff(users):
    made = {name: create_user(name, PASSWORD, roles) for name, roles in (
        ("risk", ["risk_manager"]), ("risk2", ["risk_manager"]), ("boss", ["dept_head"]),
        ("both", ["risk_manager", "dept_head"]))}
    return {**users, **made}


def set_dpd(loan_id, dpd):
    db.session.get(Loan, loan_id).dpd = dpd
    db.session.commit()


def extend(loan):
    db.session.add(LoanExtension(loan_id=loan.id, old_maturity_on=loan.maturity_on,
                                 new_maturity_on=loan.maturity_on + dt.timedelta(days=90),
                                 old_interest_rate=loan.interest_rate,
                                 new_interest_rate=loan.interest_rate))
    db.session.commit()


# ---------------------------------------------------------------- the rule

@pytest.mark.parametrize("dpd, expected", [
    (0, "normal"), (3, "normal"), (4, "special_mention"), (90, "special_mention"),
    (91, "substandard"), (270, "substandard"), (271, "doubtful"), (360, "doubtful"),
    (361, "loss"), (5000, "loss")])
def test_boundaries_in_python_and_in_sql(app, dpd, expected):
    rules = current_rules()
    assert rules.min_dpd == DEFAULT.min_dpd
    assert rule_category(rules, dpd, False) == expected
    assert db.session.scalar(select(rule_category_sql(rules, literal(dpd),
                                                      literal(False)))) == expected


def test_boundaries_through_the_book(app, new_loan):
    dpds = (3, 4, 90, 91, 270, 271, 360, 361)
    loans = [new_loan(f"L-{d}") for d in dpds]
    for loan, dpd in zip(loans, dpds):
        set_dpd(loan.id, dpd)
    counts = classify(D1)
    db.session.commit()
    assert counts["classified_first"] == len(dpds)
    assert categories_of([loan.id for loan in loans]) == dict(zip(
        [loan.id for loan in loans], ["normal", "special_mention", "special_mention",
                                      "substandard", "substandard", "doubtful", "doubtful",
                                      "loss"]))


thresholds = st.lists(st.integers(min_value=1, max_value=800), min_size=4, max_size=4,
                      unique=True).map(sorted)


@settings(max_examples=60, deadline=None)
@given(days=thresholds, floor=st.sampled_from(CATEGORIES),
       dpds=st.lists(st.integers(min_value=0, max_value=1000), min_size=2, max_size=6))
def test_category_is_monotone_in_dpd_and_never_below_the_floor(app, days, floor, dpds):
    rules = Rules(min_dpd=dict(zip(CATEGORIES, [None] + days)), rates={}, extended_floor=floor)
    rank = CATEGORIES.index
    with app.app_context():
        for extended in (False, True):
            ranks = [rank(rule_category(rules, d, extended)) for d in sorted(dpds)]
            assert ranks == sorted(ranks)  # more days past due: never a better category
            if extended:
                assert min(ranks) >= rank(floor)
            sql = db.session.execute(select(*[rule_category_sql(
                rules, literal(d), literal(extended)) for d in dpds])).one()
            assert list(sql) == [rule_category(rules, d, extended) for d in dpds]


def test_extended_loans_are_at_least_the_floor(app, new_loan):
    loan, other = new_loan("L-EXT"), new_loan("L-NOT")
    extend(loan)
    classify(D1)
    db.session.commit()
    assert category_of(loan.id) == "special_mention"
    assert category_of(other.id) == "normal"
    set_dpd(loan.id, 200)  # past the floor, the DPD rules
    classify(D2)
    assert category_of(loan.id) == "substandard"


# ---------------------------------------------------------------- history and the daily run

def test_changes_recorded_with_their_dates_and_only_changes_written(app, new_loan):
    loan = new_loan()
    classify(D1)
    set_dpd(loan.id, 10)
    assert classify(D2)["category_changes"] == 1
    again = classify(D3)
    db.session.commit()
    assert again == {"classified_first": 0, "category_changes": 0,
                     "classification_rows_updated": 0}
    history = [(c.changed_on, c.from_category, c.to_category, c.dpd, c.basis)
               for c in CategoryChange.query.order_by(CategoryChange.id)]
    assert history == [(D1, None, "normal", 0, "rules"),
                       (D2, "normal", "special_mention", 10, "rules")]
    row = db.session.get(LoanCategory, loan.id)
    assert (row.since, row.updated_on) == (D2, D2)
    assert AuditEvent.query.filter_by(action="portfolio.classified").count() == 3


def test_the_daily_run_classifies_after_staging(app, new_loan):
    loan = new_loan()  # one installment at maturity, 2026-09-02
    counts = run_daily(dt.date(2026, 9, 12))  # ten days overdue
    assert counts["category_changes"] == 1
    row = db.session.get(LoanCategory, loan.id)
    assert (row.category, row.since) == ("special_mention", dt.date(2026, 9, 12))
    closed = new_loan("L-CLOSED")
    db.session.get(Loan, closed.id).status = "closed"
    db.session.commit()
    run_daily(dt.date(2026, 9, 13))
    assert db.session.get(LoanCategory, closed.id) is None  # closed loans are not classified


# ---------------------------------------------------------------- rules editing

def test_rule_edits_are_validated_per_field_and_audited(app, staff, new_loan):
    days = {"special_mention": "4", "substandard": "91", "doubtful": "91", "loss": "x"}
    rates = {"normal": "0", "special_mention": "2", "substandard": "150",
             "doubtful": "50", "loss": "100"}
    with pytest.raises(InvalidData) as err:
        update_rules(staff["risk"], days, rates, "nonsense")
    assert set(err.value.field_errors) == {"min_dpd-doubtful", "min_dpd-loss",
                                           "rate-substandard", "extended_floor"}
    assert current_rules().min_dpd == DEFAULT.min_dpd  # nothing stored
    changed = update_rules(staff["risk"], {"special_mention": "8", "substandard": "91",
                                           "doubtful": "181", "loss": "361"},
                           {**rates, "substandard": "30", "special_mention": "2.5"},
                           "substandard")
    assert changed["min_dpd.special_mention"] == [4, 8]
    rules = current_rules()
    assert rules.rates["special_mention"] == Decimal("0.025")
    assert rules.min_dpd["doubtful"] == 181 and rules.extended_floor == "substandard"
    event = AuditEvent.query.filter_by(action="portfolio.rules_changed").one()
    assert event.data["changes"]["provision_rate.substandard"] == {"old": "0.2500",
                                                                  "new": "0.3000"}
    assert event.actor_id == staff["risk"].id
    # The new thresholds take effect when the book is classified next.
    loan = new_loan()
    set_dpd(loan.id, 6)
    classify(D1)
    assert category_of(loan.id) == "normal"


def test_rules_page_for_the_risk_manager_only(app, staff):
    web = app.test_client()
    login(web, "collector")
    assert web.get("/portfolio/classification/rules").status_code == 403
    login(web, "boss")
    page = web.get("/portfolio/classification/rules", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and b"next daily run" in page.data
    assert web.post("/portfolio/classification/rules", data={}).status_code == 403
    login(web, "risk")
    form = {"min_dpd-special_mention": "4", "min_dpd-substandard": "3",
            "min_dpd-doubtful": "271", "min_dpd-loss": "361", "rate-normal": "0",
            "rate-special_mention": "2", "rate-substandard": "25", "rate-doubtful": "50",
            "rate-loss": "100", "extended_floor": "special_mention"}
    bad = web.post("/portfolio/classification/rules", data=form,
                   headers={"Accept-Language": "en"})
    assert bad.status_code == 400
    assert b"Must be more days than the category above it." in bad.data
    # in Chinese too, the page and its errors (a rate out of range among them)
    page = web.get("/portfolio/classification/rules", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200 and "拨备率" in page.get_data(as_text=True)
    bad = web.post("/portfolio/classification/rules", data={**form, "rate-loss": "101"},
                   headers={"Accept-Language": "zh-CN"})
    assert bad.status_code == 400 and "天数须大于上一级分类" in bad.get_data(as_text=True)
    assert "0 至 100" in bad.get_data(as_text=True)
    good = web.post("/portfolio/classification/rules",
                    data={**form, "min_dpd-substandard": "120"})
    assert good.status_code == 302
    assert current_rules().min_dpd["substandard"] == 120


# ---------------------------------------------------------------- provisions

def test_totals_now_per_category(app, new_loan):
    a, b, c = (new_loan(f"L-{n}", principal=p) for n, p in (
        ("A", "100000.00"), ("B", "40000.00"), ("C", "33333.33")))
    set_dpd(b.id, 100)
    set_dpd(c.id, 30)
    classify(D1)
    db.session.commit()
    rows = {r["category"]: r for r in totals_now()}
    assert (rows["normal"]["count"], rows["normal"]["balance"]) == (1, Decimal("100000.00"))
    assert rows["substandard"]["provision"] == Decimal("10000.00")  # 25 % of 40 000
    assert rows["special_mention"]["provision"] == Decimal("666.67")  # 2 % of 33 333.33
    total = rows[None]
    assert total["balance"] == Decimal("173333.33") and total["count"] == 3
    assert total["npl_balance"] == Decimal("40000.00")
    assert total["provision"] == Decimal("10666.67")
    assert totals_now(product="bridge")[-1]["count"] == 0


# ---------------------------------------------------------------- overrides, four eyes

def approval(loan):
    return HumanTask.query.filter_by(case_id=loan.id, process_key="category_override",
                                     state="ready").one()


def test_override_needs_another_person_and_sticks_until_lifted(app, staff, new_loan):
    loan = new_loan()
    with pytest.raises(InvalidData) as err:
        request_override(loan, staff["plo"], "substandard", "  ")
    assert "reason" in err.value.field_errors
    with pytest.raises(InvalidData) as err:
        request_override(loan, staff["plo"], "normal", "same")
    assert "category" in err.value.field_errors
    with pytest.raises(NotAllowed):
        request_override(loan, staff["compliance"], "substandard", "x")
    override = request_override(loan, staff["plo"], "substandard", "借款人主要客户破产")
    assert category_of(loan.id) == "normal"  # nothing changes before the decision
    with pytest.raises(Conflict):  # one pending request per loan
        request_override(loan, staff["risk"], "doubtful", "another")
    task = approval(loan)
    assert task.lane == "risk_manager"
    with pytest.raises(NotAllowed):  # the officer holds no risk manager role
        complete_task(task.id, staff["plo"], data={"override_decision": "approved"})
    complete_task(task.id, staff["risk"], data={"override_decision": "approved"})
    row = db.session.get(LoanCategory, loan.id)
    assert (row.category, row.rule_category, row.basis) == ("substandard", "normal",
                                                            "override")
    change = CategoryChange.query.filter_by(basis="override").one()
    assert (change.from_category, change.to_category, change.reason) == (
        "normal", "substandard", "借款人主要客户破产")
    assert db.session.get(CategoryOverride, override.id).decided_by_id == staff["risk"].id
    # The daily run keeps the rules' category current but not in force.
    set_dpd(loan.id, 20)
    classify(D2)
    db.session.commit()
    row = db.session.get(LoanCategory, loan.id)
    assert (row.category, row.rule_category) == ("substandard", "special_mention")
    # Lifting: a reason, then back to the rules' category at once.
    with pytest.raises(NotAllowed):
        lift_override(loan, staff["plo"], "x")
    with pytest.raises(InvalidData):
        lift_override(loan, staff["risk2"], "")
    lift_override(loan, staff["risk2"], "风险已缓释")
    row = db.session.get(LoanCategory, loan.id)
    assert (row.category, row.basis) == ("special_mention", "rules")
    assert db.session.get(CategoryOverride, override.id).status == "lifted"
    with pytest.raises(Conflict):
        lift_override(loan, staff["risk2"], "again")


def test_the_requester_can_never_approve_and_a_rejection_changes_nothing(app, staff,
                                                                          new_loan):
    loan = new_loan()
    # A risk manager who is also department head asks: the department head decides, and
    # this person may not, in either role.
    request_override(loan, staff["both"], "doubtful", "抵押物灭失")
    task = approval(loan)
    assert task.lane == "dept_head"
    with pytest.raises(NotAllowed):
        complete_task(task.id, staff["both"], data={"override_decision": "approved"})
    with pytest.raises(InvalidData):  # a rejection needs remarks
        complete_task(task.id, staff["boss"], data={"override_decision": "rejected"})
    complete_task(task.id, staff["boss"], data={"override_decision": "rejected",
                                                "override_remarks": "依据不足"})
    assert category_of(loan.id) == "normal"
    assert CategoryOverride.query.one().status == "rejected"
    assert CategoryChange.query.filter_by(basis="override").count() == 0
    # A risk manager's request goes to the department head, never back to them.
    request_override(loan, staff["risk"], "loss", "失联")
    assert approval(loan).lane == "dept_head"


def test_case_page_shows_the_category_and_the_request_form(app, staff, new_loan):
    loan = new_loan()
    classify(D1)
    db.session.commit()
    web = app.test_client()
    login(web, "plo")
    page = web.get(f"/cases/{loan.loan_no}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert b'id="loan-category"' in page.data and b"category-override-form" in page.data
    sent = web.post(f"/portfolio/classification/cases/{loan.loan_no}/override",
                    data={"override-category": "substandard", "override-reason": "逾期风险"})
    assert sent.status_code == 302
    assert CategoryOverride.query.filter_by(status="pending").count() == 1
    login(web, "collector")
    page = web.get(f"/cases/{loan.loan_no}", headers={"Accept-Language": "en"})
    assert b"category-override-form" not in page.data
    assert web.post(f"/portfolio/classification/cases/{loan.loan_no}/override",
                    data={}).status_code == 403
