"""Holidays and make-up working days entered by administrators; they override the package."""
from extensions import db
from workflows.clock import now


class CalendarDay(db.Model):
    __tablename__ = "calendar_days"
    day = db.Column(db.Date, primary_key=True)
    is_working = db.Column(db.Boolean, nullable=False)  # False: holiday; True: make-up day
    note = db.Column(db.String(120), nullable=False, default="")
    entered_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    entered_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)


class CalendarYear(db.Model):
    """A year the package does not know, declared complete by an administrator once its
    holidays and make-up days are all entered; only then are its working days counted."""
    __tablename__ = "calendar_years"
    year = db.Column(db.Integer, primary_key=True, autoincrement=False)
    completed_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    completed_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    note = db.Column(db.String(120), nullable=False, default="")
