"""Templates, their versions and the notices sent from them."""
from extensions import db
from workflows.clock import now

CHANNELS = ("sms", "letter")


class NoticeTemplate(db.Model):
    """One outgoing text, by key (named by BPMN service tasks): its channel and stage."""
    __tablename__ = "notice_templates"
    id = db.Column(db.Integer, primary_key=True)
    key = db.Column(db.String(60), nullable=False, unique=True)
    channel = db.Column(db.String(20), nullable=False)  # CHANNELS
    stage = db.Column(db.String(30), nullable=False)  # reminder | collection | legal | …
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    versions = db.relationship("NoticeTemplateVersion", order_by="NoticeTemplateVersion.version",
                               back_populates="template")


class NoticeTemplateVersion(db.Model):
    """An immutable version; the highest is the one in use."""
    __tablename__ = "notice_template_versions"
    __table_args__ = (db.UniqueConstraint("template_id", "version"),)
    id = db.Column(db.Integer, primary_key=True)
    template_id = db.Column(db.Integer, db.ForeignKey("notice_templates.id"), nullable=False)
    version = db.Column(db.Integer, nullable=False)
    subject_zh = db.Column(db.String(200), nullable=False, default="")
    subject_en = db.Column(db.String(200), nullable=False, default="")
    body_zh = db.Column(db.Text, nullable=False)
    body_en = db.Column(db.Text, nullable=False)
    comment = db.Column(db.Text, nullable=False, default="")
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    template = db.relationship("NoticeTemplate", back_populates="versions")
    created_by = db.relationship("User")


class SentNotice(db.Model):
    """A notice as it went out: the rendered text and the template version it came from."""
    __tablename__ = "sent_notices"
    id = db.Column(db.Integer, primary_key=True)
    loan_id = db.Column(db.Integer, db.ForeignKey("loans.id"), nullable=False, index=True)
    template_version_id = db.Column(db.Integer, db.ForeignKey("notice_template_versions.id"),
                                    nullable=False, index=True)
    template_key = db.Column(db.String(60), nullable=False)
    language = db.Column(db.String(10), nullable=False)  # zh_CN | en
    channel = db.Column(db.String(20), nullable=False)
    recipient = db.Column(db.String(200), nullable=False, default="")
    subject = db.Column(db.String(200), nullable=False, default="")
    body = db.Column(db.Text, nullable=False)
    values = db.Column(db.JSON, nullable=False, default=dict)  # the placeholders' values
    notification_id = db.Column(db.Integer, db.ForeignKey("notifications.id"))
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"))
    task_id = db.Column(db.Integer, db.ForeignKey("human_tasks.id"))
    sent_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    sent_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    template_version = db.relationship("NoticeTemplateVersion")
