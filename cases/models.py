"""The case: one loan and what the post-loan work records about it."""
from flask_babel import lazy_gettext as _l

from extensions import db
from workflows.clock import now

STATUS_LABELS = {"handover": _l("Handover"), "servicing": _l("Servicing"),
                 "closing": _l("Closing"), "closed": _l("Closed")}
PRODUCT_LABELS = {"term": _l("Term loan"), "installment": _l("Installment loan"),
                  "bridge": _l("Short bridge loan")}
# DOMAIN.md §7: stage by days past due; the upper bounds are a setting (DPD_STAGES).
STAGES = ("current", "dpd_1_3", "dpd_4_7", "dpd_8_30", "M2", "M3", "M3+")
STAGE_LABELS = {"current": _l("Current"), "dpd_1_3": _l("DPD 1–3"), "dpd_4_7": _l("DPD 4–7"),
                "dpd_8_30": _l("DPD 8–30"), "M2": _l("M2 (31–60)"), "M3": _l("M3 (61–90)"),
                "M3+": _l("M3+ (over 90)")}
RISK_GROUP_LABELS = {"high": _l("High"), "normal": _l("Normal"), "low": _l("Low")}
FREQUENCY_LABELS = {"monthly": _l("Monthly"), "bimonthly": _l("Every two months"),
                    "quarterly": _l("Quarterly")}


# The loans whose stored DPD or stage is not "current" (migration 0014): the daily run reads
# them, with those overdue now, instead of the whole book.
OFF_CURRENT = "dpd <> 0 OR stage <> 'current'"


class Loan(db.Model):
    __tablename__ = "loans"
    __table_args__ = (db.Index("ix_loans_off_current", "id",
                               postgresql_where=db.text(OFF_CURRENT),
                               sqlite_where=db.text(OFF_CURRENT)),)
    id = db.Column(db.Integer, primary_key=True)
    loan_no = db.Column(db.String(40), unique=True, nullable=False)
    borrower_name = db.Column(db.String(200), nullable=False)
    principal = db.Column(db.Numeric(18, 2), nullable=False)
    interest_rate = db.Column(db.Numeric(9, 6), nullable=False)
    disbursed_on = db.Column(db.Date, nullable=False)
    maturity_on = db.Column(db.Date, nullable=False)
    account_manager_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False,
                                   index=True)
    status = db.Column(db.String(20), nullable=False, default="handover", index=True)
    # Set by the handover's registration step (DOMAIN.md §5.1 step 3).
    risk_group = db.Column(db.String(10))
    inspection_frequency = db.Column(db.String(20))
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    product = db.Column(db.String(20), nullable=False, default="term")
    purpose = db.Column(db.Text, nullable=False, default="")
    repayment_account = db.Column(db.String(40), nullable=False, default="")
    borrower_id = db.Column(db.Integer, db.ForeignKey("borrowers.id"), index=True)
    # The canonical intake payload, to answer a repeated POST idempotently.
    intake = db.Column(db.JSON)
    # Written by the daily staging run (cases/staging.py), never by hand.
    dpd = db.Column(db.Integer, nullable=False, default=0)
    stage = db.Column(db.String(10), nullable=False, default="current", index=True)
    stage_since = db.Column(db.Date)
    closed_at = db.Column(db.DateTime(timezone=True))
    account_manager = db.relationship("User")
    borrower = db.relationship("Borrower")
    installments = db.relationship("Installment", order_by="Installment.seq",
                                   back_populates="loan", cascade="all, delete-orphan")
    contacts = db.relationship("Contact", order_by="Contact.id", cascade="all, delete-orphan")
    guarantors = db.relationship("Guarantor", order_by="Guarantor.id",
                                 cascade="all, delete-orphan")
    collateral = db.relationship("Collateral", order_by="Collateral.id",
                                 cascade="all, delete-orphan")

    @property
    def is_closed(self):
        return self.status == "closed"

    @property
    def outstanding(self):
        return sum((i.outstanding for i in self.installments), start=0)


class Product(db.Model):
    """Per-product settings: how many working days ahead reminders go out, penalty interest."""
    __tablename__ = "products"
    code = db.Column(db.String(20), primary_key=True)
    maturity_lead_days = db.Column(db.Integer, nullable=False, default=5)
    installment_lead_days = db.Column(db.Integer, nullable=False, default=1)
    # Penalty interest (罚息): the contract rate raised by this fraction (0.5 = +50%), on
    # overdue principal and, when compound_interest is set, on overdue interest too.
    penalty_markup = db.Column(db.Numeric(6, 4), nullable=False, default=0.5,
                               server_default="0.5")
    compound_interest = db.Column(db.Boolean, nullable=False, default=False,
                                  server_default=db.false())


class Borrower(db.Model):
    __tablename__ = "borrowers"
    id = db.Column(db.Integer, primary_key=True)
    kind = db.Column(db.String(10), nullable=False)  # person | company
    name = db.Column(db.String(200), nullable=False)
    # Resident ID number for a person, unified social credit code for a company.
    id_number = db.Column(db.String(40), nullable=False, default="")
    phones = db.Column(db.JSON, nullable=False, default=list)
    addresses = db.Column(db.JSON, nullable=False, default=list)


class Contact(db.Model):
    __tablename__ = "contacts"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    name = db.Column(db.String(120), nullable=False)
    relationship = db.Column(db.String(40), nullable=False, default="")
    phone = db.Column(db.String(40), nullable=False, default="")
    address = db.Column(db.String(300), nullable=False, default="")
    # DOMAIN.md §5.3: never reveal the loan to a contact who does not know of it.
    knows_about_loan = db.Column(db.Boolean, nullable=False, default=False)


class Guarantor(db.Model):
    __tablename__ = "guarantors"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    kind = db.Column(db.String(10), nullable=False, default="person")
    name = db.Column(db.String(200), nullable=False)
    id_number = db.Column(db.String(40), nullable=False, default="")
    phone = db.Column(db.String(40), nullable=False, default="")
    address = db.Column(db.String(300), nullable=False, default="")
    # The guarantor's status now, as the last check found it (guarantees.models.GuarantorCheck
    # keeps every check); None until a first check.
    reachable = db.Column(db.Boolean)
    capacity = db.Column(db.String(20))  # adequate | weakened | insufficient
    capacity_note = db.Column(db.Text, nullable=False, default="", server_default="")
    court_enforcement = db.Column(db.Boolean)  # listed as a person subject to enforcement
    licence_status = db.Column(db.String(20))  # a company's: normal | abnormal | revoked | cancelled
    checked_at = db.Column(db.DateTime(timezone=True))


class Collateral(db.Model):
    __tablename__ = "collateral"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    kind = db.Column(db.String(10), nullable=False)  # mortgage | pledge
    description = db.Column(db.String(300), nullable=False)
    location = db.Column(db.String(300), nullable=False, default="")
    area = db.Column(db.Numeric(12, 2))
    valuation = db.Column(db.Numeric(18, 2))
    registration_no = db.Column(db.String(80), nullable=False, default="")
    released_at = db.Column(db.DateTime(timezone=True))
    # What the watch needs (issue 16): the asset's type sets its revaluation interval.
    asset_type = db.Column(db.String(20), nullable=False, default="other",
                           server_default="other")  # guarantees.models.ASSET_TYPES
    registration_office = db.Column(db.String(120), nullable=False, default="",
                                    server_default="")
    registered_on = db.Column(db.Date)
    registration_expires_on = db.Column(db.Date)
    insurance_policy = db.Column(db.String(80), nullable=False, default="", server_default="")
    insurer = db.Column(db.String(120), nullable=False, default="", server_default="")
    insurance_expires_on = db.Column(db.Date)
    # Written by the closure's release step, from the deregistration record.
    deregistration_no = db.Column(db.String(80), nullable=False, default="", server_default="")
    deregistered_on = db.Column(db.Date)


class ContactLogEntry(db.Model):
    """The trace of every contact with the client (DOMAIN.md §3, 客户痕迹化管理)."""
    __tablename__ = "contact_log"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    kind = db.Column(db.String(20), nullable=False)  # call | visit | sms | reminder | note
    number = db.Column(db.String(40), nullable=False, default="")
    address = db.Column(db.String(300), nullable=False, default="")  # of a visit
    answered_by = db.Column(db.String(120), nullable=False, default="")
    outcome = db.Column(db.String(40), nullable=False, default="")
    note = db.Column(db.Text, nullable=False, default="")
    promised_on = db.Column(db.Date)
    promised_amount = db.Column(db.Numeric(18, 2))
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    task_id = db.Column(db.Integer, db.ForeignKey("human_tasks.id"))
    # A call flagged for the leader (collection.contact_rules): outside_call_window or
    # over_window_limit; "" when none.
    flag = db.Column(db.String(30), nullable=False, default="", server_default="")
    user = db.relationship("User")


class Document(db.Model):
    __tablename__ = "documents"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    kind = db.Column(db.String(30), nullable=False, default="other")
    filename = db.Column(db.String(200), nullable=False)
    stored_name = db.Column(db.String(80), nullable=False, unique=True)
    content_type = db.Column(db.String(100), nullable=False)
    size = db.Column(db.Integer, nullable=False)
    sha256 = db.Column(db.String(64), nullable=False)
    uploaded_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    uploaded_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    uploaded_by = db.relationship("User")


class StageChange(db.Model):
    __tablename__ = "stage_changes"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    changed_on = db.Column(db.Date, nullable=False)
    from_stage = db.Column(db.String(10), nullable=False)
    to_stage = db.Column(db.String(10), nullable=False)
    dpd = db.Column(db.Integer, nullable=False)


class CaseProblem(db.Model):
    """Something that blocks the system from doing its job on a case, for administrators."""
    __tablename__ = "case_problems"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    kind = db.Column(db.String(40), nullable=False)  # calendar_year_missing
    year = db.Column(db.Integer)
    detail = db.Column(db.JSON, nullable=False, default=dict)
    opened_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    resolved_at = db.Column(db.DateTime(timezone=True))
    loan = db.relationship("Loan")


class DailyRun(db.Model):
    """One row per day the daily staging ran, so the worker runs it once a day."""
    __tablename__ = "daily_runs"
    run_on = db.Column(db.Date, primary_key=True)
    started_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    loans = db.Column(db.Integer, nullable=False, default=0)
    stage_changes = db.Column(db.Integer, nullable=False, default=0)


class PromiseToPay(db.Model):
    """A promise made during collection; checked on its date, kept or broken (DOMAIN.md §5.3)."""
    __tablename__ = "promises_to_pay"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    promised_on = db.Column(db.Date, nullable=False)
    amount = db.Column(db.Numeric(18, 2), nullable=False)
    made_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    task_id = db.Column(db.Integer, db.ForeignKey("human_tasks.id"))
    status = db.Column(db.String(10), nullable=False, default="open")  # open | kept | broken
    checked_at = db.Column(db.DateTime(timezone=True))


class LoanExtension(db.Model):
    """An approved extension (DOMAIN.md §5.4): as a rule a loan is extended at most once."""
    __tablename__ = "loan_extensions"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    old_maturity_on = db.Column(db.Date, nullable=False)
    new_maturity_on = db.Column(db.Date, nullable=False)
    old_interest_rate = db.Column(db.Numeric(9, 6), nullable=False)
    new_interest_rate = db.Column(db.Numeric(9, 6), nullable=False)
    reason = db.Column(db.Text, nullable=False, default="")
    requested_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    reviewed_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    approved_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    override_justification = db.Column(db.Text)  # a second extension, overridden by the GM
    approved_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"))


class RiskSignal(db.Model):
    """A warning signal in one of the ten categories of DOMAIN.md §5.7, and its decision."""
    __tablename__ = "risk_signals"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    category = db.Column(db.Integer, nullable=False)  # 1..10
    description = db.Column(db.Text, nullable=False)
    source = db.Column(db.String(20), nullable=False, default="staff")  # staff | inspection
    raised_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    raised_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"))
    decision = db.Column(db.String(30))  # closer_monitoring | early_recall | preservation | collection
    decision_note = db.Column(db.Text)
    decided_at = db.Column(db.DateTime(timezone=True))
    raised_by = db.relationship("User")


class LateFollowUp(db.Model):
    """A task finished after its due date, recorded against who completed it. It is fined
    (DOMAIN.md §6: 100 yuan) only when the leader finds it was that person's own fault after
    the leader's instruction; the leader may instead waive it. Never the leader's own."""
    __tablename__ = "late_followups"
    __table_args__ = (db.UniqueConstraint("task_id"),)
    id = db.Column(db.Integer, primary_key=True)
    task_id = db.Column(db.Integer, db.ForeignKey("human_tasks.id"), nullable=False)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"), index=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), index=True)
    due_at = db.Column(db.DateTime(timezone=True), nullable=False)
    recorded_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    fine = db.Column(db.Numeric(10, 2), nullable=False, default=0)
    waived_at = db.Column(db.DateTime(timezone=True))
    waived_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    waive_reason = db.Column(db.Text)
    fined_at = db.Column(db.DateTime(timezone=True))
    fined_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    fine_reason = db.Column(db.Text)


class PerformancePoint(db.Model):
    """Performance points (DOMAIN.md §6, [000 §七]): +3 for a month of duties without error,
    +3 for an overdue loan collected on time after the leader's instruction."""
    __tablename__ = "performance_points"
    __table_args__ = (db.UniqueConstraint("user_id", "reason", "period", "loan_id"),)
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False, index=True)
    reason = db.Column(db.String(30), nullable=False)  # error_free_month | recovered_on_time
    period = db.Column(db.String(7), nullable=False)  # YYYY-MM the points count for
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"))
    points = db.Column(db.Integer, nullable=False, default=3)
    awarded_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
