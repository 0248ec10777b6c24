"""The case list (issue 13 item 4): every filter and sort combination gives the loans a plain
Python filter and sort of the book gives, balances follow the ledger, bad values change
nothing, pages are bounded, labels and money are shown in the reader's language."""
import re
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from cases.listing import MAX_PAGES, PER_PAGE, list_cases, parse_filters
from cases.models import STAGES, Loan
from cases.operations import register_loan
from extensions import db
from ledger.repayments import post_repayment
from search.models import NO_DUE, LoanBalance
from tests.conftest import login, loan_payload

FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
# loan_no, manager, borrower, principal, dpd, stage, status, risk group
BOOK = [("C-01", "am", "王明远", "100000.00", 0, "current", "handover", None),
        ("C-02", "am2", "李娜", "250000.00", 2, "dpd_1_3", "servicing", "high"),
        ("C-03", "am", "张伟", "50000.00", 15, "dpd_8_30", "servicing", "normal"),
        ("C-04", "am2", "杭州明远贸易有限公司", "800000.00", 45, "M2", "servicing", "low"),
        ("C-05", "am", "欧阳娜娜", "250000.00", 95, "M3+", "closing", "high"),
        ("C-06", "am2", "赵敏", "120000.00", 5, "dpd_4_7", "servicing", "normal")]


def make_book(users):
    for no, manager, name, principal, dpd, stage, status, risk in BOOK:
        loan = register_loan(loan_payload(no, manager=manager, borrower_name=name,
                                          principal=principal), users["admin"])
        db.session.execute(update(Loan).where(Loan.id == loan.id).values(
            dpd=dpd, stage=stage, status=status, risk_group=risk))
    db.session.commit()


def rows_of(user, **args):
    return [r.loan_no for r in list_cases(db.session, user, parse_filters(args)).rows]


def expected(users, user, args):
    """The book filtered and sorted in Python, as the list should show it."""
    loans = db.session.execute(
        select(Loan.id, Loan.loan_no, Loan.borrower_name, Loan.dpd, Loan.stage, Loan.status,
               Loan.risk_group, Loan.account_manager_id, LoanBalance.outstanding,
               LoanBalance.next_due_on)
        .outerjoin(LoanBalance, LoanBalance.loan_id == Loan.id)).all()
    managers = {"am": users["am"].id, "am2": users["am2"].id}
    keep = []
    for row in loans:
        if "account_manager" in user.roles and row.account_manager_id != user.id:
            continue
        if args.get("stage") and row.stage != args["stage"]:
            continue
        if args.get("status") and row.status != args["status"]:
            continue
        if args.get("risk_group") and row.risk_group != args["risk_group"]:
            continue
        if args.get("manager") and row.account_manager_id != managers.get(args["manager"]):
            continue
        if args.get("dpd_min") is not None and row.dpd < args["dpd_min"]:
            continue
        if args.get("dpd_max") is not None and row.dpd > args["dpd_max"]:
            continue
        if args.get("outstanding_min") is not None and row.outstanding < args["outstanding_min"]:
            continue
        if args.get("outstanding_max") is not None and row.outstanding > args["outstanding_max"]:
            continue
        keep.append(row)
    sort, direction = args.get("sort", "id"), args.get("dir")
    direction = direction or ("desc" if sort == "id" else "asc")
    column = {"loan_no": "loan_no", "borrower": "borrower_name", "dpd": "dpd",
              "stage": "dpd", "outstanding": "outstanding", "due": "next_due_on",
              "id": "id"}[sort]
    keep.sort(key=lambda r: (getattr(r, column), r.id), reverse=direction == "desc")
    return [r.loan_no for r in keep][:PER_PAGE]


FILTER_ARGS = st.fixed_dictionaries({}, optional={
    "stage": st.sampled_from(STAGES), "status": st.sampled_from(
        ["handover", "servicing", "closing", "closed"]),
    "risk_group": st.sampled_from(["high", "normal", "low"]),
    "manager": st.sampled_from(["am", "am2"]),
    "dpd_min": st.integers(0, 100), "dpd_max": st.integers(0, 100),
    "outstanding_min": st.sampled_from([Decimal("0.00"), Decimal("100000.00"),
                                        Decimal("250000.00"), Decimal("900000.00")]),
    "outstanding_max": st.sampled_from([Decimal("50000.00"), Decimal("250000.00"),
                                        Decimal("1000000.00")]),
    "sort": st.sampled_from(["loan_no", "borrower", "dpd", "stage", "outstanding", "due",
                             "id"]),
    "dir": st.sampled_from(["asc", "desc"])})


@settings(max_examples=80, deadline=None, suppress_health_check=FIXTURES)
@given(args=FILTER_ARGS, who=st.sampled_from(["plo", "am", "am2"]))
def test_every_filter_and_sort_gives_the_plain_answer(app, deployed, users, args, who):
    if db.session.scalar(select(Loan.id).where(Loan.loan_no == "C-01")) is None:
        make_book(users)
    user = users[who]
    query = {k: str(v) for k, v in args.items()}
    assert rows_of(user, **query) == expected(users, user, args), args


def test_balances_follow_the_ledger(app, deployed, users):
    make_book(users)
    loan = db.session.scalar(select(Loan).where(Loan.loan_no == "C-02"))
    balance = db.session.get(LoanBalance, loan.id)
    assert balance.outstanding == loan.outstanding > 0
    assert balance.next_due_on == min(i.due_on for i in loan.installments)
    post_repayment(loan, {"amount": "1000.00", "paid_at": "2026-03-02",
                          "external_ref": "CB-LIST-1"}, users["admin"])
    db.session.commit()
    db.session.expire_all()
    loan = db.session.get(Loan, loan.id)
    assert db.session.get(LoanBalance, loan.id).outstanding == loan.outstanding
    exact = {"outstanding_min": str(loan.outstanding), "outstanding_max": str(loan.outstanding)}
    assert "C-02" in rows_of(users["plo"], **exact)
    # Paid off: nothing outstanding, no next due date (last by due date, shown blank).
    paid = db.session.scalar(select(Loan).where(Loan.loan_no == "C-01"))
    post_repayment(paid, {"amount": str(paid.outstanding), "paid_at": "2026-03-02",
                          "external_ref": "CB-LIST-2"}, users["admin"])
    db.session.commit()
    balance = db.session.get(LoanBalance, paid.id)
    assert balance.outstanding == 0 and balance.next_due_on == NO_DUE
    assert rows_of(users["plo"], sort="due")[-1] == "C-01"
    web = app.test_client()
    login(web, "plo")
    assert "9999" not in web.get("/cases?sort=due").get_data(as_text=True)


def test_text_filter_uses_the_search(app, deployed, users):
    make_book(users)
    plo = users["plo"]
    assert rows_of(plo, q="明远", sort="loan_no") == ["C-01", "C-04"]
    assert rows_of(plo, q="娜", sort="loan_no", dir="desc") == ["C-05", "C-02"]
    assert rows_of(plo, q="娜", manager="am") == ["C-05"]
    assert rows_of(users["am2"], q="明远") == ["C-04"]
    assert rows_of(plo, q="%%") == []  # nothing left of it: nothing matches


def test_bad_values_are_left_out_and_reported(app, deployed, users):
    make_book(users)
    filters = parse_filters({"stage": "dpd_99", "status": "x", "dpd_min": "abc",
                             "outstanding_max": "1e999", "sort": "password_hash; --",
                             "dir": "sideways", "page": "-3", "risk_group": "<b>"})
    assert sorted(filters.ignored) == ["dir", "dpd_min", "outstanding_max", "page",
                                       "risk_group", "sort", "stage", "status"]
    assert filters.sort == "id" and filters.page == 1 and not filters.active
    assert len(list_cases(db.session, users["plo"], filters).rows) == len(BOOK)


def test_pages_are_bounded(app, deployed, users):
    make_book(users)
    listing = list_cases(db.session, users["plo"], parse_filters({"page": "999999"}))
    assert listing.filters.page == 1  # out of range: the first page
    listing = list_cases(db.session, users["plo"], parse_filters({"page": str(MAX_PAGES)}))
    assert listing.rows == [] and listing.total == len(BOOK) and listing.pages == 1


def test_the_page_in_chinese(app, deployed, users):
    make_book(users)
    web = app.test_client()
    login(web, "plo")
    page = web.get("/cases?stage=M2&sort=outstanding&dir=desc",
                   headers={"Accept-Language": "zh-CN"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "C-04" in html and "C-01" not in html
    assert re.search(r"¥\d{3},\d{3}\.\d\d<", html)  # money as ¥1,234.50
    assert ">M2<" not in html  # the stage's label, not its code
    # The links of the home page (B): by stage, status, account manager.
    for query in ("stage=current", "status=servicing", "manager=am", "manager=nobody",
                  "dpd_min=1&dpd_max=30&risk_group=high", "q=明远&sort=borrower&dir=desc",
                  "outstanding_min=100000&outstanding_max=300000&sort=due",
                  "stage=dpd_99&dpd_min=x"):
        assert web.get(f"/cases?{query}").status_code == 200, query
    login(web, "am")
    html = web.get("/cases?manager=am2").get_data(as_text=True)
    assert "C-02" not in html and "C-04" not in html  # an account manager sees only theirs
