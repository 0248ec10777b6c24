"""inbox indexes: the available queue, the claimed ("mine") queue, four-eyes exclusions

Issue 12 item 3: the inbox reads one lane's unclaimed ready tasks (or one user's claimed
ones) in the order due_at, priority, id, a page at a time from a keyset; partial indexes in
that order make a page a short range scan on PostgreSQL and SQLite. The four-eyes anti-join
looks up one user's exclusions.

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

AVAILABLE = "state = 'ready' AND claimed_by_id IS NULL"
# Not just state = 'ready': the available queue (claimed_by_id IS NULL) also satisfies
# that, and SQLite, without statistics, would read it through this index.
MINE = "state = 'ready' AND claimed_by_id IS NOT NULL"


def upgrade():
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_human_tasks_available', ['lane', 'due_at', 'priority', 'id'],
                              unique=False, sqlite_where=sa.text(AVAILABLE),
                              postgresql_where=sa.text(AVAILABLE))
        batch_op.create_index('ix_human_tasks_mine',
                              ['claimed_by_id', 'due_at', 'priority', 'id'], unique=False,
                              sqlite_where=sa.text(MINE), postgresql_where=sa.text(MINE))
    with op.batch_alter_table('human_task_exclusions', schema=None) as batch_op:
        batch_op.create_index('ix_human_task_exclusions_user', ['user_id', 'task_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('human_task_exclusions', schema=None) as batch_op:
        batch_op.drop_index('ix_human_task_exclusions_user')
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_human_tasks_mine', sqlite_where=sa.text(MINE),
                            postgresql_where=sa.text(MINE))
        batch_op.drop_index('ix_human_tasks_available', sqlite_where=sa.text(AVAILABLE),
                            postgresql_where=sa.text(AVAILABLE))
