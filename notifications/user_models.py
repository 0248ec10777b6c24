"""In-app notifications of users, and which kinds each user also wants through the outbox."""
from extensions import db
from workflows.clock import now

# The events a user is told about (notifications.events writes them).
KINDS = ("assigned", "returned", "approved", "rejected", "overdue", "reassigned_to_you",
         "reassigned_away")
# Outbox channels a user may choose (notifications.outbox sends them all the same way; the
# channel tells the sender, e.g. a webhook gateway, how to route the message).
CHANNELS = ("email", "sms", "webhook")


class UserNotification(db.Model):
    """One event told to one user. `context` holds keys (process key, step id, loan number,
    decision code), never prose: the text is made in the reader's language when shown."""
    __tablename__ = "user_notifications"
    # "My unread count" is a range of (user_id, read_at IS NULL); the page reads one user's
    # newest first by id.
    __table_args__ = (db.Index("ix_user_notifications_user_read", "user_id", "read_at"),
                      db.Index("ix_user_notifications_user_id", "user_id", "id"))
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False)
    kind = db.Column(db.String(20), nullable=False)
    case_id = db.Column(db.Integer, db.ForeignKey("loans.id"))
    task_id = db.Column(db.Integer, db.ForeignKey("human_tasks.id"))
    # Who caused it (the approver, the manager who reassigned), when a person did.
    actor_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    context = db.Column(db.JSON, nullable=False, default=dict)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    read_at = db.Column(db.DateTime(timezone=True))

    task = db.relationship("HumanTask")
    actor = db.relationship("User", foreign_keys=[actor_id])


class NotificationPreference(db.Model):
    """The kinds a user also receives through the outbox, on one channel and address."""
    __tablename__ = "notification_preferences"
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"), primary_key=True)
    kinds = db.Column(db.JSON, nullable=False, default=list)
    channel = db.Column(db.String(20), nullable=False, default="email")
    # An e-mail address or a phone number; empty for the webhook (the user name is sent).
    address = db.Column(db.String(120), nullable=False, default="")
    updated_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
