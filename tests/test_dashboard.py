"""The portfolio dashboard (issue 14 item 3) on a small hand-computed portfolio: six loans over
three month ends (January to March 2026) written as snapshot rows by hand, and every figure
checked to the cent and to the sixth decimal of a rate; the exports read back (csv, openpyxl)
equal the tables; filters, permissions, and formula-safe exports.

Each loan per month: (bucket, dpd, balance, overdue, due in month, collected in month,
category, provision). Team A (am, led by `head`): L1, L2, L3; team B (am2, led by `head2`):
L4, L5, L6. Collectors: col1 on L1 L2 L5 L6, col2 on L3 L4.

        January                    February                   March
L1  current 100000            current 90000             current 80000
L2  current 50000 (inst.)     M1 d20 50000 od5000 sm1000 M2 d48 od10000 got2000 sm1000
L3  M2 d45 200000 sm4000      M3 d73 200000 od20000     M3+ d101 substandard 50000
L4  M3+ d400 300000 loss      M3+ d428 od300000 loss    M3+ d456 250000 got50000 loss
L5  current 60000 (inst.)     M1 d10 od6000 sm1200      closed, got 60000
L6  —                         current 40000             M1 d5 od4000 due4000 sm800
"""
import csv
import datetime as dt
import io
import uuid
from decimal import Decimal as D

import pytest
from flask import current_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import update

from accounts.models import Team, User
from accounts.operations import create_user
from cases.models import LateFollowUp, Loan
from extensions import db
from portfolio.dashboard import Filters
from portfolio.models import LoanMonthSnapshot
from portfolio.rates import roll_rates
from portfolio.views import EXPORTS
from tests.conftest import PASSWORD, login
from workflows.models import HumanTask

EN = {"Accept-Language": "en"}
JAN, FEB, MAR = dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 1)
HOSTILE = "=HYPERLINK(\"http://evil.example\",\"x\")"

# loan: (product, team, manager, collector, {month: (bucket, dpd, balance, overdue, due,
#        collected, category, provision)})
BOOK = {
    "L1": ("term", "A", "am", "col1", {
        JAN: ("current", 0, 100000, 0, 10000, 10000, "normal", 0),
        FEB: ("current", 0, 90000, 0, 10000, 10000, "normal", 0),
        MAR: ("current", 0, 80000, 0, 10000, 10000, "normal", 0)}),
    "L2": ("installment", "A", "am", "col1", {
        JAN: ("current", 0, 50000, 0, 5000, 5000, "normal", 0),
        FEB: ("M1", 20, 50000, 5000, 5000, 0, "special_mention", 1000),
        MAR: ("M2", 48, 50000, 10000, 5000, 2000, "special_mention", 1000)}),
    "L3": ("term", "A", "am", "col2", {
        JAN: ("M2", 45, 200000, 20000, 0, 0, "special_mention", 4000),
        FEB: ("M3", 73, 200000, 20000, 0, 0, "special_mention", 4000),
        MAR: ("M3+", 101, 200000, 20000, 0, 0, "substandard", 50000)}),
    "L4": ("term", "B", "am2", "col2", {
        JAN: ("M3+", 400, 300000, 300000, 0, 0, "loss", 300000),
        FEB: ("M3+", 428, 300000, 300000, 0, 0, "loss", 300000),
        MAR: ("M3+", 456, 250000, 250000, 0, 50000, "loss", 250000)}),
    "L5": ("installment", "B", "am2", "col1", {
        JAN: ("current", 0, 60000, 0, 6000, 6000, "normal", 0),
        FEB: ("M1", 10, 60000, 6000, 6000, 0, "special_mention", 1200),
        MAR: ("closed", 0, 0, 0, 6000, 60000, "normal", 0)}),
    "L6": ("term", "B", "am2", "col1", {
        FEB: ("current", 0, 40000, 0, 0, 0, "normal", 0),
        MAR: ("M1", 5, 40000, 4000, 4000, 0, "special_mention", 800)}),
}


def month_end(month):
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


@pytest.fixture
def book(app, users):
    staff = dict(users)
    for name, roles, shown in [("head", ["dept_head"], "Head A"), ("head2", ["dept_head"], ""),
                               ("gm", ["general_manager"], ""), ("risk", ["risk_manager"], ""),
                               ("col1", ["collector"], "张三"), ("col2", ["collector"], HOSTILE),
                               ("lonely", ["dept_head"], "")]:
        staff[name] = create_user(name, PASSWORD, roles, display_name=shown)
    teams = {"A": Team(name="Team A", leader_id=staff["head"].id),
             "B": Team(name="Team B", leader_id=staff["head2"].id)}
    db.session.add_all(teams.values())
    db.session.flush()
    staff["am"].team_id, staff["am2"].team_id = teams["A"].id, teams["B"].id
    staff["head"].team_id, staff["head2"].team_id = teams["A"].id, teams["B"].id
    loans = {}
    for loan_no, (product, team, manager, collector, months) in BOOK.items():
        loan = Loan(loan_no=loan_no, borrower_name="借款人" + loan_no, principal=D("500000"),
                    interest_rate=D("0.0435"), disbursed_on=dt.date(2025, 6, 1),
                    maturity_on=dt.date(2027, 6, 1), account_manager_id=staff[manager].id,
                    status="servicing", product=product)
        db.session.add(loan)
        db.session.flush()
        loans[loan_no] = loan
        for month, (bucket, dpd, balance, overdue, due, got, category, provision) in \
                months.items():
            db.session.add(LoanMonthSnapshot(
                month=month, loan_id=loan.id, as_of=month_end(month),
                status="closed" if bucket == "closed" else "servicing", product=product,
                account_manager_id=staff[manager].id, team_id=teams[team].id,
                collector_id=staff[collector].id, disbursed_on=loan.disbursed_on,
                principal=D("500000"), balance=D(balance), overdue_amount=D(overdue),
                due_in_month=D(due), collected_in_month=D(got), dpd=dpd, bucket=bucket,
                stage="current", category=category,
                provision_rate=(D(provision) / D(balance)) if balance else D(0),
                provision=D(provision)))
    db.session.commit()
    yield {"staff": staff, "teams": teams, "loans": loans}
    # users and teams point at each other: untie them before the tables are emptied
    db.session.rollback()
    db.session.execute(update(User).values(team_id=None))
    db.session.commit()


def client_for(app, username):
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


def tables_of(filters):
    """{table key: table} from the same builders the page and the exports use (in English)."""
    found = {}
    with current_app.test_request_context(headers=EN):
        for builder in set(EXPORTS.values()):
            result = builder(filters)
            for table in result if isinstance(result, tuple) else (result,):
                found[table.key] = table
    return found


def everything(month=MAR, **kwargs):
    return tables_of(Filters(month, **kwargs))


def test_buckets_and_categories_of_march(book):
    t = everything()
    assert t["buckets"].rows == [
        ["Current", 1, D("80000.00"), D("0.129032")],
        ["M1 (1–30 days)", 1, D("40000.00"), D("0.064516")],
        ["M2 (31–60 days)", 1, D("50000.00"), D("0.080645")],
        ["M3 (61–90 days)", 0, D("0.00"), D("0")],
        ["M3+ (over 90 days)", 2, D("450000.00"), D("0.725806")],
        ["Total", 5, D("620000.00"), D("1")]]
    assert t["categories"].rows == [
        ["Normal", 1, D("80000.00"), D("0.00"), D("0")],
        ["Special mention", 2, D("90000.00"), D("1800.00"), D("0.02")],
        ["Substandard", 1, D("200000.00"), D("50000.00"), D("0.25")],
        ["Doubtful", 0, D("0.00"), D("0.00"), None],
        ["Loss", 1, D("250000.00"), D("250000.00"), D("1")],
        ["Total", 5, D("620000.00"), D("301800.00"), D("0.486774")]]


def test_npl_ratio_and_coverage_over_time(book):
    assert everything()["npl"].rows == [
        ["2026-01", D("710000"), D("300000"), D("0.422535"), D("304000"), D("1.013333")],
        ["2026-02", D("740000"), D("300000"), D("0.405405"), D("306200"), D("1.020667")],
        ["2026-03", D("620000"), D("450000"), D("0.725806"), D("301800"), D("0.670667")]]
    # Team A had no NPL in January or February: a ratio of 0 and no coverage (a dash).
    team_a = book["teams"]["A"].id
    rows = everything(team_id=team_a, team_ids=(team_a,))["npl"].rows
    assert rows[0] == ["2026-01", D("350000"), D("0"), D("0"), D("4000"), None]
    assert rows[2] == ["2026-03", D("330000"), D("200000"), D("0.606061"), D("51000"),
                       D("0.255")]


def test_roll_rates_february_to_march(book):
    t = everything()
    dash = [None] * 6
    assert t["roll_rates"].rows == [
        ["Current", 2, D("130000"), D("0.692308"), D("0.307692"), D(0), D(0), D(0), D(0)],
        ["M1 (1–30 days)", 2, D("110000"), D(0), D(0), D("0.454545"), D(0), D(0),
         D("0.545455")],
        ["M2 (31–60 days)", 0, D("0")] + dash,
        ["M3 (61–90 days)", 1, D("200000"), D(0), D(0), D(0), D(0), D(1), D(0)],
        ["M3+ (over 90 days)", 1, D("300000"), D(0), D(0), D(0), D(0), D(1), D(0)]]
    assert [h for h, _k in t["roll_rates"].columns][3:] == [
        "Current", "M1 (1–30 days)", "M2 (31–60 days)", "M3 (61–90 days)",
        "M3+ (over 90 days)", "Closed"]
    assert t["roll_counts"].rows == [
        ["Current", 2, 1, 1, 0, 0, 0, 0], ["M1 (1–30 days)", 2, 0, 0, 1, 0, 0, 1],
        ["M2 (31–60 days)", 0, 0, 0, 0, 0, 0, 0], ["M3 (61–90 days)", 1, 0, 0, 0, 0, 1, 0],
        ["M3+ (over 90 days)", 1, 0, 0, 0, 0, 1, 0]]


def test_flow_rate_into_m1(book):
    # February: L1, L2, L5 current in January with something due (210000); L2, L5 in M1.
    # March: L1, L6 current in February with something due (130000); L6 in M1.
    assert everything()["flow"].rows == [
        ["2026-02", 3, D("210000"), D("110000"), D("0.523810")],
        ["2026-03", 2, D("130000"), D("40000"), D("0.307692")]]


def test_collection_rate_per_stage_and_per_collector(book):
    t = everything()
    # L5 paid 60000 off against 6000 overdue: counted up to the overdue amount.
    assert t["collection_stage"].rows == [
        ["M1 (1–30 days)", 2, D("11000"), D("8000"), D("0.727273")],
        ["M3 (61–90 days)", 1, D("20000"), D("0"), D("0")],
        ["M3+ (over 90 days)", 1, D("300000"), D("50000"), D("0.166667")],
        ["Total", 4, D("331000"), D("58000"), D("0.175227")]]
    assert t["collection_collector"].rows == [
        [HOSTILE, 2, D("320000"), D("50000"), D("0.15625")],
        ["张三", 2, D("11000"), D("8000"), D("0.727273")],
        ["Total", 4, D("331000"), D("58000"), D("0.175227")]]


def test_recovery_by_age_of_debt(book):
    # Overdue at the January or February month end: 1-60 days L3 (Jan), L2 and L5 (Feb);
    # 61-100 L3 (Feb); 366-730 L4. Only L5 was current or closed later (closed in March);
    # L2 was current in January, before it fell overdue, which does not count.
    assert everything()["recovery"].rows == [
        ["Up to 60 days", 3, 1, D("0.333333"), D("0.95")],
        ["61–100 days", 1, 0, D(0), D("0.80")],
        ["101–365 days", 0, 0, None, None],
        ["366–730 days", 1, 0, D(0), D("0.266")],
        ["Over 730 days", 0, 0, None, D("0.136")]]


def test_filters_change_the_figures(book):
    team_a, team_b = book["teams"]["A"].id, book["teams"]["B"].id
    staff = book["staff"]
    balances = lambda t: [row[2] for row in t["buckets"].rows]  # noqa: E731
    assert balances(everything(team_id=team_a, team_ids=(team_a,))) == [
        D(80000), D(0), D(50000), D(0), D(200000), D(330000)]
    assert balances(everything(team_id=team_b, team_ids=(team_b,))) == [
        D(0), D(40000), D(0), D(0), D(250000), D(290000)]
    assert balances(everything(product="installment")) == [
        D(0), D(0), D(50000), D(0), D(0), D(50000)]
    manager = everything(manager_id=staff["am2"].id)
    assert balances(manager) == [D(0), D(40000), D(0), D(0), D(250000), D(290000)]
    assert manager["collection_collector"].rows[-1] == [
        "Total", 2, D("306000"), D("56000"), D("0.183007")]
    # February's month: no January-to-February collection for team A's M1 loan (L2 was current)
    february = everything(month=FEB, team_id=team_a, team_ids=(team_a,))
    assert february["collection_stage"].rows == [
        ["M2 (31–60 days)", 1, D("20000"), D("0"), D("0")],
        ["Total", 1, D("20000"), D("0"), D("0")]]


def test_the_page_shows_every_figure_for_a_general_manager(app, book):
    page = client_for(app, "gm").get("/portfolio", headers=EN)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for key in ("buckets", "categories", "npl", "roll_rates", "roll_counts", "flow",
                "collection_stage", "collection_collector", "recovery", "late", "backtest"):
        assert f'id="fig-{key}"' in html, key
    assert 'id="buckets-chart" role="img"' in html
    assert "¥620,000.00" in html and "72.58%" in html  # money and rates formatted
    assert '<option value="2026-03" selected>' in html  # the latest month by default
    assert "echarts.min.js" in html and "<script>" not in html and 'style="' not in html
    assert client_for(app, "gm").get("/vendor/echarts/echarts.min.js").status_code == 200


def test_exports_equal_the_tables(app, book):
    client = client_for(app, "risk")
    tables = everything()
    for key, table in tables.items():
        if not table.rows:
            continue
        response = client.get(f"/portfolio/export/{key}.csv?month=2026-03", headers=EN)
        assert response.status_code == 200 and response.mimetype == "text/csv"
        rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
        assert rows[0] == [heading for heading, _kind in table.columns]
        expected = [["" if v is None else ("'" + v if str(v).startswith("=") else str(v))
                     for v in row] for row in table.rows]
        assert rows[1:] == expected, key
        book_file = client.get(f"/portfolio/export/{key}.xlsx?month=2026-03", headers=EN)
        assert book_file.status_code == 200
        sheet = load_workbook(io.BytesIO(book_file.data)).active
        cells = [list(r) for r in sheet.iter_rows(values_only=True)]
        assert cells[0] == [heading for heading, _kind in table.columns]
        for got, row in zip(cells[1:], table.rows, strict=True):
            for value, want in zip(got, row, strict=True):
                if isinstance(want, D):
                    assert D(str(value)) == want, key
                elif isinstance(want, str) and want.startswith("="):
                    assert value == "'" + want  # never a formula
                else:
                    assert value == want, key
    csv_rows = list(csv.reader(io.StringIO(client.get(
        "/portfolio/export/buckets.csv", headers=EN).data.decode("utf-8-sig"))))
    assert csv_rows[1] == ["Current", "1", "80000.00", "0.129032"]


def test_an_export_follows_the_filters(app, book):
    client = client_for(app, "gm")
    team_b = book["teams"]["B"].id
    response = client.get(f"/portfolio/export/buckets.csv?month=2026-03&team={team_b}",
                          headers={"Accept-Language": "zh-CN"})
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[-1][1:] == ["2", "290000.00", "1.000000"]  # L4 and L6; L5 closed
    assert "buckets-2026-03.csv" in response.headers["Content-Disposition"]


@pytest.mark.parametrize("role", ["collector", "account_manager", "admin", "post_loan_officer"])
def test_roles_without_the_dashboard_are_refused(app, book, role):
    create_user("someone", PASSWORD, [role])
    client = client_for(app, "someone")
    assert client.get("/portfolio", headers=EN).status_code == 403
    assert client.get("/portfolio/export/buckets.csv", headers=EN).status_code == 403
    assert "/portfolio" not in client.get("/", headers=EN).get_data(as_text=True)


def test_compliance_reads_the_dashboard(app, book):
    client = client_for(app, "compliance")
    page = client.get("/portfolio", headers=EN)
    assert page.status_code == 200 and 'href="/portfolio"' in page.get_data(as_text=True)
    assert 'method="post"' not in page.get_data(as_text=True).split("<main>")[1]


def test_a_department_head_sees_the_teams_they_lead_and_no_other(app, book):
    client = client_for(app, "head")
    html = client.get("/portfolio", headers=EN).get_data(as_text=True)
    assert "¥330,000.00" in html  # team A's March balance, not the whole book's
    assert "Team B" not in html and "Team A" in html
    team_b = book["teams"]["B"].id
    assert client.get(f"/portfolio?team={team_b}", headers=EN).status_code == 403
    assert client.get(f"/portfolio/export/buckets.csv?team={team_b}").status_code == 403
    # a team the head leads may be picked
    team_a = book["teams"]["A"].id
    assert client.get(f"/portfolio?team={team_a}", headers=EN).status_code == 200
    # a head who leads no team and has none sees no figures, with the reason
    lonely = client_for(app, "lonely").get("/portfolio", headers=EN).get_data(as_text=True)
    assert 'id="no-figures"' in lonely and "fig-buckets" not in lonely


@pytest.mark.parametrize("query, message", [
    ("month=2026-13", "YYYY-MM"), ("month=2025-01", "no month-end figures"),
    ("team=abc", "Unknown team"), ("team=99999", "Unknown team"),
    ("product=mortgage", "Unknown product"), ("manager=x", "Unknown account manager"),
])
def test_bad_filter_values_give_a_clear_error(app, book, query, message):
    client = client_for(app, "gm")
    response = client.get(f"/portfolio?{query}", headers=EN)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert client.get(f"/portfolio/export/buckets.xlsx?{query}", headers=EN).status_code == 400


def test_a_manager_outside_the_heads_teams_is_not_offered(app, book):
    client = client_for(app, "head")
    am2 = book["staff"]["am2"].id
    assert client.get(f"/portfolio?manager={am2}", headers=EN).status_code == 400


def test_late_followups_per_month(app, book, new_loan):
    staff = book["staff"]
    first = new_loan("LF-1", manager="am")
    second = new_loan("LF-2", manager="am2")
    instance_id = HumanTask.query.filter_by(case_id=first.id).first().instance_id
    utc = dt.timezone.utc
    # (user, loan, recorded at UTC, fined, waived)
    for user, loan, at, fined, waived in [
            ("am", first, dt.datetime(2026, 2, 28, 17, 0, tzinfo=utc), True, False),  # Mar 1 BJ
            ("am2", second, dt.datetime(2026, 2, 15, 3, 0, tzinfo=utc), False, False),
            ("am2", second, dt.datetime(2026, 2, 20, 3, 0, tzinfo=utc), False, True),
            ("am2", second, dt.datetime(2026, 3, 10, 3, 0, tzinfo=utc), True, False),
            ("am", first, dt.datetime(2025, 3, 31, 16, 0, tzinfo=utc), False, False),  # Apr BJ
            ("am", first, dt.datetime(2025, 3, 31, 15, 59, tzinfo=utc), True, False)]:  # out
        task = HumanTask(instance_id=instance_id, case_id=loan.id, task_guid=str(uuid.uuid4()),
                         process_key="handover", bpmn_id="x", name="x", state="completed")
        db.session.add(task)
        db.session.flush()
        db.session.add(LateFollowUp(
            task_id=task.id, user_id=staff[user].id, loan_id=loan.id, due_at=at,
            recorded_at=at, fine=D("100") if fined else D(0),
            fined_at=at if fined else None, waived_at=at if waived else None))
    db.session.commit()
    rows = everything()["late"].rows
    assert len(rows) == 12 and rows[0][0] == "2025-04" and rows[-1][0] == "2026-03"
    assert rows[0][1:] == [1, 0, D("0")]
    assert rows[-2] == ["2026-02", 1, 0, D("0")]
    assert rows[-1] == ["2026-03", 2, 2, D("200.00")]
    assert sum(row[1] for row in rows[1:-2]) == 0
    team_a = book["teams"]["A"].id
    mine = everything(team_id=team_a, team_ids=(team_a,))["late"].rows
    assert (mine[0][1:], mine[-2][1:], mine[-1][1:]) == ([1, 0, 0], [0, 0, 0], [1, 1, 100])
    by_manager = everything(manager_id=staff["am2"].id)["late"].rows
    assert (by_manager[0][1], by_manager[-2][1:], by_manager[-1][1:]) == (0, [1, 0, 0],
                                                                          [1, 1, 100])


def test_backtest_without_scores_says_so(app, book):
    html = client_for(app, "gm").get("/portfolio", headers=EN).get_data(as_text=True)
    section = html.split('id="fig-backtest"')[1].split("</section>")[0]
    assert "No figures for these filters." in section
    assert everything()["backtest"].rows == []


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["current", "M1", "M2", "M3", "M3+"]),
                          st.sampled_from(["current", "M1", "M2", "M3", "M3+", "closed", None]),
                          st.integers(1, 10 ** 7)), min_size=1, max_size=12))
def test_each_roll_rate_row_shares_its_whole_balance(app, users, moves):
    """Whatever the moves, a row's cells add up to its balance (to rounding) and its counts
    to its loans; a loan without a March snapshot counts as closed."""
    db.session.query(LoanMonthSnapshot).delete()
    Loan.query.filter(Loan.loan_no.like("H-%")).delete()
    for n, (source, target, cents) in enumerate(moves):
        loan = Loan(loan_no=f"H-{n}", borrower_name="x", principal=D(1), interest_rate=D(0),
                    disbursed_on=JAN, maturity_on=MAR, account_manager_id=users["am"].id)
        db.session.add(loan)
        db.session.flush()
        for month, bucket in ((FEB, source), (MAR, target)):
            if bucket is not None:
                db.session.add(LoanMonthSnapshot(
                    month=month, loan_id=loan.id, as_of=month_end(month), status="servicing",
                    product="term", disbursed_on=JAN, principal=D(1),
                    balance=D(cents) / 100, dpd=0, bucket=bucket, stage="current",
                    category="normal"))
    db.session.commit()
    shares, counts = roll_rates(Filters(MAR))
    for share_row, count_row in zip(shares.rows, counts.rows):
        if share_row[2]:
            assert abs(sum(share_row[3:]) - 1) <= D("0.000006")
        assert count_row[1] == sum(count_row[2:])
    assert sum(row[1] for row in counts.rows) == len(moves)
    assert sum(row[-1] for row in counts.rows) == sum(1 for m in moves if m[1] in (None, "closed"))
