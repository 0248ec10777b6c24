"""The dashboard's figures of one month: balances per bucket and per category, NPL ratio and
provision coverage over time. Every figure is one aggregate over loan_month_snapshots (GROUP
BY on the month's rows, read through the (month, bucket) and (month, team_id) indexes);
nothing here recomputes history from the ledger. The month-over-month figures are in
portfolio/rates.py."""
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import gettext as _
from sqlalchemy import case, func, select

from extensions import db
from portfolio.dashboard import Table, months_ending
from portfolio.labels import BUCKET_LABELS, BUCKETS, CATEGORY_LABELS, NON_PERFORMING
from portfolio.models import CATEGORIES
from portfolio.models import LoanMonthSnapshot as S

CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.000001")


def money(value):
    """A sum as Decimal to the cent (SQLite sums numerics as floats)."""
    return Decimal(str(value or 0)).quantize(CENT, ROUND_HALF_UP)


def ratio(part, whole):
    """part / whole to six places, None when there is nothing to divide by."""
    if not whole:
        return None
    return (Decimal(str(part or 0)) / Decimal(str(whole))).quantize(RATE_PLACES, ROUND_HALF_UP)


def month_label(month):
    return month.strftime("%Y-%m")


def series(name, values, unit):
    """One series of a chart: numbers as strings (Decimal stays exact in JSON)."""
    return {"name": str(name), "unit": unit,
            "data": [None if value is None else str(value) for value in values]}


def chart(kind, label, x, *all_series, y=None):
    found = {"type": kind, "label": str(label), "x": [str(item) for item in x],
             "series": list(all_series)}
    if y is not None:
        found["y"] = [str(item) for item in y]
    return found


def buckets(filters):
    """Open loans per DPD bucket at the month's end: count, balance, share of the balance."""
    found = {bucket: (0, money(0)) for bucket in BUCKETS}
    if filters.month:
        rows = db.session.execute(
            select(S.bucket, func.count(), func.sum(S.balance))
            .where(S.month == filters.month, S.bucket != "closed", *filters.where(S))
            .group_by(S.bucket)).all()
        found.update({bucket: (count, money(balance)) for bucket, count, balance in rows})
    total_count = sum(count for count, _balance in found.values())
    total = sum((balance for _count, balance in found.values()), money(0))
    order = list(BUCKETS) + sorted(set(found) - set(BUCKETS))  # nothing unknown is dropped
    rows = [[str(BUCKET_LABELS.get(b, b)), found[b][0], found[b][1], ratio(found[b][1], total)]
            for b in order]
    rows.append([_("Total"), total_count, total, ratio(total, total)])
    labels = [row[0] for row in rows[:-1]]
    return Table(
        "buckets", _("Balances and loans per bucket"),
        [(_("Bucket"), "text"), (_("Loans"), "count"), (_("Balance"), "money"),
         (_("Share of the balance"), "rate")], rows,
        chart("bar", _("Bar chart of the balance and the number of loans per bucket"), labels,
              series(_("Balance"), [row[2] for row in rows[:-1]], "money"),
              series(_("Loans"), [row[1] for row in rows[:-1]], "count")),
        note=_("Open loans at the month's end; the buckets by days past due."))


def categories(filters):
    """Open loans per category at the month's end: count, balance, provision."""
    found = {category: (0, money(0), money(0)) for category in CATEGORIES}
    if filters.month:
        rows = db.session.execute(
            select(S.category, func.count(), func.sum(S.balance), func.sum(S.provision))
            .where(S.month == filters.month, S.bucket != "closed", *filters.where(S))
            .group_by(S.category)).all()
        found.update({c: (n, money(b), money(p)) for c, n, b, p in rows})
    order = list(CATEGORIES) + sorted(set(found) - set(CATEGORIES))
    rows = [[str(CATEGORY_LABELS.get(c, c)), found[c][0], found[c][1], found[c][2],
             ratio(found[c][2], found[c][1])] for c in order]
    total_count = sum(row[1] for row in rows)
    balance = sum((row[2] for row in rows), money(0))
    provision = sum((row[3] for row in rows), money(0))
    rows.append([_("Total"), total_count, balance, provision, ratio(provision, balance)])
    labels = [row[0] for row in rows[:-1]]
    return Table(
        "categories", _("Balances and provisions per category"),
        [(_("Classification"), "text"), (_("Loans"), "count"), (_("Balance"), "money"),
         (_("Provision"), "money"), (_("Provision to balance"), "rate")], rows,
        chart("bar", _("Bar chart of the balance and the provision per category"), labels,
              series(_("Balance"), [row[2] for row in rows[:-1]], "money"),
              series(_("Provision"), [row[3] for row in rows[:-1]], "money")),
        note=_("Open loans at the month's end in the five categories; the provision is the "
               "balance times the category's rate when the month was closed."))


def npl_over_time(filters):
    """Per month (the twelve ending at the chosen one): the NPL ratio (balance in the three
    lower categories over the balance of open loans) and the provision coverage (provisions
    over the NPL balance)."""
    rows = []
    if filters.month:
        months = months_ending(filters.month)
        npl = case((S.category.in_(NON_PERFORMING), S.balance), else_=0)
        found = db.session.execute(
            select(S.month, func.sum(S.balance), func.sum(npl), func.sum(S.provision))
            .where(S.month >= months[0], S.month <= months[-1], S.bucket != "closed",
                   *filters.where(S))
            .group_by(S.month).order_by(S.month)).all()
        for month, balance, npl_balance, provision in found:
            balance, npl_balance, provision = money(balance), money(npl_balance), money(provision)
            rows.append([month_label(month), balance, npl_balance, ratio(npl_balance, balance),
                         provision, ratio(provision, npl_balance)])
    return Table(
        "npl", _("NPL ratio and provision coverage"),
        [(_("Month"), "text"), (_("Balance of open loans"), "money"), (_("NPL balance"), "money"),
         (_("NPL ratio"), "rate"), (_("Provisions"), "money"),
         (_("Provision coverage"), "rate")], rows,
        chart("line", _("Line chart of the NPL ratio and the provision coverage by month"),
              [row[0] for row in rows],
              series(_("NPL ratio"), [row[3] for row in rows], "rate"),
              series(_("Provision coverage"), [row[5] for row in rows], "rate")),
        note=_("NPL ratio: the balance of substandard, doubtful and loss loans over the balance "
               "of all open loans. Provision coverage: all provisions over the NPL balance (a "
               "dash when there is no NPL). The twelve months ending with the chosen one."))
