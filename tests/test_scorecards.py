"""Staff scorecards (issue 14 item 5): every figure of a hand-made month, the Beijing month
boundaries, the KPI score over the weights with data, and who may see whose card."""
import datetime as dt
import uuid
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.operations import create_user
from accounts.teams import create_team, set_members
from cases.models import ContactLogEntry, LateFollowUp, PerformancePoint, PromiseToPay
from extensions import db
from ledger.models import Repayment
from portfolio.models import LoanMonthSnapshot
from scorecards import kpi
from scorecards.figures import month_card, month_cards, team_kpi
from tests.conftest import PASSWORD, ROOT, login
from workflows.definitions import deploy_paths
from workflows.inbox import open_tasks_of_case
from workflows.models import HumanTask

EN = {"Accept-Language": "en"}
BJ = dt.timezone(dt.timedelta(hours=8))
MARCH, APRIL = dt.date(2026, 3, 1), dt.date(2026, 4, 1)


def bj(*args):
    """A Beijing wall time as the UTC moment stored."""
    return dt.datetime(*args, tzinfo=BJ).astimezone(dt.timezone.utc)


@pytest.fixture
def deployed(app):
    return deploy_paths([ROOT / "bpmn" / "handover.bpmn", ROOT / "bpmn" / "reminders.bpmn"],
                        ROOT / "bpmn" / "forms")


@pytest.fixture
def people(users):
    spec = {"coll": ["collector"], "coll2": ["collector"], "head": ["dept_head"],
            "head2": ["dept_head"], "gm": ["general_manager"], "outsider": ["collector"]}
    made = {n: create_user(n, PASSWORD, roles, display_name=n.upper()) for n, roles in spec.items()}
    north = create_team("North", made["head"], users["admin"])
    set_members(north, [made["coll"], made["coll2"], made["head"]], users["admin"])
    create_team("South", made["head2"], users["admin"])
    return {**users, **made, "north": north}


def task(loan, user, at, process="collection", state="completed"):
    instance_id = open_tasks_of_case(loan.id)[0].instance_id
    row = HumanTask(instance_id=instance_id, case_id=loan.id, task_guid=str(uuid.uuid4()),
                    process_key=process, bpmn_id="phone_collection", name="Phone collection",
                    lane="collector", state=state, created_at=at, completed_at=at,
                    completed_by_id=user.id, priority=2)
    db.session.add(row)
    db.session.flush()
    return row


def call(loan, user, at, outcome, kind="call"):
    db.session.add(ContactLogEntry(loan_id=loan.id, at=at, kind=kind, outcome=outcome,
                                   number="13800000000", user_id=user.id))


def promise(loan, user, made_at, on, amount, status):
    db.session.add(PromiseToPay(loan_id=loan.id, promised_on=on, amount=Decimal(amount),
                                made_at=made_at, user_id=user.id, status=status))


def repayment(loan, at, amount, ref, reversed_at=None):
    db.session.add(Repayment(loan_id=loan.id, external_ref=ref, amount=Decimal(amount),
                             paid_at=at, principal=Decimal(amount), reversed_at=reversed_at))


def late(loan, user, at, fined=False, waived=False):
    row = task(loan, user, at, process="handover")
    db.session.add(LateFollowUp(task_id=row.id, user_id=user.id, loan_id=loan.id, due_at=at,
                                recorded_at=at, fine=Decimal(100) if fined else Decimal(0),
                                fined_at=at if fined else None,
                                waived_at=at if waived else None))


def snapshot(loan, collector, balance, category, due, collected, team=None):
    db.session.add(LoanMonthSnapshot(
        month=MARCH, loan_id=loan.id, as_of=dt.date(2026, 3, 31), status="active",
        product="term", collector_id=collector.id, team_id=team.id if team else None,
        disbursed_on=dt.date(2026, 3, 2), principal=Decimal(1000000), balance=Decimal(balance),
        due_in_month=Decimal(due), collected_in_month=Decimal(collected), bucket="current",
        stage="current", category=category))


@pytest.fixture
def month(new_loan, people):
    """The hand-made March 2026 of coll (and a little of coll2); see the expected figures in
    the tests."""
    p = people
    a, b, c = new_loan("L-A"), new_loan("L-B"), new_loan("L-C")
    coll, coll2 = p["coll"], p["coll2"]
    # calls: 5 in March (Beijing), 4 of them reached someone; one just before, one just after
    call(a, coll, bj(2026, 3, 2, 10, 0), "reached")
    call(a, coll, bj(2026, 3, 2, 11, 0), "no_answer")
    call(a, coll, bj(2026, 3, 2, 15, 0), "promised_to_pay")
    call(b, coll, bj(2026, 3, 3, 9, 40), "refused")
    call(b, coll, bj(2026, 3, 31, 23, 59), "reached")
    call(b, coll, bj(2026, 2, 28, 23, 30), "reached")  # February
    call(b, coll, bj(2026, 4, 1, 0, 30), "reached")  # April in Beijing, March 31 in UTC
    call(a, coll, bj(2026, 3, 2, 12, 0), "reached", kind="visit")  # not a call
    call(a, coll2, bj(2026, 3, 2, 13, 0), "reached")
    # promises: made in March P1, P3; due in March P1 (kept), P2 (kept), P4 (broken)
    promise(a, coll, bj(2026, 3, 2, 15, 0), dt.date(2026, 3, 5), "1000.00", "kept")
    promise(a, coll, bj(2026, 2, 20, 10, 0), dt.date(2026, 3, 2), "500.00", "kept")
    promise(a, coll, bj(2026, 3, 2, 16, 0), dt.date(2026, 4, 2), "2000.00", "open")
    promise(b, coll, bj(2026, 2, 25, 10, 0), dt.date(2026, 3, 10), "700.00", "broken")
    # collection work and repayments
    task(a, coll, bj(2026, 3, 2, 10, 5))
    task(b, coll, bj(2026, 2, 10, 10, 0))  # February: credits B's payment of March 5
    task(c, coll, bj(2026, 1, 15, 10, 0))  # too long before C's payment
    task(a, coll2, bj(2026, 3, 1, 10, 0))
    repayment(a, bj(2026, 3, 2, 14, 0), "1200.00", "R1")  # coll and coll2
    repayment(a, bj(2026, 3, 2, 9, 0), "300.00", "R2")  # before coll's call: coll2 only
    repayment(b, bj(2026, 3, 5, 11, 0), "800.00", "R3")  # coll
    repayment(c, bj(2026, 3, 2, 11, 0), "5000.00", "R4")  # nobody
    repayment(a, bj(2026, 3, 6, 11, 0), "100.00", "R5", reversed_at=bj(2026, 3, 7, 9, 0))
    # late follow-ups: three in March (one fined, one fined then waived, one undecided)
    late(a, coll, bj(2026, 3, 4, 10, 0), fined=True)
    late(a, coll, bj(2026, 3, 5, 10, 0), fined=True, waived=True)
    late(a, coll, bj(2026, 3, 6, 10, 0))
    late(a, coll, bj(2026, 2, 27, 10, 0), fined=True)  # February
    # points
    for loan in (a, b):
        db.session.add(PerformancePoint(user_id=coll.id, reason="recovered_on_time",
                                        period="2026-03", loan_id=loan.id, points=3))
    db.session.add(PerformancePoint(user_id=coll.id, reason="error_free_month",
                                    period="2026-02", points=3))
    # March snapshots: coll's loans A and B (NPL 20 000 of 1 000 000), C is coll2's
    snapshot(a, coll, "980000.00", "normal", "10000.00", "8000.00", p["north"])
    snapshot(b, coll, "20000.00", "substandard", "5000.00", "3000.00", p["north"])
    snapshot(c, coll2, "30000.00", "loss", "0.00", "0.00")
    db.session.commit()
    return {"a": a, "b": b, "c": c}


def test_every_figure_of_the_month(app, people, month):
    card = month_card(people["coll"].id, MARCH)
    assert card.activity == {
        "calls": 5, "contacts": 4, "promises_made": 2, "promised_amount": Decimal("3000.00"),
        "promises_kept": 2, "promises_broken": 1, "tasks_done": 4,
        "collected": Decimal("2000.00")}
    assert card.points == {"error_free_month": 0, "recovered_on_time": 6}
    assert card.points_total == 6
    assert (card.late, card.fined, card.fines, card.waived) == (3, 1, Decimal("100.00"), 1)
    parts = {p.key: p for p in card.kpi.parts}
    assert parts["npl"].value == Decimal("0.02") and parts["npl"].score == Decimal("60.0")
    assert parts["collection"].score == Decimal("73.3")  # 11 000 / 15 000
    assert parts["compliance"].score == Decimal("50.0")  # 4 tasks, 2 late not waived
    assert parts["satisfaction"].score is None and parts["cost"].score is None
    # (30 × 60 + 20 × 73.3 + 15 × 50) / 65 = 61.78…
    assert card.kpi.score == Decimal("61.8") and card.kpi.weight_with_data == 65
    assert card.kpi.missing == ["satisfaction", "cost"]
    other = month_card(people["coll2"].id, MARCH)
    assert other.activity["calls"] == 1 and other.activity["collected"] == Decimal("1500.00")
    # coll2's loan C: all of its balance is a loss; nothing fell due
    parts2 = {p.key: p for p in other.kpi.parts}
    assert parts2["npl"].score == Decimal("0.0") and parts2["collection"].score is None
    assert parts2["compliance"].score == Decimal("100.0")
    assert other.kpi.score == Decimal("33.3")  # (30 × 0 + 15 × 100) / 45


def test_beijing_month_boundaries(app, people, month):
    april = month_card(people["coll"].id, APRIL)
    assert april.activity["calls"] == 1 and april.activity["contacts"] == 1
    february = month_card(people["coll"].id, dt.date(2026, 2, 1))
    assert february.activity["calls"] == 1 and february.late == 1 and february.fined == 1
    assert february.points == {"error_free_month": 3, "recovered_on_time": 0}
    assert february.kpi.score is not None  # compliance only: 1 task, late → 0
    assert {p.key for p in february.kpi.parts if p.score is not None} == {"compliance"}


def test_team_kpi(app, people, month):
    ids = [people[n].id for n in ("coll", "coll2", "head")]
    cards = month_cards(ids, MARCH)
    score = team_kpi(people["north"].id, MARCH, list(cards.values()))
    # the team's snapshots are A and B; its people did 5 tasks, 2 late not waived
    assert {p.key: p.score for p in score.parts} == {
        "npl": Decimal("60.0"), "collection": Decimal("73.3"), "satisfaction": None,
        "cost": None, "compliance": Decimal("60.0")}
    assert score.score == Decimal("64.1")  # (1800 + 1466 + 900) / 65


def test_pages_and_who_sees_them(app, people, month):
    client = app.test_client()
    login(client, "coll")
    page = client.get("/scorecards/coll?month=2026-03", headers=EN)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-figure="calls">5<' in html and 'data-figure="collected">¥2,000.00<' in html
    assert 'data-figure="points"><strong>6</strong>' in html
    assert "61.8" in html and "Customer satisfaction, Cost control" in html
    assert "65% of the weights" in html
    assert client.get("/scorecards/coll2", headers=EN).status_code == 403
    assert client.get("/scorecards", headers=EN).status_code == 302  # to one's own card
    assert client.get("/scorecards/coll?month=2026-13", headers=EN).status_code == 400
    assert client.get("/scorecards/nobody", headers=EN).status_code == 404
    login(client, "head")
    assert client.get("/scorecards/coll2", headers=EN).status_code == 200
    html = client.get("/scorecards?month=2026-03", headers=EN).get_data(as_text=True)
    assert 'data-username="coll"' in html and 'data-username="coll2"' in html
    assert 'data-username="outsider"' not in html
    html = client.get(f"/scorecards?month=2026-03&team={people['north'].id}",
                      headers=EN).get_data(as_text=True)
    assert 'id="team-kpi-table"' in html and "64.1" in html
    login(client, "head2")  # leads another team
    assert client.get("/scorecards/coll", headers=EN).status_code == 403
    login(client, "gm")
    assert client.get("/scorecards/coll", headers=EN).status_code == 200
    html = client.get("/scorecards?month=2026-03", headers=EN).get_data(as_text=True)
    assert 'data-username="coll"' in html
    login(client, "compliance")
    assert client.get("/scorecards/coll", headers=EN).status_code == 403


@settings(max_examples=200, deadline=None)
@given(st.tuples(*[st.decimals(0, 10, places=4) for _ in range(4)]),
       st.integers(0, 50), st.integers(0, 50))
def test_kpi_score_is_a_weighted_mean_of_its_parts(totals, tasks, late_count):
    balance, npl, due, collected = totals
    result = kpi.score((balance, min(npl, balance), due, collected), tasks, late_count)
    scored = [p.score for p in result.parts if p.score is not None]
    if not scored:
        assert result.score is None and result.weight_with_data == 0
        return
    # a weighted mean lies between its smallest and largest part (give or take the rounding)
    assert min(scored) - Decimal("0.05") <= result.score <= max(scored) + Decimal("0.05")
    assert all(Decimal(0) <= s <= Decimal(100) for s in scored)
    assert result.weight_with_data == sum(p.weight for p in result.parts if p.score is not None)
    assert {"satisfaction", "cost"} <= set(result.missing)  # never recorded yet
