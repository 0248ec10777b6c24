"""Month-end snapshots (issue 14 item 2): exact figures of a small hand-computed book as it
stood on 2026-02-28, idempotence, a repayment after the month that changes nothing, the daily
run's hook and the admin's retake."""
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import literal, select, text

from accounts.models import Team, User
from audit.models import AuditEvent
from cases.models import Loan
from cases.staging import run_daily
from extensions import db
from ledger.repayments import post_repayment
from portfolio.labels import bucket_of
from portfolio.models import CategoryChange, LoanMonthSnapshot
from portfolio.snapshots import _bucket_sql, month_bounds, take_month_end
from tests.conftest import PASSWORD
from accounts.operations import create_user
from workflows.models import HumanTask

FEB = dt.date(2026, 2, 1)
UTC = dt.timezone.utc


def _schedule(*rows):
    return [{"due_on": d, "principal": p, "interest": i} for d, p, i in rows]


@pytest.fixture
def book(new_loan, users):
    """A: 120 000 in three installments, the first paid on time, the February one paid only
    on 1 March. B: 60 000 due 5 January, 20 000 paid on 15 February. D: closed on 10 February.
    F: current, nothing due. G: closed in January, E: disbursed in March (both not in it)."""
    # No penalty interest: the figures stay hand-computable (the legal cap at 0).
    db.session.execute(text("UPDATE legal_rate_caps SET multiple = 0"))
    db.session.commit()
    team = Team(name="一组")
    db.session.add(team)
    db.session.flush()
    db.session.get(User, users["am"].id).team_id = team.id
    db.session.commit()
    loans = {
        "A": new_loan("L-A", principal="120000.00", disbursed_on="2025-12-01",
                      maturity_on="2026-04-01", schedule=_schedule(
                          ("2026-01-10", "40000.00", "500.00"),
                          ("2026-02-10", "40000.00", "500.00"),
                          ("2026-04-01", "40000.00", "500.00"))),
        "B": new_loan("L-B", principal="60000.00", disbursed_on="2025-11-01",
                      maturity_on="2026-01-05",
                      schedule=_schedule(("2026-01-05", "60000.00", "1200.00"))),
        "D": new_loan("L-D", principal="50000.00", disbursed_on="2025-12-01",
                      maturity_on="2026-06-01", manager="am2"),
        "F": new_loan("L-F", principal="30000.00", disbursed_on="2026-01-15",
                      maturity_on="2026-07-15", manager="am2"),
        "G": new_loan("L-G", principal="10000.00", disbursed_on="2025-10-01",
                      maturity_on="2026-06-01"),
        "E": new_loan("L-E", principal="10000.00", disbursed_on="2026-03-01",
                      maturity_on="2026-09-01"),
    }
    admin = users["admin"]
    post_repayment(loans["A"], {"amount": "40500.00", "paid_at": "2026-01-10",
                                "external_ref": "R-A1"}, admin)
    post_repayment(loans["B"], {"amount": "20000.00", "paid_at": "2026-02-15",
                                "external_ref": "R-B1"}, admin)
    # After the month: must not show in February.
    post_repayment(loans["A"], {"amount": "40500.00", "paid_at": "2026-03-01",
                                "external_ref": "R-A2"}, admin)
    for key, closed_at in (("D", dt.datetime(2026, 2, 10, 4, tzinfo=UTC)),
                           ("G", dt.datetime(2026, 1, 20, 4, tzinfo=UTC))):
        loan = db.session.get(Loan, loans[key].id)
        loan.status, loan.closed_at = "closed", closed_at
    # Category history: A became substandard on 20 Feb and doubtful on 1 March; B went from
    # doubtful to special mention on 1 March (so it was doubtful at the end of February).
    for loan, on, old, new in ((loans["A"], dt.date(2026, 2, 20), "normal", "substandard"),
                               (loans["A"], dt.date(2026, 3, 1), "substandard", "doubtful"),
                               (loans["B"], dt.date(2026, 3, 1), "doubtful",
                                "special_mention")):
        db.session.add(CategoryChange(loan_id=loan.id, changed_on=on, from_category=old,
                                      to_category=new, basis="override", dpd=0, reason="t"))
    db.session.commit()
    yield {key: loan.id for key, loan in loans.items()}, team
    # users.team_id and teams.leader_id refer to each other: untie them before the cleanup.
    db.session.rollback()
    db.session.execute(text("UPDATE users SET team_id = NULL"))
    db.session.commit()


def rows_of(month):
    return {r.loan_id: r for r in LoanMonthSnapshot.query.filter_by(month=month)}


def test_february_figures_by_hand(app, book, users):
    ids, team = book
    written = take_month_end(FEB)
    db.session.commit()
    assert written == 4
    rows = rows_of(FEB)
    assert set(rows) == {ids["A"], ids["B"], ids["D"], ids["F"]}
    a, b, d, f = (rows[ids[k]] for k in "ABDF")
    # A: 120 000 − 40 000 paid in January; the February installment (40 500) unpaid on the
    # 28th, due on the 10th: 18 days; substandard since 20 Feb: 25 % of 80 000.
    assert (a.balance, a.overdue_amount, a.dpd, a.bucket, a.stage) == (
        Decimal("80000.00"), Decimal("40500.00"), 18, "M1", "dpd_8_30")
    assert (a.category, a.provision_rate, a.provision) == (
        "substandard", Decimal("0.2500"), Decimal("20000.00"))
    assert (a.due_in_month, a.collected_in_month) == (Decimal("40500.00"), Decimal("0.00"))
    assert a.team_id == team.id and a.account_manager_id == users["am"].id
    assert a.as_of == dt.date(2026, 2, 28) and a.status == "handover"
    # B: 20 000 on 15 Feb went to interest 1 200 first, principal 18 800; due 5 Jan: 54 days;
    # doubtful at the month's end (changed on 1 March): 50 % of 41 200.
    assert (b.balance, b.overdue_amount, b.dpd, b.bucket, b.stage) == (
        Decimal("41200.00"), Decimal("41200.00"), 54, "M2", "M2")
    assert (b.category, b.provision) == ("doubtful", Decimal("20600.00"))
    assert (b.due_in_month, b.collected_in_month) == (Decimal("0.00"), Decimal("20000.00"))
    # D closed on 10 February: in the month, closed, nothing outstanding.
    assert (d.status, d.bucket, d.balance, d.provision, d.dpd) == (
        "closed", "closed", Decimal("0.00"), Decimal("0.00"), 0)
    assert d.team_id is None
    # F: current, normal, no provision.
    assert (f.balance, f.dpd, f.bucket, f.category, f.provision) == (
        Decimal("30000.00"), 0, "current", "normal", Decimal("0.00"))
    assert f.collector_id is None


def test_idempotent_and_later_repayments_change_nothing(app, book, users):
    ids, _team = book
    assert take_month_end(FEB) == 4
    db.session.commit()
    before = {k: (r.taken_at, r.balance, r.dpd, r.collected_in_month, r.category)
              for k, r in rows_of(FEB).items()}
    # Another repayment after the month, and the snapshot asked for again: nothing moves.
    post_repayment(db.session.get(Loan, ids["B"]), {"amount": "5000.00", "paid_at":
                   "2026-03-02", "external_ref": "R-B2"}, users["admin"])
    assert take_month_end(FEB) == 0
    db.session.commit()
    db.session.expire_all()
    after = {k: (r.taken_at, r.balance, r.dpd, r.collected_in_month, r.category)
             for k, r in rows_of(FEB).items()}
    assert after == before
    assert LoanMonthSnapshot.query.count() == 4
    assert AuditEvent.query.filter_by(action="portfolio.snapshot_taken").count() == 1


def test_a_month_missing_some_loans_gets_only_those(app, book, users):
    ids, _team = book
    assert take_month_end(FEB) == 4
    kept = {k: r.taken_at for k, r in rows_of(FEB).items()}
    db.session.execute(LoanMonthSnapshot.__table__.delete().where(
        LoanMonthSnapshot.loan_id == ids["B"]))
    assert take_month_end(FEB) == 1  # B again; the others stay the facts they were
    db.session.commit()
    db.session.expire_all()
    assert set(rows_of(FEB)) == set(kept)
    assert all(r.taken_at == kept[k] for k, r in rows_of(FEB).items() if k != ids["B"])


def test_daily_run_takes_the_previous_month_once_and_retake_by_admin(app, book, users):
    ids, _team = book
    counts = run_daily(dt.date(2026, 3, 2))
    assert counts["month_end_snapshot"] == 4
    assert len(rows_of(FEB)) == 4
    assert "month_end_snapshot" not in run_daily(dt.date(2026, 3, 3))
    # The daily run's classification on 2 March came after the month: February keeps the
    # categories of its own history.
    assert rows_of(FEB)[ids["A"]].category == "substandard"
    # A collector held B's collection task in February: a retake records them.
    collector = create_user("col2", PASSWORD, ["collector"])
    task = HumanTask.query.filter_by(case_id=ids["B"], process_key="collection",
                                     lane="collector").first()
    if task is None:
        pytest.skip("the collection process gave B no collector task")
    task.created_at = dt.datetime(2026, 2, 20, 2, tzinfo=UTC)
    task.claimed_by_id = collector.id
    db.session.commit()
    assert take_month_end(FEB, actor=users["admin"], retake=True) == 4
    db.session.commit()
    assert rows_of(FEB)[ids["B"]].collector_id == collector.id
    event = AuditEvent.query.filter_by(action="portfolio.snapshot_taken").order_by(
        AuditEvent.id.desc()).first()
    assert event.data["retaken"] is True and event.data["removed"] == 4


def test_month_bounds_are_beijing_days():
    first, last, start, end = month_bounds(dt.date(2026, 2, 17))
    assert (first, last) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert start == dt.datetime(2026, 1, 31, 16, tzinfo=UTC)
    assert end == dt.datetime(2026, 2, 28, 16, tzinfo=UTC)
    assert month_bounds(dt.date(2026, 12, 5))[1] == dt.date(2026, 12, 31)


@given(st.integers(min_value=0, max_value=2000))
def test_sql_bucket_is_bucket_of(app, dpd):
    with app.app_context():
        assert db.session.scalar(select(_bucket_sql(literal(dpd)))) == bucket_of(dpd)


def test_the_collector_is_whoever_acted_last_in_the_month(app, book, users):
    ids, _team = book
    run_daily(dt.date(2026, 3, 2))
    task = HumanTask.query.filter_by(case_id=ids["B"], process_key="collection",
                                     lane="collector").first()
    if task is None:
        pytest.skip("the collection process gave B no collector task")
    first, second, late = (create_user(f"col{i}", PASSWORD, ["collector"]) for i in (3, 4, 5))
    columns = {c.key: getattr(task, c.key) for c in HumanTask.__table__.columns
               if c.key not in ("id", "task_guid")}

    def another(guid, **values):
        db.session.add(HumanTask(**(columns | {"task_guid": guid} | values)))
    # Completed by `first` on 10 February; held by `second` from 20 February; taken by `late`
    # only in March: `second` acted last within February.
    task.created_at = dt.datetime(2026, 2, 5, 2, tzinfo=UTC)
    task.completed_at = dt.datetime(2026, 2, 10, 2, tzinfo=UTC)
    task.completed_by_id, task.state = first.id, "completed"
    another("held-by-second", created_at=dt.datetime(2026, 2, 20, 2, tzinfo=UTC),
            claimed_by_id=second.id, completed_at=None, completed_by_id=None, state="ready")
    another("march", created_at=dt.datetime(2026, 3, 1, 2, tzinfo=UTC),
            claimed_by_id=late.id, completed_at=None, completed_by_id=None, state="ready")
    db.session.commit()
    take_month_end(FEB, actor=users["admin"], retake=True)
    db.session.commit()
    assert rows_of(FEB)[ids["B"]].collector_id == second.id
    assert rows_of(FEB)[ids["A"]].collector_id != second.id


def test_the_snapshot_command(app, book, users):
    """`flask portfolio snapshot`: takes a month once, notes a month that has not ended in
    Beijing (1 March 01:00 there is still 28 February in UTC), and retakes only --by an
    administrator."""
    from workflows import clock
    runner = app.test_cli_runner()
    clock.set_now(dt.datetime(2026, 2, 28, 17, 0, tzinfo=UTC))  # 1 March, 01:00 in Beijing
    taken = runner.invoke(args=["portfolio", "snapshot", "--month", "2026-02"])
    assert taken.exit_code == 0, taken.output
    assert "has not ended yet" not in taken.output and "2026-02: 4 loan(s) written" in taken.output
    clock.set_now(dt.datetime(2026, 2, 28, 15, 0, tzinfo=UTC))  # 28 February, 23:00 there
    early = runner.invoke(args=["portfolio", "snapshot", "--month", "2026-02"])
    assert "2026-02 has not ended yet" in early.output and "0 loan(s) written" in early.output
    refused = runner.invoke(args=["portfolio", "snapshot", "--month", "2026-02", "--retake",
                                  "--by", users["am"].username])
    assert refused.exit_code != 0 and "--retake needs --by ADMIN" in refused.output
    bad = runner.invoke(args=["portfolio", "snapshot", "--month", "2026-13"])
    assert bad.exit_code != 0 and "expected YYYY-MM" in bad.output
    assert db.session.scalar(select(db.func.count()).select_from(LoanMonthSnapshot)) == 4
