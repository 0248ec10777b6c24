"""Five-category classification (五级分类) of every open loan, and its provisions.

The rule category of a loan is the worst category whose least DPD the loan has reached,
raised to the policy's floor when the loan was extended (a LoanExtension row). An approved
override (portfolio.overrides) replaces it until lifted; `rule_category` is still kept.

The daily run classifies the book set-based (a hook in cases.staging.AFTER_DAILY_RUN), in a
handful of statements whatever its size: one INSERT…SELECT of the first classifications (and
one of their CategoryChange rows), one INSERT…SELECT of the changes and one UPDATE…FROM of
the rows whose category moved. A loan whose category stays is not written. One audit event
per run sums it up (the per-loan facts are the CategoryChange rows).

Provision = balance (principal outstanding) × the rate of the category, to the cent (half
up), computed in whole cents so that both databases give the same figure.
"""
from decimal import Decimal

from sqlalchemy import (BigInteger, and_, case, cast, exists, func, insert, literal, or_,
                        select, text, update)

from audit.operations import record
from cases.models import Loan, LoanExtension
from extensions import db
from ledger.models import Installment, WriteOff
from portfolio.labels import NON_PERFORMING
from portfolio.models import CATEGORIES, CategoryChange, LoanCategory
from portfolio.rules import current_rules
from workflows import clock

OPEN = Loan.status != "closed"
# First classifications after which PostgreSQL's statistics of loan_categories are refreshed.
ANALYZE_AFTER = 1000


# ---------------------------------------------------------------- the rule

def rule_category(rules, dpd, extended):
    """The rules' category of one loan, in Python (the SQL below says the same)."""
    category = "normal"
    for name in CATEGORIES[1:]:
        if dpd >= rules.min_dpd[name]:
            category = name
    if extended and CATEGORIES.index(category) < CATEGORIES.index(rules.extended_floor):
        category = rules.extended_floor
    return category


def rule_category_sql(rules, dpd, extended):
    """rule_category as a SQL CASE over a DPD column and an "extended" condition."""
    floor = CATEGORIES.index(rules.extended_floor)
    whens = []
    for rank in range(len(CATEGORIES) - 1, 0, -1):
        condition = dpd >= rules.min_dpd[CATEGORIES[rank]]
        if rank <= floor:
            condition = or_(condition, extended)
        whens.append((condition, literal(CATEGORIES[rank])))
    return case(*whens, else_=literal("normal"))


def _extended(loan_id_column):
    return exists().where(LoanExtension.loan_id == loan_id_column)


def _rule_of_loans(rules):
    return rule_category_sql(rules, Loan.dpd, _extended(Loan.id))


# ---------------------------------------------------------------- the daily classification

def inserted(statement, column):
    """Run an INSERT…SELECT and return how many rows it wrote (psycopg 3 reports -1 as the
    rowcount of an INSERT…SELECT built by SQLAlchemy, so the rows are counted by RETURNING)."""
    return len(db.session.execute(statement.returning(column)).all())


def classify(as_of, actor=None):
    """Classify every open loan as of `as_of` (their DPD as staged). Flushes; the caller
    commits (the daily run, or reclassify_now). Returns the counts."""
    rules = current_rules()
    now = clock.now()
    changes, categories = CategoryChange.__table__, LoanCategory.__table__
    rule = _rule_of_loans(rules).label("rule")
    unclassified = (select(Loan.id.label("loan_id"), Loan.dpd.label("dpd"), rule)
                    .where(OPEN, ~exists().where(categories.c.loan_id == Loan.id))
                    .subquery("unclassified"))
    # The first classifications' changes, then their rows from what that INSERT returned: an
    # INSERT…SELECT into loan_categories guarded by NOT EXISTS on loan_categories itself would
    # re-read its own new rows for every loan on PostgreSQL (quadratic: 65 s at 100k loans).
    firsts = db.session.execute(insert(changes).from_select(
        ["loan_id", "changed_on", "to_category", "basis", "dpd", "reason", "recorded_at"],
        select(unclassified.c.loan_id, literal(as_of), unclassified.c.rule, literal("rules"),
               unclassified.c.dpd, literal(""), literal(now)))
        .returning(changes.c.loan_id, changes.c.to_category)).all()
    first = len(firsts)
    if firsts:
        db.session.execute(insert(categories), [
            {"loan_id": loan_id, "category": category, "rule_category": category,
             "basis": "rules", "since": as_of, "updated_on": as_of}
            for loan_id, category in firsts])
        if first >= ANALYZE_AFTER and db.session.get_bind().dialect.name == "postgresql":
            # A book classified for the first time: fresh statistics, or the planner takes
            # loan_categories for empty and joins it to the loans in a nested loop below.
            db.session.execute(text("ANALYZE loan_categories"))
    # The classified open loans whose rules' category moved (read by both statements).
    moved = and_(categories.c.loan_id == Loan.id, OPEN)
    changed = inserted(insert(changes).from_select(
        ["loan_id", "changed_on", "from_category", "to_category", "basis", "dpd", "reason",
         "recorded_at"],
        select(categories.c.loan_id, literal(as_of), categories.c.category, rule,
               literal("rules"), Loan.dpd, literal(""), literal(now))
        .select_from(categories.join(Loan.__table__, moved))
        .where(categories.c.basis == "rules", categories.c.category != rule)), changes.c.id)
    new_rule = _rule_of_loans(rules)
    by_rules = categories.c.basis == "rules"
    updated = db.session.execute(
        update(categories).where(moved, or_(categories.c.rule_category != new_rule,
                                            and_(by_rules, categories.c.category != new_rule)))
        .values(rule_category=new_rule,
                category=case((by_rules, new_rule), else_=categories.c.category),
                since=case((and_(by_rules, categories.c.category != new_rule), as_of),
                           else_=categories.c.since),
                updated_on=as_of)
        .execution_options(synchronize_session=False)).rowcount
    counts = {"classified_first": first, "category_changes": changed,
              "classification_rows_updated": updated}
    record("portfolio.classified", actor=actor, data={"as_of": as_of.isoformat(), **counts,
                                                      "categories": category_counts()})
    return counts


def daily_hook(as_of, actor):
    counts = classify(as_of, actor)
    return {"category_changes": counts["category_changes"] + counts["classified_first"]}


def reclassify_now(actor, as_of=None):
    """'Reclassify now' after a rules edit: the same classification, today, committed."""
    counts = classify(as_of or clock.today(), actor)
    db.session.commit()
    return counts


def category_counts():
    """{category: open loans holding it}."""
    rows = db.session.execute(select(LoanCategory.category, func.count())
                              .join(Loan, Loan.id == LoanCategory.loan_id).where(OPEN)
                              .group_by(LoanCategory.category)).all()
    found = dict(rows)
    return {c: found.get(c, 0) for c in CATEGORIES}


# ---------------------------------------------------------------- reading a loan's category

def categories_of(loan_ids):
    """{loan id: category} of many loans in two queries: the stored category, else (not yet
    classified) what the rules give now."""
    loan_ids = list(loan_ids)
    if not loan_ids:
        return {}
    found = dict(db.session.execute(select(LoanCategory.loan_id, LoanCategory.category)
                                    .where(LoanCategory.loan_id.in_(loan_ids))).all())
    missing = [i for i in loan_ids if i not in found]
    if missing:
        rules = current_rules()
        found.update(db.session.execute(select(Loan.id, _rule_of_loans(rules))
                                        .where(Loan.id.in_(missing))).all())
    return found


def category_of(loan_id):
    """The category a loan holds now (None for an unknown loan)."""
    return categories_of([loan_id]).get(loan_id)


# ---------------------------------------------------------------- balances and provisions

def rate_bp_sql(rules, category_column):
    """The provision rate of a category column, in basis points (an integer)."""
    return case(*[(category_column == c, literal(int(rules.rates[c] * 10000)))
                  for c in CATEGORIES], else_=literal(0))


def provision_cents_sql(balance_cents, rate_bp):
    """Balance (whole cents) × rate (basis points), rounded half up to the cent."""
    return (balance_cents * rate_bp + 5000) // 10000


def cents_sql(amount):
    return cast(func.round(amount * 100), BigInteger)


def _balances_now():
    """Per loan: principal outstanding now in whole cents (0 once written off)."""
    outstanding = func.sum(Installment.principal_due - Installment.principal_paid)
    written_off = exists().where(WriteOff.loan_id == Installment.loan_id)
    return (select(Installment.loan_id,
                   case((written_off, 0), else_=cents_sql(outstanding)).label("cents"))
            .group_by(Installment.loan_id).subquery("balances"))


def totals_now(team_id=None, product=None, account_manager_id=None):
    """The open book now per category: [{"category", "count", "balance", "rate",
    "provision"}] in category order (all five, zeros included), plus a last row
    {"category": None, ...} of the whole book with "npl_balance" and "npl_ratio" (None when
    the book is empty). Filters: the account manager's team, a product, an account manager."""
    from accounts.models import User
    rules = current_rules()
    balances = _balances_now()
    category = func.coalesce(LoanCategory.category, _rule_of_loans(rules))
    balance = func.coalesce(balances.c.cents, 0)
    query = (select(category.label("category"), func.count(),
                    func.sum(balance),
                    func.sum(provision_cents_sql(balance, rate_bp_sql(rules, category))))
             .select_from(Loan).outerjoin(LoanCategory, LoanCategory.loan_id == Loan.id)
             .outerjoin(balances, balances.c.loan_id == Loan.id)
             .where(OPEN).group_by(category))
    if team_id is not None:
        query = query.join(User, User.id == Loan.account_manager_id).where(
            User.team_id == team_id)
    if product is not None:
        query = query.where(Loan.product == product)
    if account_manager_id is not None:
        query = query.where(Loan.account_manager_id == account_manager_id)
    found = {row[0]: row for row in db.session.execute(query)}
    rows = []
    for name in CATEGORIES:
        _c, count, cents, provision = found.get(name, (name, 0, 0, 0))
        rows.append({"category": name, "count": count, "rate": rules.rates[name],
                     "balance": Decimal(int(cents or 0)) / 100,
                     "provision": Decimal(int(provision or 0)) / 100})
    total_balance = sum((r["balance"] for r in rows), Decimal("0.00"))
    npl = sum((r["balance"] for r in rows if r["category"] in NON_PERFORMING), Decimal("0.00"))
    rows.append({"category": None, "count": sum(r["count"] for r in rows), "rate": None,
                 "balance": total_balance,
                 "provision": sum((r["provision"] for r in rows), Decimal("0.00")),
                 "npl_balance": npl,
                 "npl_ratio": (npl / total_balance) if total_balance else None})
    return rows


def loan_provision(loan_id, category=None):
    """(balance, rate, provision) of one loan now, as totals_now counts it."""
    rules = current_rules()
    category = category or category_of(loan_id)
    written_off = db.session.scalar(select(exists().where(WriteOff.loan_id == loan_id)))
    cents = 0 if written_off else db.session.scalar(
        select(cents_sql(func.sum(Installment.principal_due - Installment.principal_paid)))
        .where(Installment.loan_id == loan_id))
    balance = Decimal(int(cents or 0)) / 100
    rate = rules.rates.get(category, Decimal(0))
    bp = int(rate * 10000)
    provision = Decimal((int(cents or 0) * bp + 5000) // 10000) / 100
    return balance, rate, provision


def _register():
    from cases.staging import AFTER_DAILY_RUN
    if daily_hook not in AFTER_DAILY_RUN:
        AFTER_DAILY_RUN.append(daily_hook)


_register()
