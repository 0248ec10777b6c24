"""The collateral watch (issue 16): each warning's trigger and its date arithmetic on the
statutory working-day calendar, raised once, again after a renewal; LTV; the policies page;
intake of the new fields; the release at closure from the registration record."""
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases.models import Collateral, RiskSignal
from extensions import db
from guarantees import watch
from guarantees.collateral import ltv, update_records
from guarantees.models import CollateralPolicy, CollateralValuation, CollateralWarning
from tests.conftest import csrf_from, login
from workflows import clock
from workflows.clock import BEIJING
from workflows.models import HumanTask


def at(day):
    """Set the clock to 09:00 Beijing on `day`; returns the day."""
    clock.set_now(dt.datetime.combine(day, dt.time(9), BEIJING).astimezone(dt.timezone.utc))
    return day


def item(**overrides):
    body = {"kind": "mortgage", "description": "厂房", "location": "杭州市余杭区",
            "valuation": "1000000.00", "registration_no": "浙(2026)余杭不动产第00001号",
            "asset_type": "real_estate", "registration_office": "杭州市余杭区不动产登记中心",
            "registered_on": "2026-02-20", "registration_expires_on": "2029-02-20",
            "insurance_policy": "PQYC-1", "insurer": "人保财险",
            "insurance_expires_on": "2027-02-20"}
    body.update(overrides)
    return body


def policy(asset_type="real_estate", months=12, days=5, threshold="0.70"):
    db.session.merge(CollateralPolicy(asset_type=asset_type, revaluation_months=months,
                                      expiry_warning_days=days,
                                      ltv_threshold=Decimal(threshold)))
    db.session.commit()


def warnings(reason=None):
    query = CollateralWarning.query.order_by(CollateralWarning.id)
    return query.filter_by(reason=reason).all() if reason else query.all()


def run(day):
    counts = watch.watch(at(day))
    db.session.commit()
    return counts


# ---------------------------------------------------------------- calendar arithmetic

def test_warning_day_counts_national_day_and_make_up_days():
    # 2026: 1–7 October off, Saturday 10 October a make-up working day. Five working days
    # before Monday 12 October: 10 (Sat, worked), 9, 8, 30 Sep, 29 Sep.
    assert watch.warns_on(dt.date(2026, 10, 12), 5) == dt.date(2026, 9, 29)
    assert watch.warning_horizon(dt.date(2026, 9, 29), 5) == dt.date(2026, 10, 12)
    assert watch.warning_horizon(dt.date(2026, 9, 28), 5) == dt.date(2026, 10, 10)
    # Revaluation due on a holiday moves to the next working day.
    assert watch.revaluation_due_on(dt.date(2026, 4, 2), 6) == dt.date(2026, 10, 8)


@settings(max_examples=200, deadline=None)
@given(st.dates(dt.date(2025, 1, 15), dt.date(2026, 10, 31)),
       st.dates(dt.date(2025, 3, 1), dt.date(2026, 12, 31)), st.integers(0, 30))
def test_the_horizon_is_the_rule(today, expires_on, days):
    """E <= the N-th working day after today  <=>  E - N working days <= today."""
    assert (expires_on <= watch.warning_horizon(today, days)) == \
        (watch.warns_on(expires_on, days) <= today)


@settings(max_examples=100, deadline=None)
@given(st.dates(dt.date(2025, 1, 1), dt.date(2026, 12, 31)), st.integers(1, 24))
def test_valued_by_is_the_last_date_due(cutoff, months):
    last = watch.valued_by(cutoff, months)
    assert watch.add_months(last, months) <= cutoff
    assert watch.add_months(last + dt.timedelta(days=1), months) > cutoff


# ---------------------------------------------------------------- the rules

def test_registration_warns_on_the_working_day_once_and_again_after_renewal(
        app, new_loan, users):
    policy(days=5)
    loan = new_loan("C-1", maturity_on="2026-12-31",
                    collateral=[item(registration_expires_on="2026-10-12")])
    assert run(dt.date(2026, 9, 28))["collateral_warnings"] == 0
    assert run(dt.date(2026, 9, 29))["collateral_warnings"] == 1
    [warning] = warnings("registration_expiring")
    assert warning.key.endswith(":2026-10-12") and warning.raised_on == dt.date(2026, 9, 29)
    signal = db.session.get(RiskSignal, warning.signal_id)
    assert (signal.category, signal.source) == (8, "collateral")
    assert signal.description.startswith("抵押登记将于2026-10-12到期")
    # The risk warning runs: the leader's opinion, then the risk manager decides.
    assert signal.instance_id is not None
    assert HumanTask.query.filter_by(instance_id=signal.instance_id).count() == 1
    assert run(dt.date(2026, 9, 30))["collateral_warnings"] == 0
    # Renewed to a new date, it warns again when that one comes near.
    at(dt.date(2026, 9, 30))
    update_records(loan, loan.collateral[0].id, users["plo"], {
        **item(registration_expires_on="2026-10-16", registered_on="2026-02-20")})
    # 16 October less five working days is Saturday 10 October, a make-up working day.
    assert run(dt.date(2026, 10, 9))["collateral_warnings"] == 0
    assert run(dt.date(2026, 10, 10))["collateral_warnings"] == 1
    assert [w.key.split(":")[1] for w in warnings("registration_expiring")] == \
        ["2026-10-12", "2026-10-16"]


def test_insurance_warns_on_its_own_date(app, new_loan):
    policy(days=5)
    new_loan("C-2", maturity_on="2026-12-31",
             collateral=[item(insurance_expires_on="2026-10-12")])
    assert run(dt.date(2026, 9, 28))["collateral_warnings"] == 0
    run(dt.date(2026, 9, 29))
    assert [w.reason for w in warnings()] == ["insurance_expiring"]


def test_released_items_and_closed_loans_are_not_watched(app, new_loan):
    policy(days=5)
    loan = new_loan("C-3", maturity_on="2026-12-31",
                    collateral=[item(registration_expires_on="2026-10-12")])
    loan.collateral[0].released_at = clock.now()
    db.session.commit()
    assert run(dt.date(2026, 10, 12))["collateral_warnings"] == 0


def test_revaluation_due_on_the_next_working_day_starts_the_process(app, new_loan, users):
    policy(months=6)
    loan = new_loan("C-4", maturity_on="2026-12-31", collateral=[item()])
    db.session.add(CollateralValuation(collateral_id=loan.collateral[0].id, loan_id=loan.id,
                                       value=Decimal("900000"), valued_on=dt.date(2026, 4, 2),
                                       source="staff"))
    db.session.commit()
    assert run(dt.date(2026, 10, 2))["collateral_warnings"] == 0   # holiday
    assert run(dt.date(2026, 10, 7))["collateral_warnings"] == 0   # still a holiday
    counts = run(dt.date(2026, 10, 8))
    assert counts["collateral_warnings"] == 1 and counts["collateral_revaluations"] == 1
    [warning] = warnings("revaluation_due")
    assert warning.instance_id is not None
    task = HumanTask.query.filter_by(instance_id=warning.instance_id).one()
    assert (task.bpmn_id, task.lane) == ("enter_valuation", "post_loan_officer")
    assert run(dt.date(2026, 10, 9))["collateral_warnings"] == 0


def test_deposits_are_never_revalued(app, new_loan):
    new_loan("C-5", maturity_on="2026-12-31", collateral=[item(asset_type="deposit")])
    assert run(dt.date(2026, 12, 31))["collateral_revaluations"] == 0
    assert not warnings("revaluation_due")


def test_ltv_over_the_threshold_warns_once_per_valuation(app, new_loan):
    high = new_loan("C-6", maturity_on="2026-12-31",
                    collateral=[item(valuation="600000.00")])
    new_loan("C-7", maturity_on="2026-12-31", collateral=[item(valuation="800000.00")])
    ratio, principal, value = ltv(high)
    assert (ratio, principal, value) == (Decimal("0.8333"), Decimal("500000.00"),
                                         Decimal("600000.00"))
    run(dt.date(2026, 3, 3))
    [warning] = warnings("ltv_high")
    assert warning.loan_id == high.id and warning.detail["ltv"] == "0.8333"
    assert "83.33%" in db.session.get(RiskSignal, warning.signal_id).description
    run(dt.date(2026, 3, 4))
    assert len(warnings("ltv_high")) == 1
    # Over the threshold at 625 000 (80%) → 62.5% under it: crossing back stops it; a
    # later valuation over the threshold again warns again.
    db.session.add(CollateralValuation(collateral_id=high.collateral[0].id, loan_id=high.id,
                                       value=Decimal("550000"), valued_on=dt.date(2026, 3, 5)))
    db.session.commit()
    run(dt.date(2026, 3, 5))
    assert len(warnings("ltv_high")) == 2
    policy(threshold="0.95")
    db.session.add(CollateralValuation(collateral_id=high.collateral[0].id, loan_id=high.id,
                                       value=Decimal("540000"), valued_on=dt.date(2026, 3, 6)))
    db.session.commit()
    run(dt.date(2026, 3, 6))
    assert len(warnings("ltv_high")) == 2


def test_unknown_calendar_year_opens_a_problem_not_a_silent_guess(app, new_loan):
    from cases.models import CaseProblem
    policy(days=30)
    new_loan("C-8", maturity_on="2026-12-31",
             collateral=[item(registration_expires_on="2027-01-20")])
    counts = run(dt.date(2026, 12, 2))
    assert counts["collateral_warnings"] == 0 and counts["collateral_calendar_problems"] == 1
    problem = CaseProblem.query.one()
    assert (problem.kind, problem.year, problem.detail["process"]) == (
        "calendar_year_missing", 2027, "collateral_watch")
    assert run(dt.date(2026, 12, 3))["collateral_calendar_problems"] == 0


# ---------------------------------------------------------------- intake, closure

def test_intake_takes_the_new_fields_and_the_first_valuation(app, new_loan):
    loan = new_loan("C-9", collateral=[item()])
    c = Collateral.query.filter_by(loan_id=loan.id).one()
    assert (c.asset_type, c.registration_office, c.registration_expires_on, c.insurer) == (
        "real_estate", "杭州市余杭区不动产登记中心", dt.date(2029, 2, 20), "人保财险")
    [v] = CollateralValuation.query.filter_by(collateral_id=c.id).all()
    assert (v.value, v.valued_on, v.source) == (Decimal("1000000.00"), dt.date(2026, 3, 2),
                                                "intake")


def test_intake_refuses_bad_collateral_records(app, deployed, users, token_for):
    client = app.test_client()
    from tests.conftest import loan_payload
    body = loan_payload("C-10", collateral=[item(registration_expires_on="2026-13-01",
                                                 asset_type="boat", registered_on="2026-03-01",
                                                 insurance_policy="")])
    answer = client.post("/api/v1/loans", json=body, headers=token_for("am"))
    assert answer.status_code in (400, 422), answer.get_json()
    text = str(answer.get_json())
    assert "collateral[0].registration_expires_on" in text
    assert "collateral[0].asset_type" in text and "collateral[0].insurance_policy" in text


# ---------------------------------------------------------------- the policies page

def test_policies_page_validates_and_audits(app, users):
    client = app.test_client()
    login(client, "plo")
    assert client.get("/admin/collateral").status_code == 403
    client = app.test_client()
    login(client, "admin")
    page = client.get("/admin/collateral")
    assert page.status_code == 200 and "70%" in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    bad = client.post("/admin/collateral/vehicle", data={
        "csrf_token": token, "vehicle-revaluation_months": "x",
        "vehicle-expiry_warning_days": "999", "vehicle-ltv_threshold": "150"})
    assert bad.status_code == 400
    assert CollateralPolicy.query.count() == 0
    good = client.post("/admin/collateral/vehicle", data={
        "csrf_token": token, "vehicle-revaluation_months": "4",
        "vehicle-expiry_warning_days": "15", "vehicle-ltv_threshold": "55.5"})
    assert good.status_code == 302
    row = db.session.get(CollateralPolicy, "vehicle")
    assert (row.revaluation_months, row.expiry_warning_days, row.ltv_threshold) == (
        4, 15, Decimal("0.5550"))
    assert watch.policies()["vehicle"].ltv_threshold == Decimal("0.5550")
    from audit.models import AuditEvent
    assert AuditEvent.query.filter_by(action="collateral.policy_changed").count() == 1


@pytest.mark.parametrize("user, status", [("plo", 200), ("am", 200), ("am2", 403),
                                          ("compliance", 403)])
def test_who_may_edit_the_records(app, new_loan, user, status):
    loan = new_loan("C-11", collateral=[item()])
    client = app.test_client()
    login(client, user)
    url = f"/cases/C-11/collateral/{loan.collateral[0].id}/records"
    assert client.get(url).status_code == status


def test_editing_records_shows_field_errors_and_changes_nothing(app, new_loan):
    loan = new_loan("C-12", collateral=[item()])
    client = app.test_client()
    login(client, "plo")
    url = f"/cases/C-12/collateral/{loan.collateral[0].id}/records"
    token = csrf_from(client.get(url).get_data(as_text=True))
    bad = client.post(url, data={"csrf_token": token, "asset_type": "real_estate",
                                 "registration_no": "X-1", "registered_on": "2026-02-20",
                                 "registration_expires_on": "2026-01-01"})
    assert bad.status_code == 400
    db.session.expire_all()
    assert db.session.get(Collateral, loan.collateral[0].id).registration_expires_on == \
        dt.date(2029, 2, 20)
    good = client.post(url, data={"csrf_token": token, "asset_type": "real_estate",
                                  "registration_no": "X-1", "registration_office": "余杭",
                                  "registered_on": "2026-02-20",
                                  "registration_expires_on": "2030-01-01"})
    assert good.status_code == 302
    db.session.expire_all()
    c = db.session.get(Collateral, loan.collateral[0].id)
    assert (c.registration_no, c.registration_expires_on) == ("X-1", dt.date(2030, 1, 1))
    page = client.get("/cases/C-12").get_data(as_text=True)
    assert "X-1" in page and "2030-01-01" in page and 'id="collateral-ltv"' in page
