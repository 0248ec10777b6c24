"""Tables of the workflow engine: definitions, forms, instances and the human-task projection."""
from sqlalchemy.orm import deferred, query_expression

from extensions import db
from workflows.clock import now


class ProcessDefinition(db.Model):
    """One deployed version of one BPMN process; immutable once written."""
    __tablename__ = "process_definitions"
    __table_args__ = (db.UniqueConstraint("process_key", "version"),
                      db.UniqueConstraint("process_key", "sha256"))
    id = db.Column(db.Integer, primary_key=True)
    process_key = db.Column(db.String(80), nullable=False, index=True)
    version = db.Column(db.Integer, nullable=False)
    name = db.Column(db.String(200), nullable=False, default="")
    filename = db.Column(db.String(200), nullable=False, default="")
    sha256 = db.Column(db.String(64), nullable=False)
    # Large and read rarely (the engine caches the spec): loaded when first used.
    bpmn_xml = deferred(db.Column(db.Text, nullable=False))
    spec_json = deferred(db.Column(db.Text, nullable=False))
    # form key -> form_definitions.id, the form versions deployed with this process version
    forms = db.Column(db.JSON, nullable=False, default=dict)
    # Names in both languages from the BPMN (workflows/labels.py): {"process": {"en", "zh_CN"},
    # "steps": {bpmn id: {"en", "zh_CN"}}}; NULL for a version no migration could read.
    labels = db.Column(db.JSON)
    deployed_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    deployed_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    comment = db.Column(db.Text, nullable=False, default="")


class FormDefinition(db.Model):
    __tablename__ = "form_definitions"
    __table_args__ = (db.UniqueConstraint("form_key", "version"),
                      db.UniqueConstraint("form_key", "sha256"))
    id = db.Column(db.Integer, primary_key=True)
    form_key = db.Column(db.String(80), nullable=False, index=True)
    version = db.Column(db.Integer, nullable=False)
    sha256 = db.Column(db.String(64), nullable=False)
    spec = db.Column(db.JSON, nullable=False)
    deployed_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)


class ProcessInstance(db.Model):
    __tablename__ = "process_instances"
    # The timer sweep: WHERE status = 'running' AND next_timer_at <= now ORDER BY next_timer_at
    __table_args__ = (db.Index("ix_process_instances_timer_due", "status", "next_timer_at"),
                      db.Index("ix_process_instances_case_key", "case_id", "business_key"),
                      # One running instance per case and business key (one extension being
                      # decided, one reminder per installment): enforced by the database, so
                      # two simultaneous requests cannot both start one.
                      db.Index("uq_process_instances_running_key", "case_id", "business_key",
                               unique=True,
                               sqlite_where=db.text("status = 'running' AND business_key IS NOT NULL"),
                               postgresql_where=db.text(
                                   "status = 'running' AND business_key IS NOT NULL")))
    id = db.Column(db.Integer, primary_key=True)
    definition_id = db.Column(db.Integer, db.ForeignKey("process_definitions.id"), nullable=False,
                              index=True)
    case_id = db.Column(db.Integer, db.ForeignKey("loans.id"), index=True)
    # What the instance is about within its case, e.g. "installment:3" for a reminder.
    business_key = db.Column(db.String(80))
    status = db.Column(db.String(20), nullable=False, default="running")
    state_json = db.Column(db.Text, nullable=False)
    serializer_version = db.Column(db.String(10), nullable=False)
    lock_version = db.Column(db.Integer, nullable=False)
    next_timer_at = db.Column(db.DateTime(timezone=True))
    error = db.Column(db.Text)
    started_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    started_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    updated_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    completed_at = db.Column(db.DateTime(timezone=True))
    definition = db.relationship("ProcessDefinition", lazy="joined")

    # Optimistic locking: a save whose lock_version is stale raises StaleDataError.
    __mapper_args__ = {"version_id_col": lock_version}


class HumanTask(db.Model):
    """A READY user task, projected from the instance state after each save."""
    __tablename__ = "human_tasks"
    __table_args__ = (db.Index("ix_human_tasks_state_lane_due", "state", "lane", "due_at"),
                      db.Index("ix_human_tasks_claimed_state", "claimed_by_id", "state"),
                      # A case's or an instance's open tasks: one index range, however
                      # stale the planner's statistics (migration 0021).
                      db.Index("ix_human_tasks_case_id_state", "case_id", "state"),
                      db.Index("ix_human_tasks_instance_id_state", "instance_id", "state"),
                      # The inbox (workflows.inbox): one lane's unclaimed queue, and one
                      # user's claimed tasks, each read in the page order (due_at, priority,
                      # id) so a keyset page is a short index range scan.
                      db.Index("ix_human_tasks_available", "lane", "due_at", "priority", "id",
                               sqlite_where=db.text("state = 'ready' AND claimed_by_id IS NULL"),
                               postgresql_where=db.text(
                                   "state = 'ready' AND claimed_by_id IS NULL")),
                      db.Index("ix_human_tasks_mine", "claimed_by_id", "due_at", "priority", "id",
                               sqlite_where=db.text(
                                   "state = 'ready' AND claimed_by_id IS NOT NULL"),
                               postgresql_where=db.text(
                                   "state = 'ready' AND claimed_by_id IS NOT NULL")))
    id = db.Column(db.Integer, primary_key=True)
    instance_id = db.Column(db.Integer, db.ForeignKey("process_instances.id"), nullable=False)
    case_id = db.Column(db.Integer, db.ForeignKey("loans.id"))
    task_guid = db.Column(db.String(36), nullable=False, unique=True)
    process_key = db.Column(db.String(80), nullable=False, index=True)
    bpmn_id = db.Column(db.String(80), nullable=False)
    name = db.Column(db.String(200), nullable=False)
    lane = db.Column(db.String(40))
    candidate_user_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    claimed_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    claimed_at = db.Column(db.DateTime(timezone=True))
    due_at = db.Column(db.DateTime(timezone=True))
    priority = db.Column(db.Integer, nullable=False, default=2)
    form_key = db.Column(db.String(80))
    form_definition_id = db.Column(db.Integer, db.ForeignKey("form_definitions.id"))
    state = db.Column(db.String(20), nullable=False, default="ready")
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    completed_at = db.Column(db.DateTime(timezone=True))
    completed_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    data = db.Column(db.JSON)
    # Process data the form asks to show (its spec's show_data), copied when the task is made.
    context = db.Column(db.JSON)
    # When the holder and the leader were told the task is past its due date.
    overdue_notified_at = db.Column(db.DateTime(timezone=True))
    # Four eyes: the steps (bpmn ids, comma-separated) whose completers may not take this
    # task. A trigger writes their human_task_exclusions rows when the row is inserted
    # (migration 0020), so the application makes no second round trip for them.
    not_same_user_as = db.Column(db.Text)

    # The case's loan number, when the query asked for it (workflows.tasks._LOAN_NO).
    loan_no = query_expression()

    instance = db.relationship("ProcessInstance")
    claimed_by = db.relationship("User", foreign_keys=[claimed_by_id])
    completed_by = db.relationship("User", foreign_keys=[completed_by_id])
    candidate_user = db.relationship("User", foreign_keys=[candidate_user_id])
    form_definition = db.relationship("FormDefinition")


class HumanTaskExclusion(db.Model):
    """Users who may not take a task (four eyes), written with the task."""
    __tablename__ = "human_task_exclusions"
    # The four-eyes anti-join of the inbox looks up one user's exclusions.
    __table_args__ = (db.Index("ix_human_task_exclusions_user", "user_id", "task_id"),)
    task_id = db.Column(db.Integer, db.ForeignKey("human_tasks.id"), primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"), primary_key=True)
    reason_task = db.Column(db.String(80), nullable=False, default="")


class ProcessDraft(db.Model):
    """A process owner's unsaved-to-production work: a diagram and the form specs it uses."""
    __tablename__ = "process_drafts"
    id = db.Column(db.Integer, primary_key=True)
    process_key = db.Column(db.String(80), nullable=False, index=True)
    bpmn_xml = db.Column(db.Text, nullable=False)
    forms = db.Column(db.JSON, nullable=False, default=dict)  # form key -> spec
    based_on_id = db.Column(db.Integer, db.ForeignKey("process_definitions.id"))
    updated_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    updated_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    updated_by = db.relationship("User")
