"""The header search: loans by loan number, borrower name, ID number or phone.

A query is normalized like the keys (search.normalize) and read as one range of
search_keys' primary key (search.models). Anything typed is only ever a bound value of that
range, so SQL or FTS syntax (quotes, *, %, _, NEAR) is searched for as text, never
interpreted; a query with nothing left after normalizing finds nothing.
"""
from dataclasses import dataclass, field

from sqlalchemy import select

from accounts.models import User
from cases.listing import visible
from cases.models import Loan
from extensions import db
from pii.rules import ID_NUMBER, PHONE, shown
from search.models import LoanBalance, SearchKey
from search.normalize import KEY_LENGTH, normalize

RESULT_LIMIT = 50
# Keys read per query at most: a one-character query matching half the book stays bounded.
CANDIDATES = 2000
# Past every character: key < q + TOP is "starts with q" in byte order.
TOP = "\U0010ffff"
# Which match ranks first for the same loan, and between loans matched equally well.
KIND_ORDER = {"loan": 0, "id": 1, "phone": 2, "name": 3}


@dataclass
class Hit:
    loan_id: int
    loan_no: str
    borrower_name: str
    stage: str
    status: str
    dpd: int
    outstanding: object
    manager: str
    manager_id: int
    kind: str   # what matched: loan | id | phone | name
    key: str    # the normalized key that matched (an ID number or phone: shown masked)
    exact: bool


@dataclass
class Results:
    query: str
    hits: list = field(default_factory=list)
    more: bool = False  # more loans matched than are listed

    @property
    def loan_no_hit(self):
        """The loan number typed in full, when it is that loan's and nothing else matched
        as well: the search may go straight to the case."""
        exact = [h for h in self.hits if h.exact and h.kind == "loan"]
        return exact[0].loan_no if len(exact) == 1 else None


def key_range(text):
    """(low, high) of the keys that start with the normalized text, or None when nothing is
    left of it."""
    low = normalize((text or "")[:4 * KEY_LENGTH])
    return (low, low + TOP) if low else None


def matching_loan_ids(text):
    """A SELECT of the ids of loans with a key starting with the normalized text (None when
    the text normalizes to nothing): the case list's `q` filter."""
    bounds = key_range(text)
    if bounds is None:
        return None
    return select(SearchKey.loan_id).where(SearchKey.key >= bounds[0],
                                           SearchKey.key < bounds[1])


def search(user, text, limit=RESULT_LIMIT):
    """The loans `user` may see that match `text`, best first: an exact key before a prefix,
    then a loan number before an ID number, a phone and a name, then the newest loan."""
    bounds = key_range(text)
    results = Results(query=text or "")
    if bounds is None:
        return results
    low, high = bounds
    candidates = select(SearchKey.loan_id, SearchKey.key, SearchKey.kind).where(
        SearchKey.key >= low, SearchKey.key < high)
    rule = visible(user)
    if rule is not None:
        candidates = candidates.join(Loan, Loan.id == SearchKey.loan_id).where(rule)
    best, read = {}, 0
    for loan_id, key, kind in db.session.execute(candidates.limit(CANDIDATES)):
        read += 1
        rank = (key != low, KIND_ORDER.get(kind, 9))
        if loan_id not in best or rank < best[loan_id][0]:
            best[loan_id] = (rank, key, kind)
    ranked = sorted(best, key=lambda i: (best[i][0], -i))
    # Past CANDIDATES keys more loans may match than were read.
    results.more = len(ranked) > limit or read == CANDIDATES
    chosen = ranked[:limit]
    if not chosen:
        return results
    loans = {row.id: row for row in db.session.execute(
        select(Loan.id, Loan.loan_no, Loan.borrower_name, Loan.stage, Loan.status, Loan.dpd,
               Loan.account_manager_id, LoanBalance.outstanding, User.display_name,
               User.username)
        .join(User, User.id == Loan.account_manager_id)
        .outerjoin(LoanBalance, LoanBalance.loan_id == Loan.id)
        .where(Loan.id.in_(chosen)))}
    for loan_id in chosen:
        row = loans.get(loan_id)
        if row is None:
            continue
        (missed, _order), key, kind = best[loan_id]
        results.hits.append(Hit(
            loan_id=loan_id, loan_no=row.loan_no, borrower_name=row.borrower_name,
            stage=row.stage, status=row.status, dpd=row.dpd, outstanding=row.outstanding,
            manager=row.display_name or row.username, manager_id=row.account_manager_id,
            kind=kind, key=key, exact=not missed))
    return results


def shown_key(hit, user):
    """What matched, as `user` may see it: an ID number or phone masked unless the user's
    role sees it in full (pii.rules), a loan number or name as is."""
    if hit.kind not in ("id", "phone"):
        return ""
    value = hit.key.upper() if hit.kind == "id" else hit.key

    class _Loan:  # what pii.rules's "own loans" rule reads
        account_manager_id = hit.manager_id
    return shown(value, ID_NUMBER if hit.kind == "id" else PHONE, user, _Loan)
