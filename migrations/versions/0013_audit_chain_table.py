"""audit chain table: events sealed on their own, linked in the background

Issue 12 item 2: the audit chain is no longer a global lock taken by every commit. From this
revision an event carries its own MAC (over a random nonce, new column `nonce`, and its
fields) and no prev_hash; a trigger queues it in `audit_chain_queue`, and the chainer
(audit/chaining.py) links it in `audit_chain` (position, event_id, prev_hash, hash) in commit
order. Events already here keep their prev_hash and hash and are verified as before (chained
in the row, in id order); the first link continues from the last of them, so the history
stays one verifiable sequence. `audit_chain` is append-only on PostgreSQL, like audit_events.

Downgrade: events written since are chained in the row again the pre-0013 way (in id order,
with the audit key), then the new tables and the nonce go.

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

SQLITE_QUEUE = """
    CREATE TRIGGER audit_events_queue AFTER INSERT ON audit_events
    WHEN NEW.nonce IS NOT NULL
    BEGIN
        INSERT INTO audit_chain_queue (event_id) VALUES (NEW.id);
    END"""

POSTGRES_QUEUE = ("""
    CREATE FUNCTION audit_events_queue() RETURNS trigger AS $$
    BEGIN
        INSERT INTO audit_chain_queue (event_id)
        SELECT id FROM new_events WHERE nonce IS NOT NULL;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql""", """
    CREATE TRIGGER audit_events_queue AFTER INSERT ON audit_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_queue()""", """
    CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_tables_refuse_change()""")


def upgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('nonce', sa.String(length=32), nullable=True))
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=True)
    op.create_table('audit_chain',
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['audit_events.id'],
                            name=op.f('fk_audit_chain_event_id_audit_events')),
    sa.PrimaryKeyConstraint('position', name=op.f('pk_audit_chain')),
    sa.UniqueConstraint('event_id', name=op.f('uq_audit_chain_event_id'))
    )
    op.create_table('audit_chain_queue',
    sa.Column('event_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False,
              server_default=sa.text('CURRENT_TIMESTAMP')),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_audit_chain_queue'))
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_QUEUE:
            op.execute(statement)
    else:
        op.execute(SQLITE_QUEUE)


def _chain_in_rows():
    """Give the events written since 0013 a prev_hash and an in-row hash, in id order."""
    from flask import current_app

    from audit.keys import derive, load_key
    from audit.operations import GENESIS, event_hash

    bind = op.get_bind()
    events = sa.table('audit_events', sa.column('id', sa.Integer), sa.column('at', sa.DateTime),
                      sa.column('actor_id', sa.Integer), sa.column('action', sa.String),
                      sa.column('case_id', sa.Integer), sa.column('instance_id', sa.Integer),
                      sa.column('task_id', sa.Integer), sa.column('data', sa.JSON),
                      sa.column('prev_hash', sa.String), sa.column('hash', sa.String),
                      sa.column('nonce', sa.String))
    if not bind.execute(sa.select(events.c.id).where(events.c.nonce.isnot(None)).limit(1)) \
            .first():
        return
    key = derive(load_key(current_app))["event"]
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
    prev, updates = GENESIS, []
    for row in bind.execute(sa.select(events).order_by(events.c.id)).all():
        if row.nonce is None:
            prev = row.hash
            continue
        digest = event_hash(prev, row.at, row.actor_id, row.action, row.case_id,
                            row.instance_id, row.task_id, row.data, key=key)
        updates.append({"i": row.id, "p": prev, "h": digest})
        prev = digest
    bind.execute(sa.text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :i"),
                 updates)
    if postgres:
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_chain_append_only ON audit_chain")
        op.execute("DROP TRIGGER IF EXISTS audit_events_queue ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_queue()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_queue")
    _chain_in_rows()
    op.drop_table('audit_chain_queue')
    op.drop_table('audit_chain')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column('nonce')
