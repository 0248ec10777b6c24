"""The month-over-month figures: roll rates (迁徙率), the flow rate into M1 (流入率), collection
rates per stage and per collector, and recovery by age of debt against the rule book's odds.

Each joins a loan's snapshot at the previous month's end (the cohort: the filters apply to
it) with its snapshot at this month's end, in one aggregate query; a loan without a snapshot
at this month's end counts as closed. "Previous month" is the calendar month before."""
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import Date, and_, case, func, literal, select, union_all
from sqlalchemy.orm import aliased

from accounts.models import User
from extensions import db
from portfolio.dashboard import Table, month_add, months_ending
from portfolio.figures import chart, money, month_label, ratio, series
from portfolio.labels import BUCKET_LABELS, BUCKETS
from portfolio.models import LoanMonthSnapshot as S

TARGETS = BUCKETS + ("closed",)
OVERDUE_BUCKETS = ("M1", "M2", "M3", "M3+")
# Age of the debt in days past due, and the rule book's odds of recovering a debt of that age
# (DOMAIN.md §4, [000 ch.2 §六.3]): "almost always" under two months (written here as 95%),
# about 80% within 100 days, 26.6% after one year, 13.6% after two years; the book gives no
# figure between 100 days and a year.
AGE_BANDS = (("1-60", 60, Decimal("0.95")), ("61-100", 100, Decimal("0.80")),
             ("101-365", 365, None), ("366-730", 730, Decimal("0.266")),
             ("731+", None, Decimal("0.136")))


def _band_labels():
    return {"1-60": _("Up to 60 days"), "61-100": _("61–100 days"),
            "101-365": _("101–365 days"), "366-730": _("366–730 days"),
            "731+": _("Over 730 days")}


def _pair():
    """(previous month's snapshot, this month's) as aliases."""
    return aliased(S, name="prev"), aliased(S, name="cur")


def roll_rates(filters):
    """Two tables: the share of the previous month-end balance of each bucket found in each
    bucket at this month's end (balance-weighted), and the same in numbers of loans."""
    cells = {}
    if filters.month:
        prev, cur = _pair()
        target = func.coalesce(cur.bucket, "closed")
        rows = db.session.execute(
            select(prev.bucket, target, func.count(), func.sum(prev.balance))
            .select_from(prev)
            .outerjoin(cur, and_(cur.loan_id == prev.loan_id, cur.month == filters.month))
            .where(prev.month == filters.previous, prev.bucket != "closed",
                   *filters.where(prev))
            .group_by(prev.bucket, target)).all()
        cells = {(source, to): (count, money(balance)) for source, to, count, balance in rows}
    sources = list(BUCKETS) + sorted({s for s, _to in cells} - set(BUCKETS))
    label = {b: str(BUCKET_LABELS.get(b, b)) for b in set(sources) | set(TARGETS)}
    share_rows, count_rows = [], []
    for source in sources:
        counts = [cells.get((source, to), (0, money(0)))[0] for to in TARGETS]
        balances = [cells.get((source, to), (0, money(0)))[1] for to in TARGETS]
        whole = sum(balances, money(0))
        share_rows.append([label[source], sum(counts), whole]
                          + [ratio(part, whole) for part in balances])
        count_rows.append([label[source], sum(counts)] + counts)
    heads = [(label[to], "rate") for to in TARGETS]
    first = (_("Bucket at the previous month's end"), "text")
    matrix = [[row[3 + i] for i in range(len(TARGETS))] for row in share_rows]
    note = _("Rows: the bucket at the end of the previous month; columns: the bucket at the "
             "end of this month (closed: paid off or closed). Balance-weighted: each cell is "
             "the share of the row's balance at the previous month's end.")
    shares = Table(
        "roll_rates", _("Roll rates (balance-weighted)"),
        [first, (_("Loans"), "count"), (_("Balance at the previous month's end"), "money")]
        + heads, share_rows,
        {**chart("heatmap", _("Heat map of the roll rates between buckets"),
                 [label[to] for to in TARGETS], y=[label[s] for s in sources]),
         "matrix": [[None if v is None else str(v) for v in row] for row in matrix]},
        note=note)
    counts = Table("roll_counts", _("Roll rates (numbers of loans)"),
                   [first, (_("Loans"), "count")] + [(label[to], "count") for to in TARGETS],
                   count_rows)
    return shares, counts


def _month_pairs(months):
    """A derived table of (month, previous month): one join covers every month."""
    selects = [select(literal(m, Date).label("month"),
                      literal(month_add(m, -1), Date).label("previous")) for m in months]
    return union_all(*selects).subquery("pairs")


def flow_rate(filters):
    """Per month: of the balance current at the previous month's end with something due in
    this month, the share in M1 at this month's end."""
    rows = []
    if filters.month:
        prev, cur = _pair()
        pairs = _month_pairs(months_ending(filters.month))
        in_m1 = case((cur.bucket == "M1", prev.balance), else_=0)
        found = db.session.execute(
            select(pairs.c.month, func.count(), func.sum(prev.balance), func.sum(in_m1))
            .select_from(pairs)
            .join(prev, prev.month == pairs.c.previous)
            .join(cur, and_(cur.loan_id == prev.loan_id, cur.month == pairs.c.month))
            .where(prev.bucket == "current", cur.due_in_month > 0, *filters.where(prev))
            .group_by(pairs.c.month).order_by(pairs.c.month)).all()
        for month, count, balance, flowed in found:
            balance, flowed = money(balance), money(flowed)
            rows.append([month_label(month), count, balance, flowed, ratio(flowed, balance)])
    return Table(
        "flow", _("Flow rate into M1"),
        [(_("Month"), "text"), (_("Loans"), "count"),
         (_("Current balance with a payment due"), "money"), (_("Of which in M1"), "money"),
         (_("Flow rate into M1"), "rate")], rows,
        chart("line", _("Line chart of the flow rate into M1 by month"),
              [row[0] for row in rows], series(_("Flow rate into M1"), [r[4] for r in rows],
                                               "rate")),
        note=_("Of the balance that was current at the previous month's end and had a payment "
               "due in the month, the share that is in M1 at the month's end."))


def _collection_query(filters, key):
    prev, cur = _pair()
    collected = func.coalesce(cur.collected_in_month, 0)
    capped = case((collected > prev.overdue_amount, prev.overdue_amount), else_=collected)
    group = key(prev)
    return db.session.execute(
        select(group, func.count(), func.sum(prev.overdue_amount), func.sum(capped))
        .select_from(prev)
        .outerjoin(cur, and_(cur.loan_id == prev.loan_id, cur.month == filters.month))
        .where(prev.month == filters.previous, prev.overdue_amount > 0, *filters.where(prev))
        .group_by(group)).all()


def _collection_table(key, title, first, rows, label):
    total = [_("Total"), sum(r[1] for r in rows), sum((r[2] for r in rows), money(0)),
             sum((r[3] for r in rows), money(0))]
    total.append(ratio(total[3], total[2]))
    return Table(key, title, [first, (_("Loans"), "count"),
                              (_("Overdue at the previous month's end"), "money"),
                              (_("Collected in the month"), "money"),
                              (_("Collection rate"), "rate")], rows + [total],
                 chart("bar", label, [r[0] for r in rows],
                       series(_("Collection rate"), [r[4] for r in rows], "rate")),
                 note=_("What was collected in the month, up to the amount overdue at the "
                        "previous month's end, over that overdue amount."))


def collection_rates(filters):
    """Two tables: per bucket at the previous month's end, and per collector then."""
    by_bucket, by_collector = {}, []
    if filters.month:
        by_bucket = {b: (n, money(o), money(c))
                     for b, n, o, c in _collection_query(filters, lambda p: p.bucket)}
        by_collector = _collection_query(filters, lambda p: p.collector_id)
    order = [b for b in OVERDUE_BUCKETS if b in by_bucket] + sorted(
        set(by_bucket) - set(OVERDUE_BUCKETS))
    stage_rows = [[str(BUCKET_LABELS.get(b, b)), by_bucket[b][0], by_bucket[b][1],
                   by_bucket[b][2], ratio(by_bucket[b][2], by_bucket[b][1])] for b in order]
    ids = [row[0] for row in by_collector if row[0] is not None]
    names = {u.id: u.label for u in User.query.filter(User.id.in_(ids))} if ids else {}
    collector_rows = sorted(
        ([names.get(c, _("Not assigned")) if c is not None else _("Not assigned"), n,
          money(o), money(got), ratio(money(got), money(o))] for c, n, o, got in by_collector),
        key=lambda row: row[0])
    stage = _collection_table("collection_stage", _("Collection rate per stage"),
                              (_("Bucket at the previous month's end"), "text"), stage_rows,
                              _("Bar chart of the collection rate per bucket"))
    person = _collection_table("collection_collector", _("Collection rate per collector"),
                               (_("Collector"), "text"), collector_rows,
                               _("Bar chart of the collection rate per collector"))
    return stage, person


def _band(snapshot):
    whens = [(snapshot.dpd <= upper, key) for key, upper, _odds in AGE_BANDS if upper]
    return case(*whens, else_=AGE_BANDS[-1][0])


def recovery(filters):
    """Per age band: of the loans overdue in the band at a month end within the twelve months
    before the chosen one (each loan once per band), the share current or closed at a later
    month end up to the chosen one; beside it the rule book's odds."""
    found = {}
    if filters.month:
        months = months_ending(month_add(filters.month, -1))
        # One pass over the window, grouped by loan: the first month end in each band, and
        # the last month end current or closed; a loan recovered from a band when the latter
        # is after the former.
        overdue = and_(S.month < filters.month, S.dpd > 0, S.bucket != "closed")
        band = _band(S)
        firsts = [func.min(case((and_(overdue, band == key), S.month))).label(f"b{i}")
                  for i, (key, _upper, _odds) in enumerate(AGE_BANDS)]
        cured = func.max(case((S.bucket.in_(("current", "closed")), S.month))).label("cured")
        per_loan = (select(*firsts, cured)
                    .where(S.month >= months[0], S.month <= filters.month, *filters.where(S))
                    .group_by(S.loan_id).subquery("per_loan"))
        sums = []
        for i in range(len(AGE_BANDS)):
            first = per_loan.c[f"b{i}"]
            sums += [func.count(first),
                     func.sum(case((per_loan.c.cured > first, 1), else_=0))]
        totals = db.session.execute(select(*sums)).one()
        found = {key: (totals[2 * i], int(totals[2 * i + 1] or 0))
                 for i, (key, _upper, _odds) in enumerate(AGE_BANDS)}
    labels = _band_labels()
    rows = [[labels[key], found.get(key, (0, 0))[0], found.get(key, (0, 0))[1],
             ratio(found.get(key, (0, 0))[1], found.get(key, (0, 0))[0]), odds]
            for key, _upper, odds in AGE_BANDS]
    return Table(
        "recovery", _("Recovery by age of debt"),
        [(_("Days past due"), "text"), (_("Loans"), "count"), (_("Recovered"), "count"),
         (_("Our recovery rate"), "rate"), (_("The rule book's odds"), "rate")], rows,
        chart("bar", _("Bar chart of our recovery rate beside the rule book's odds per age of "
                       "debt"), [row[0] for row in rows],
              series(_("Our recovery rate"), [row[3] for row in rows], "rate"),
              series(_("The rule book's odds"), [row[4] for row in rows], "rate")),
        note=_("Ours: of the loans overdue at a month end in the twelve months before the "
               "chosen one, counted once per age band, the share that were current or closed "
               "at a later month end up to the chosen one. The rule book's: its odds of "
               "recovering a debt of that age (\"almost always\" under two months, written as "
               "95%; no figure between 100 days and a year)."))
