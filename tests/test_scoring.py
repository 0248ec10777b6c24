"""Propensity to pay (issue 14 item 7): features read in bulk, the scorecard's exact scores,
deterministic scores and ranking, the fit on synthetic history, the back-test on a hand-made
month, the inbox ranked by expected recovery in keyset pages, and who may see the model."""
import datetime as dt
import random
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from accounts.operations import create_user
from cases.models import Collateral, ContactLogEntry, Guarantor, Loan, PromiseToPay
from extensions import db
from ledger.models import Installment, Repayment
from portfolio.models import LoanMonthSnapshot
from scoring.backtest import backtest
from scoring.features import current_bases, gather, overdue_scope
from scoring.fit import NotEnoughHistory, fit
from scoring.model import DEFAULT_WEIGHTS, score
from scoring.models import LoanScore, MonthScore, ScoringModel
from scoring.run import ranked, score_all
from tests.conftest import PASSWORD, T0, login
from workflows.inbox import inbox_page
from workflows.models import HumanTask, ProcessDefinition, ProcessInstance

AS_OF = dt.date(2026, 3, 2)  # T0 in Beijing
EN = {"Accept-Language": "en"}
D = Decimal


def _days(n):
    return AS_OF - dt.timedelta(days=n)


def _at(days_before):
    return T0 - dt.timedelta(days=days_before)


def add_loan(manager_id, no, dpd, due, loan_id=None, later=0, status="servicing",
             installments=()):
    """An overdue loan: one unpaid installment of `due` falling due `dpd` days ago, one of
    `later` principal still to come, and any extra installment rows."""
    row = {"loan_no": no, "borrower_name": "x", "principal": D(due) + later,
           "interest_rate": D("0.05"), "disbursed_on": dt.date(2025, 1, 5),
           "maturity_on": dt.date(2027, 1, 5), "account_manager_id": manager_id,
           "status": status, "product": "term", "purpose": "", "repayment_account": "",
           "dpd": dpd, "stage": "dpd_8_30" if dpd else "current"}
    if loan_id is not None:
        row["id"] = loan_id
    db.session.execute(insert(Loan), [row])
    loan_id = db.session.scalar(select(Loan.id).where(Loan.loan_no == no))
    rows = [dict(seq=10, due_on=_days(dpd), principal_due=D(due), paid_off_on=None)]
    if later:
        rows.append(dict(seq=11, due_on=AS_OF + dt.timedelta(days=20), principal_due=later,
                         paid_off_on=None))
    rows += list(installments)
    db.session.execute(insert(Installment), [
        {"loan_id": loan_id, "interest_due": 0, "penalty_due": 0, "interest_paid": 0,
         "penalty_paid": 0, **r,
         "principal_paid": r["principal_due"] if r["paid_off_on"] else 0} for r in rows])
    return loan_id


def call(loan_id, number, outcome, days_before, kind="call"):
    db.session.add(ContactLogEntry(loan_id=loan_id, at=_at(days_before), kind=kind,
                                   number=number, outcome=outcome))


def promise(loan_id, status, days_before):
    db.session.add(PromiseToPay(loan_id=loan_id, promised_on=_days(days_before),
                                amount=100, status=status))


@pytest.fixture
def staff(app):
    return {name: create_user(name, PASSWORD, roles) for name, roles in {
        "am": ["account_manager"], "risk": ["risk_manager"], "head": ["dept_head"],
        "collector": ["collector"], "plo": ["post_loan_officer"]}.items()}


@pytest.fixture
def two_loans(staff):
    """Loan A: a mixed record; loan B: old and silent; a current and a closed loan."""
    am = staff["am"].id
    a = add_loan(am, "A", 10, "8000.00", later=20000, installments=[
        dict(seq=1, due_on=_days(100), principal_due=D(500), paid_off_on=_days(101)),
        dict(seq=2, due_on=_days(70), principal_due=D(500), paid_off_on=_days(65))])
    b = add_loan(am, "B", 200, "60000.00")
    add_loan(am, "C", 0, "100.00")
    add_loan(am, "D", 30, "100.00", status="closed")
    for status, days in (("broken", 5), ("broken", 40), ("broken", 100), ("kept", 20),
                         ("open", -3)):
        promise(a, status, days)
    db.session.add_all([
        Guarantor(loan_id=a, name="g", phone="13800000001"),
        Guarantor(loan_id=b, name="g", phone="13800000002"),
        Collateral(loan_id=a, kind="mortgage", description="flat", valuation=D(40000)),
        Collateral(loan_id=a, kind="pledge", description="car", valuation=D(100000),
                   released_at=T0 - dt.timedelta(days=300)),
        Repayment(loan_id=a, external_ref="r1", amount=D(500), paid_at=_at(30))])
    call(a, "13900000000", "reached", 2)
    call(a, "13900000000", "no_answer", 3)
    call(a, "13900000000", "no_answer", 40)  # too old
    call(a, "+86 138 0000 0001", "no_answer", 4)  # the guarantor, not answering
    call(a, "13900000000", "", 1, kind="sms")
    db.session.commit()
    return a, b


def test_features_of_hand_made_loans(two_loans):
    a, b = two_loans
    bases = current_bases(AS_OF)
    assert [base.loan_id for base in bases] == [a, b]  # not the current or the closed one
    assert bases[0].amount_due == D("8000.00") and bases[0].balance == D("28000.00")
    features = gather(AS_OF, bases, overdue_scope())
    assert features[a] == {"dpd": 10, "amount_due": D("8000.00"), "broken_90": 2,
                           "kept_90": 1, "calls_30": 2, "reached_30": 1, "paid_60": True,
                           "on_time": 1, "guarantor": False, "collateral": True,
                           "ltv": D("0.7000")}
    assert features[b] == {"dpd": 200, "amount_due": D("60000.00"), "broken_90": 0,
                           "kept_90": 0, "calls_30": 0, "reached_30": 0, "paid_60": False,
                           "on_time": 0, "guarantor": True, "collateral": False, "ltv": None}


def test_exact_scores_of_the_default_scorecard(two_loans):
    a, b = two_loans
    counts = score_all(AS_OF)
    assert counts == {"scored": 2, "month_scores": 2}
    score_a, score_b = db.session.get(LoanScore, a), db.session.get(LoanScore, b)
    # A: 8-30 days +25, two broken −25, kept +15, half answered +10, paid +20, LTV 70% +10
    # = 55 points: 1 / (1 + 2^(−55/20)) = 0.87059
    assert score_a.score == D("0.8706") and score_a.expected_recovery == D("6964.80")
    assert [(r["feature"], r["band"], r["points"]) for r in score_a.reasons] == [
        ("dpd", "8_30", 25), ("broken", "two_plus", -25), ("paid", "yes", 20)]
    # B: 181-365 days −40, no on-time installment −5, guarantor +10, over ¥50,000 −5
    # = −40 points: 1 / (1 + 2^2) = 0.2
    assert score_b.score == D("0.2000") and score_b.expected_recovery == D("12000.00")
    assert [(r["feature"], r["points"]) for r in score_b.reasons] == [
        ("dpd", -40), ("guarantor", 10), ("on_time", -5)]
    assert [s.loan_id for s in ranked()] == [b, a]  # 12,000 before 6,964.80
    model = db.session.scalar(select(ScoringModel))
    assert model.kind == "points" and model.active and model.weights == DEFAULT_WEIGHTS
    assert db.session.scalar(select(MonthScore.score).where(MonthScore.loan_id == a)) == \
        D("0.8706")


def test_rescoring_drops_loans_no_longer_overdue_and_keeps_the_month(two_loans):
    a, b = two_loans
    score_all(AS_OF)
    db.session.execute(Loan.__table__.update().where(Loan.id == b).values(dpd=0,
                                                                          stage="current"))
    assert score_all(AS_OF + dt.timedelta(days=1)) == {"scored": 1, "month_scores": 0}
    assert db.session.scalars(select(LoanScore.loan_id)).all() == [a]
    assert len(db.session.scalars(select(MonthScore)).all()) == 2  # the month's first run


def test_the_daily_run_scores(two_loans):
    from cases.staging import AFTER_DAILY_RUN
    hooks = [hook for hook in AFTER_DAILY_RUN if hook.__module__ == "scoring.run"]
    assert len(hooks) == 1 and hooks[0](AS_OF, None) == {"scored": 2, "month_scores": 2}
    assert db.session.scalar(select(LoanScore.score).where(LoanScore.loan_id == two_loans[0]))


def test_reason_labels_are_sentences_in_the_readers_language(app, two_loans):
    from flask_babel import force_locale
    from scoring.labels import points_text, reason_text
    score_all(AS_OF)
    reasons = db.session.get(LoanScore, two_loans[0]).reasons
    with app.test_request_context():
        with force_locale("en"):
            assert [reason_text(r) for r in reasons] == [
                "10 days past due", "2 promises broken in 90 days",
                "Paid something in the last 60 days"]
        assert points_text(-25) == "−25" and points_text(12.5) == "+12.5"
        with force_locale("zh_CN"):
            assert [reason_text(r) for r in reasons] == [
                "逾期10天", "近90天违约承诺2次", "近60天有还款"]


# ---------------------------------------------------------------- determinism

loan_strategy = st.fixed_dictionaries({
    "dpd": st.sampled_from([3, 20, 45, 100, 400]),
    "due": st.sampled_from(["1000.00", "8000.00", "60000.00"]),
    "broken": st.integers(0, 2),
    "paid": st.booleans(),
})


def _clear_loans():
    for model in (LoanScore, MonthScore, PromiseToPay, Repayment, Installment, Loan):
        db.session.execute(model.__table__.delete())
    db.session.commit()


def _book(manager_id, specs, order):
    for n in order:
        spec = specs[n]
        loan_id = add_loan(manager_id, f"H-{n}", spec["dpd"], spec["due"], loan_id=n + 1)
        for k in range(spec["broken"]):
            promise(loan_id, "broken", 10 + k)
        if spec["paid"]:
            db.session.add(Repayment(loan_id=loan_id, external_ref=f"p{n}", amount=1,
                                     paid_at=_at(10)))
    db.session.commit()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(specs=st.lists(loan_strategy, min_size=1, max_size=12), data=st.data())
def test_insertion_order_never_changes_scores_or_ranking(staff, specs, data):
    order = data.draw(st.permutations(range(len(specs))))
    results = []
    for insertion in (range(len(specs)), order):
        _clear_loans()
        _book(staff["am"].id, specs, insertion)
        score_all(AS_OF)
        results.append([(s.loan_id, s.score, s.expected_recovery, s.reasons) for s in ranked()])
    assert results[0] == results[1]
    keys = [(-expected, loan_id) for loan_id, _s, expected, _r in results[0]]
    assert keys == sorted(keys)  # highest expected recovery first, ties by loan id
    _clear_loans()


# ---------------------------------------------------------------- fit

DPDS = (5, 20, 45, 75, 120, 250, 400)
PAY_CHANCE = {5: 0.9, 20: 0.8, 45: 0.6, 75: 0.45, 120: 0.3, 250: 0.15, 400: 0.08}


def synthetic_history(manager_id, loans, months, seed=3):
    """`loans` loans over `months` month-ends: a DPD at random at each month-end, and a
    payment in the next month with the chance of that DPD, halved for every third loan, which
    has two broken promises just before each month."""
    rng = random.Random(seed)
    for n in range(loans):
        add_loan(manager_id, f"S-{n}", 0, "1000.00", loan_id=n + 1)
    firsts = [dt.date(2025, m, 1) for m in range(9, 9 + months)]
    snapshots, previous = [], {}
    for month in firsts:
        before, previous = previous, {}
        for n in range(loans):
            chance = PAY_CHANCE[before[n]] / (2 if n % 3 == 0 else 1) if before else 0
            dpd = rng.choice(DPDS)
            snapshots.append({
                "month": month, "loan_id": n + 1, "as_of": month, "status": "servicing",
                "product": "term", "disbursed_on": dt.date(2025, 1, 5), "principal": 1000,
                "balance": 1000, "overdue_amount": 1000, "dpd": dpd, "bucket": "M1",
                "collected_in_month": D(100) if rng.random() < chance else D(0),
                "stage": "M2", "category": "normal", "provision_rate": 0, "provision": 0})
            previous[n] = dpd
            if n % 3 == 0 and before:
                for k in (5, 8):
                    db.session.add(PromiseToPay(loan_id=n + 1, amount=1, status="broken",
                                                promised_on=month - dt.timedelta(days=k)))
    db.session.execute(insert(LoanMonthSnapshot), snapshots)
    db.session.commit()


def test_fit_recovers_the_signs_and_is_deterministic(staff):
    synthetic_history(staff["am"].id, 240, 4)  # 3 months × 240 = 720 loan-months
    model = fit(staff["risk"], activate=True)
    db.session.commit()
    weights = model.weights["features"]
    assert model.kind == "logistic" and model.cases == 720 and model.active
    assert weights["dpd"]["1_7"] > weights["dpd"]["61_90"] > weights["dpd"]["366_plus"]
    assert weights["broken"]["two_plus"] < weights["broken"]["none"]
    assert model.metrics["auc_fitted"] > 0.6 and model.metrics["holdout_rows"] >= 144
    assert db.session.scalars(select(ScoringModel.id).where(ScoringModel.active)).all() == \
        [model.id]
    from scoring.fit import history
    rows = history()
    again = fit(rows=list(reversed(rows)))
    assert again.weights == model.weights


def test_fit_refuses_with_too_little_history(staff):
    synthetic_history(staff["am"].id, 60, 3)  # 120 loan-months
    with pytest.raises(NotEnoughHistory) as refused:
        fit()
    assert refused.value.rows == 120
    db.session.rollback()


def test_fit_button_says_when_history_is_short(app, staff):
    client = app.test_client()
    login(client, "head")
    page = client.post("/scoring/fit", follow_redirects=True, headers=EN).get_data(as_text=True)
    assert "Not enough history to fit a model yet: 0 loan-months" in page
    assert db.session.scalar(select(ScoringModel).where(ScoringModel.kind == "logistic")) \
        is None


# ---------------------------------------------------------------- back-test

def _month_scores(month, rows):
    model = ScoringModel(kind="points", weights=DEFAULT_WEIGHTS, active=True, metrics={})
    db.session.add(model)
    db.session.flush()
    db.session.execute(insert(MonthScore), [
        {"month": month, "loan_id": loan_id, "model_id": model.id, "score": D(s),
         "amount_due": 1000, "expected_recovery": D(e)} for loan_id, s, e in rows])


def test_backtest_of_a_hand_made_month(staff):
    ids = [add_loan(staff["am"].id, f"B-{n}", 10, "1000.00") for n in range(6)]
    feb = dt.date(2026, 2, 1)
    _month_scores(feb, [(ids[0], "0.9", "900"), (ids[1], "0.6", "800"),
                        (ids[2], "0.3", "300"), (ids[3], "0.1", "100"),
                        (ids[4], "0.5", "500")])
    collected = {ids[0]: 1000, ids[2]: 200, ids[5]: 999}  # the sixth was not scored
    db.session.execute(insert(LoanMonthSnapshot), [
        {"month": feb, "loan_id": loan_id, "as_of": dt.date(2026, 2, 28),
         "status": "servicing", "product": "term", "disbursed_on": dt.date(2025, 1, 5),
         "principal": 1000, "balance": 1000, "collected_in_month": collected.get(loan_id, 0),
         "dpd": 10, "bucket": "M1", "stage": "dpd_8_30", "category": "special_mention"}
        for loan_id in ids])
    db.session.commit()
    result = backtest(dt.date(2026, 2, 17))
    # payers 0.9 and 0.3 against 0.6, 0.1, 0.5: 3 + 1 of 6 pairs ranked right
    assert result["auc"] == pytest.approx(4 / 6)
    # top 20% of 5 loans is the first by expected recovery: 1000 of 1200 collected
    assert result["capture_top_20"] == pytest.approx(1000 / 1200)
    assert {k: result[k] for k in ("month", "loans", "payers", "expected", "actual")} == {
        "month": feb, "loans": 5, "payers": 2, "expected": D("2600.00"),
        "actual": D("1200.00")}
    assert backtest(dt.date(2026, 3, 1)) is None


def test_backtest_reads_repayments_when_the_month_has_no_snapshot(staff):
    ids = [add_loan(staff["am"].id, f"R-{n}", 10, "1000.00") for n in range(3)]
    jan = dt.date(2026, 1, 1)
    _month_scores(jan, [(ids[0], "0.5", "500"), (ids[1], "0.5", "500"),
                        (ids[2], "0.2", "200")])
    utc = dt.timezone.utc
    db.session.add_all([
        # 1 January 00:30 in Beijing: in January
        Repayment(loan_id=ids[2], external_ref="in", amount=D(300),
                  paid_at=dt.datetime(2025, 12, 31, 16, 30, tzinfo=utc)),
        # 1 February 00:30 in Beijing: not in January
        Repayment(loan_id=ids[0], external_ref="out", amount=D(50),
                  paid_at=dt.datetime(2026, 1, 31, 16, 30, tzinfo=utc)),
        Repayment(loan_id=ids[1], external_ref="rev", amount=D(70),
                  paid_at=dt.datetime(2026, 1, 10, tzinfo=utc), reversed_at=T0)])
    db.session.commit()
    result = backtest(jan)
    assert (result["payers"], result["actual"], result["auc"]) == (1, D("300.00"), 0.0)
    assert result["capture_top_20"] == 0.0  # the first of 3 (loan 0, a tie broken by id)


# ---------------------------------------------------------------- the inbox

@pytest.fixture
def scored_tasks_world(deployed, staff):
    """Five loans, four scored (two tie), an instance on each, and a collector viewer."""
    definition_id = db.session.scalar(select(ProcessDefinition.id).limit(1))
    model = ScoringModel(kind="points", weights=DEFAULT_WEIGHTS, active=True, metrics={})
    db.session.add(model)
    db.session.flush()
    values = [D("5000.00"), D("120.50"), D("5000.00"), D("0.00"), None]
    loans, instances = [], []
    for n, value in enumerate(values):
        loan_id = add_loan(staff["am"].id, f"Q-{n}", 10, "1000.00")
        instance = ProcessInstance(definition_id=definition_id, case_id=loan_id,
                                   status="running", state_json="{}",
                                   serializer_version="test", lock_version=1)
        db.session.add(instance)
        db.session.flush()
        if value is not None:
            db.session.add(LoanScore(loan_id=loan_id, model_id=model.id, scored_on=AS_OF,
                                     score=D("0.5"), amount_due=value * 2,
                                     expected_recovery=value, reasons=[]))
        loans.append(loan_id)
        instances.append(instance.id)
    db.session.commit()
    return {"viewer": staff["collector"], "other": staff["plo"], "loans": loans,
            "instances": instances, "values": values}


task_strategy = st.fixed_dictionaries({
    "loan": st.integers(0, 4), "claimed": st.sampled_from([None, None, "viewer", "other"]),
    "lane": st.sampled_from(["collector", "collector", "back_office"]),
    "due": st.sampled_from([None, T0, T0 + dt.timedelta(days=2)])})


def _insert_tasks(world, specs):
    db.session.execute(HumanTask.__table__.delete())
    people = {None: None, "viewer": world["viewer"].id, "other": world["other"].id}
    if specs:
        db.session.execute(HumanTask.__table__.insert(), [
            {"id": n, "instance_id": world["instances"][s["loan"]],
             "case_id": world["loans"][s["loan"]], "task_guid": f"g-{n}",
             "process_key": "collection", "bpmn_id": "step", "name": f"task {n}",
             "lane": s["lane"], "claimed_by_id": people[s["claimed"]], "due_at": s["due"],
             "priority": 2, "state": "ready", "created_at": T0}
            for n, s in enumerate(specs, 1)])
    db.session.commit()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(specs=st.lists(task_strategy, max_size=25), per_page=st.integers(1, 4),
       scope=st.sampled_from(["available", "mine"]))
def test_inbox_by_expected_recovery_pages_every_task_once_in_order(scored_tasks_world, specs,
                                                                  per_page, scope):
    world = scored_tasks_world
    _insert_tasks(world, specs)
    viewer = world["viewer"]
    visible = [n for n, s in enumerate(specs, 1)
               if (s["claimed"] == "viewer" if scope == "mine"
                   else s["claimed"] is None and s["lane"] == "collector")]
    value = {n: world["values"][specs[n - 1]["loan"]] for n in visible}
    expected = sorted(visible, key=lambda n: (-(value[n] if value[n] is not None else -1), n))
    pages, token = [], None
    while True:
        result = inbox_page(viewer, scope, per_page=per_page, after=token,
                            sort="expected_recovery")
        pages.append([task.id for task, _no in result.rows])
        assert result.values == {n: value[n] for n in pages[-1]}
        if result.next is None:
            break
        token = result.next
    assert [n for page in pages for n in page] == expected
    if len(pages) > 1:  # back from the last page with `previous`
        result, back = result, []
        while result.previous:
            result = inbox_page(viewer, scope, per_page=per_page, before=result.previous,
                                sort="expected_recovery")
            back.append([task.id for task, _no in result.rows])
        assert back[::-1] == pages[:-1]


def test_web_inbox_sort_control_and_column(app, scored_tasks_world):
    world = scored_tasks_world
    _insert_tasks(world, [{"loan": n, "claimed": None, "lane": "collector", "due": T0}
                          for n in range(5)])
    client = app.test_client()
    login(client, "collector")
    page = client.get("/inbox?tab=available&sort=expected_recovery", headers=EN).get_data(as_text=True)
    assert 'name="sort"' in page and "Expected recovery, highest first" in page
    order = [page.index(f"Q-{n}<") for n in (0, 2, 1, 3, 4)]
    assert order == sorted(order)
    assert "¥5,000.00" in page and "¥120.50" in page
    plain = client.get("/inbox?tab=available").get_data(as_text=True)
    assert "¥5,000.00" not in plain


# ---------------------------------------------------------------- pages and permissions

def test_case_page_shows_score_reasons_and_model(app, two_loans):
    score_all(AS_OF)
    db.session.commit()
    client = app.test_client()
    login(client, "plo")
    page = client.get("/cases/A", headers=EN).get_data(as_text=True)
    assert 'id="case-score"' in page and "87%" in page and "¥6,964.80" in page
    assert "2 promises broken in 90 days" in page and "−25" in page
    assert "scored on 2026-03-02" in page
    assert 'id="case-score"' not in client.get("/cases/C").get_data(as_text=True)


def test_model_page_is_for_risk_managers_and_department_heads(app, staff, two_loans):
    score_all(AS_OF)
    db.session.commit()
    client = app.test_client()
    for user, status in (("collector", 403), ("plo", 403), ("risk", 200), ("head", 200)):
        login(client, user)
        response = client.get("/scoring", headers=EN)
        assert response.status_code == status, user
        if status == 200:
            text = response.get_data(as_text=True)
            assert "Days past due" in text and "+40" in text and "−55" in text
        client.get("/logout")
    login(client, "collector")
    assert client.post("/scoring/fit").status_code == 403


def test_ranked_inbox_says_why_in_the_readers_language(app, two_loans):
    from flask_babel import force_locale
    from scoring.queues import top_reasons
    score_all(AS_OF)
    with app.test_request_context(), force_locale("en"):
        why = top_reasons([two_loans[0], two_loans[0], None])
        assert why == {two_loans[0]: "10 days past due (+25 points); "
                                     "2 promises broken in 90 days (−25 points)"}
        assert top_reasons([]) == {}
