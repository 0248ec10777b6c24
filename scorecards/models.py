"""Tables of the daily collection report: the targets a leader sets per collector."""
from extensions import db
from workflows.clock import now


class CollectionTarget(db.Model):
    """A collector's daily targets from a date on (the latest one not after a day holds)."""
    __tablename__ = "collection_targets"
    __table_args__ = (db.UniqueConstraint("user_id", "effective_from"),)
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False, index=True)
    effective_from = db.Column(db.Date, nullable=False)
    calls = db.Column(db.Integer, nullable=False, default=0)
    contacts = db.Column(db.Integer, nullable=False, default=0)
    promises = db.Column(db.Integer, nullable=False, default=0)
    amount = db.Column(db.Numeric(18, 2), nullable=False, default=0)
    set_by_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False)
    set_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
