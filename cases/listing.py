"""The case list: who sees which loans, its filters, sort orders and pages.

Filters come from the query string (as B's home page links them: ?stage=, ?status=,
?manager=<username>); an unknown value of a choice, a number that is not one or a sort
column not in SORT_KEYS is ignored rather than refused, and reported in `Filters.ignored`.

Pages are bounded, not counted to the end: at most MAX_PAGES pages of PER_PAGE, and the
count stops at the last row they can show ("more than …"). Every sort order is an index
walk stopped after a page (loan number: unique index; borrower: ix_loans_borrower_name;
DPD and stage: ix_loans_dpd_id, stage following DPD; outstanding and due date:
loan_balances' indexes; each ends with the loan id, the tie-breaker), so a page costs about
the same at 100k loans as at 100 (bench/search.py).
"""
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy import false, func, select

from accounts.models import User
from accounts.roles import CASE_READERS
from cases.models import RISK_GROUP_LABELS, STAGES, STATUS_LABELS, Loan
from extensions import db

PER_PAGE = 25
MAX_PAGES = 40  # 1,000 rows: past that, the filters narrow better than paging does
MAX_ROWS = PER_PAGE * MAX_PAGES
MAX_DPD = 100_000
MAX_AMOUNT = Decimal("1e15")


def visible(user):
    """The loans `user` may list, as a WHERE clause (None: every loan). As cases.access: the
    case readers see every case, an account manager the loans they manage, anyone else none
    (they reach a case they hold a task of from that task)."""
    if user.roles & CASE_READERS:
        return None
    if db.session.get_bind().dialect.name == "sqlite":
        # "+ 0": not through the index on the manager. SQLite has no statistics to know that
        # a manager holds a quarter of the book; the other conditions (a key range, a stage,
        # a DPD range) or the sort order's index lead, and this is checked on the rows they
        # give (bench/search.py, SQLite at 100k: 450 -> 10 ms). PostgreSQL's planner knows
        # (there "+ 0" made an account manager's page by outstanding 48 ms instead of 9).
        return Loan.account_manager_id + 0 == user.id
    return Loan.account_manager_id == user.id


def _sorts():
    from search.models import LoanBalance
    return {"loan_no": (Loan.loan_no,), "borrower": (Loan.borrower_name,),
            "dpd": (Loan.dpd,), "stage": (Loan.dpd,),  # the stage is a range of DPD
            "outstanding": (LoanBalance.outstanding,), "due": (LoanBalance.next_due_on,),
            "id": ()}


SORT_KEYS = ("loan_no", "borrower", "dpd", "stage", "outstanding", "due", "id")


@dataclass
class Filters:
    q: str = ""
    stage: str = ""
    status: str = ""
    manager: str = ""      # a username
    risk_group: str = ""
    dpd_min: int | None = None
    dpd_max: int | None = None
    outstanding_min: Decimal | None = None
    outstanding_max: Decimal | None = None
    sort: str = "id"
    direction: str = "desc"
    page: int = 1
    ignored: list = field(default_factory=list)  # parameters that were not understood

    def args(self, **changes):
        """The query string of these filters (for links: sorting, pages), only what is set."""
        values = {"q": self.q, "stage": self.stage, "status": self.status,
                  "manager": self.manager, "risk_group": self.risk_group,
                  "dpd_min": self.dpd_min, "dpd_max": self.dpd_max,
                  "outstanding_min": self.outstanding_min,
                  "outstanding_max": self.outstanding_max,
                  "sort": self.sort, "dir": self.direction} | changes
        return {k: v for k, v in values.items()
                if v not in (None, "") and not (k == "sort" and v == "id"
                                                and values.get("dir") == "desc")
                and not (k == "dir" and values.get("sort") == "id" and v == "desc")}

    @property
    def active(self):
        return any((self.q, self.stage, self.status, self.manager, self.risk_group,
                    self.dpd_min is not None, self.dpd_max is not None,
                    self.outstanding_min is not None, self.outstanding_max is not None))


def _int(value, name, ignored, low=0, high=MAX_DPD):
    if value in (None, ""):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        ignored.append(name)
        return None
    if not low <= number <= high:
        ignored.append(name)
        return None
    return number


def _amount(value, name, ignored):
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value).replace(",", "").replace("¥", "").strip())
    except InvalidOperation:
        ignored.append(name)
        return None
    if not number.is_finite() or not 0 <= number < MAX_AMOUNT:
        ignored.append(name)
        return None
    return number.quantize(Decimal("0.01"))


def _choice(value, name, choices, ignored):
    value = (value or "").strip()
    if value and value not in choices:
        ignored.append(name)
        return ""
    return value


def parse_filters(args):
    """Filters of a request's query string (a MultiDict or a dict)."""
    ignored = []
    f = Filters(ignored=ignored)
    f.q = (args.get("q") or "").strip()[:200]
    f.stage = _choice(args.get("stage"), "stage", STAGES, ignored)
    f.status = _choice(args.get("status"), "status", STATUS_LABELS, ignored)
    f.risk_group = _choice(args.get("risk_group"), "risk_group", RISK_GROUP_LABELS, ignored)
    f.manager = (args.get("manager") or "").strip()[:80]
    f.dpd_min = _int(args.get("dpd_min"), "dpd_min", ignored)
    f.dpd_max = _int(args.get("dpd_max"), "dpd_max", ignored)
    f.outstanding_min = _amount(args.get("outstanding_min"), "outstanding_min", ignored)
    f.outstanding_max = _amount(args.get("outstanding_max"), "outstanding_max", ignored)
    f.sort = _choice(args.get("sort"), "sort", SORT_KEYS, ignored) or "id"
    f.direction = _choice(args.get("dir"), "dir", ("asc", "desc"), ignored) or (
        "desc" if f.sort == "id" else "asc")
    f.page = _int(args.get("page"), "page", ignored, low=1, high=MAX_PAGES) or 1
    return f


@dataclass
class Listing:
    filters: Filters
    rows: list
    total: int        # counted up to MAX_ROWS + 1
    pages: int

    @property
    def total_capped(self):
        return self.total > MAX_ROWS


def _where(query, filters, user):
    from search.models import LoanBalance
    from search.operations import matching_loan_ids
    rule = visible(user)
    if rule is not None:
        query = query.where(rule)
    if filters.q:
        ids = matching_loan_ids(filters.q)
        # Nothing left of the text once normalized (only punctuation): nothing matches.
        query = query.where(Loan.id.in_(ids) if ids is not None else Loan.id.is_(None))
    if filters.stage:
        query = query.where(Loan.stage == filters.stage)
    if filters.status:
        query = query.where(Loan.status == filters.status)
    if filters.risk_group:
        query = query.where(Loan.risk_group == filters.risk_group)
    if filters.manager and rule is not None:
        # An account manager lists only their own loans: another manager's are none.
        if filters.manager != user.username:
            query = query.where(false())
    elif filters.manager:
        query = query.where(Loan.account_manager_id == select(User.id).where(
            User.username == filters.manager).scalar_subquery())
    if filters.dpd_min is not None:
        query = query.where(Loan.dpd >= filters.dpd_min)
    if filters.dpd_max is not None:
        query = query.where(Loan.dpd <= filters.dpd_max)
    if filters.outstanding_min is not None:
        query = query.where(LoanBalance.outstanding >= filters.outstanding_min)
    if filters.outstanding_max is not None:
        query = query.where(LoanBalance.outstanding <= filters.outstanding_max)
    return query


def list_cases(session, user, filters):
    """One page of the loans `user` may see that pass `filters`, sorted."""
    from search.models import LoanBalance
    columns = _sorts()[filters.sort]
    descending = filters.direction == "desc"
    order = [c.desc() if descending else c.asc() for c in columns]
    # Ties by loan id; from the balance's side when its index leads (the same id).
    tie = LoanBalance.loan_id if filters.sort in ("outstanding", "due") else Loan.id
    order.append(tie.desc() if descending else tie.asc())
    page = min(filters.page, MAX_PAGES)
    query = _where(select(
        Loan.id, Loan.loan_no, Loan.borrower_name, Loan.stage, Loan.status, Loan.dpd,
        Loan.risk_group, Loan.maturity_on, Loan.account_manager_id,
        LoanBalance.outstanding, LoanBalance.next_due_on, User.display_name, User.username)
        .select_from(Loan).join(User, User.id == Loan.account_manager_id)
        # Every loan has its balance row (its installments' trigger writes it): an inner
        # join, so that the balance's indexes may lead.
        .join(LoanBalance, LoanBalance.loan_id == Loan.id), filters, user)
    rows = session.execute(query.order_by(*order).limit(PER_PAGE)
                           .offset((page - 1) * PER_PAGE)).all()
    counted = select(Loan.id).select_from(Loan)
    if filters.outstanding_min is not None or filters.outstanding_max is not None:
        counted = counted.join(LoanBalance, LoanBalance.loan_id == Loan.id)
    counted = _where(counted, filters, user).limit(MAX_ROWS + 1).subquery()
    total = session.scalar(select(func.count()).select_from(counted))
    pages = max(1, min(MAX_PAGES, -(-min(total, MAX_ROWS) // PER_PAGE)))
    return Listing(filters=filters, rows=rows, total=total, pages=pages)


def account_managers(session):
    """(username, label) of the users with the account manager role, for the filter."""
    from accounts.models import UserRole
    return [(u.username, u.label) for u in session.scalars(
        select(User).join(UserRole).where(UserRole.role == "account_manager")
        .order_by(User.username))]
