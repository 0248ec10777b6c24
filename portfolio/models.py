"""Tables of the portfolio: the classification rules and provision rates, each loan's
category and its history, manual overrides (four eyes), and the month-end snapshots."""
from extensions import db
from workflows.clock import now

# The five categories (五级分类), best first; `rank` orders them.
CATEGORIES = ("normal", "special_mention", "substandard", "doubtful", "loss")


class ClassificationRule(db.Model):
    """One row per category: the DPD from which a loan is at least this category (NULL for
    normal) and the provision rate held against its balance. A risk manager edits them."""
    __tablename__ = "classification_rules"
    category = db.Column(db.String(20), primary_key=True)
    rank = db.Column(db.Integer, nullable=False, unique=True)  # 0 normal .. 4 loss
    min_dpd = db.Column(db.Integer)
    provision_rate = db.Column(db.Numeric(7, 4), nullable=False, default=0)
    updated_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    updated_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))


class ClassificationPolicy(db.Model):
    """The one row of rules that are not DPD thresholds: the least category of a loan that
    was extended or restructured."""
    __tablename__ = "classification_policy"
    id = db.Column(db.Integer, primary_key=True)  # always 1
    extended_floor = db.Column(db.String(20), nullable=False, default="special_mention")
    updated_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    updated_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))


class LoanCategory(db.Model):
    """A loan's category now: what the rules give (`rule_category`) and what holds
    (`category`: the rules', or an approved override's)."""
    __tablename__ = "loan_categories"
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), primary_key=True)
    category = db.Column(db.String(20), nullable=False, index=True)
    rule_category = db.Column(db.String(20), nullable=False)
    basis = db.Column(db.String(10), nullable=False, default="rules")  # rules | override
    override_id = db.Column(db.Integer, db.ForeignKey("category_overrides.id"))
    since = db.Column(db.Date, nullable=False)
    updated_on = db.Column(db.Date, nullable=False)


class CategoryChange(db.Model):
    """Every change of a loan's category, with its date and why."""
    __tablename__ = "category_changes"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    changed_on = db.Column(db.Date, nullable=False)
    from_category = db.Column(db.String(20))  # NULL: first classification
    to_category = db.Column(db.String(20), nullable=False)
    basis = db.Column(db.String(10), nullable=False)  # rules | override
    dpd = db.Column(db.Integer, nullable=False, default=0)
    reason = db.Column(db.Text, nullable=False, default="")
    override_id = db.Column(db.Integer, db.ForeignKey("category_overrides.id"))
    actor_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    recorded_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)


class CategoryOverride(db.Model):
    """A manual up- or down-grade: asked with a reason, decided by another person."""
    __tablename__ = "category_overrides"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    from_category = db.Column(db.String(20), nullable=False)
    to_category = db.Column(db.String(20), nullable=False)
    reason = db.Column(db.Text, nullable=False)
    # pending | approved | rejected | lifted
    status = db.Column(db.String(10), nullable=False, default="pending", index=True)
    requested_by_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False)
    requested_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    decided_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    decided_at = db.Column(db.DateTime(timezone=True))
    decision_note = db.Column(db.Text)
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"))


class LoanMonthSnapshot(db.Model):
    """A loan as it stood at the end of a month, kept as a fact: reports of a past month read
    these rows and never recompute history. `month` is the first day of the month."""
    __tablename__ = "loan_month_snapshots"
    __table_args__ = (db.Index("ix_loan_month_snapshots_month_bucket", "month", "bucket"),
                      db.Index("ix_loan_month_snapshots_month_team", "month", "team_id"))
    month = db.Column(db.Date, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), primary_key=True)
    taken_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    as_of = db.Column(db.Date, nullable=False)  # the month's last day
    status = db.Column(db.String(20), nullable=False)
    product = db.Column(db.String(20), nullable=False)
    account_manager_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    team_id = db.Column(db.Integer, db.ForeignKey("teams.id"))
    collector_id = db.Column(db.Integer, db.ForeignKey("users.id"))  # who worked its collection
    disbursed_on = db.Column(db.Date, nullable=False)
    principal = db.Column(db.Numeric(18, 2), nullable=False)  # as disbursed
    balance = db.Column(db.Numeric(18, 2), nullable=False)  # principal outstanding
    overdue_amount = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    due_in_month = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    collected_in_month = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    dpd = db.Column(db.Integer, nullable=False, default=0)
    bucket = db.Column(db.String(10), nullable=False)  # current | M1 | M2 | M3 | M3+ | closed
    stage = db.Column(db.String(10), nullable=False)
    category = db.Column(db.String(20), nullable=False)
    provision_rate = db.Column(db.Numeric(7, 4), nullable=False, default=0)
    provision = db.Column(db.Numeric(18, 2), nullable=False, default=0)
