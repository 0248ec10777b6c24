"""a case's and an instance's open tasks by one index

Issue 12. Found measuring intake on a young PostgreSQL database grown by bulk imports: with
statistics taken while the table was small, the planner answered "the case's open tasks"
by ANDing the case index with the index of every open task, a scan that grew with the
table. human_tasks gets (case_id, state) and (instance_id, state) in place of the
single-column indexes: one index range whatever the statistics say. (Fresh statistics
after a bulk write: bulk.refresh_statistics.)

Revision ID: 0021
Revises: 0020
"""
from alembic import op


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        for column in ("case_id", "instance_id"):
            batch_op.drop_index(f'ix_human_tasks_{column}')
            batch_op.create_index(f'ix_human_tasks_{column}_state', [column, 'state'])


def downgrade():
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        for column in ("case_id", "instance_id"):
            batch_op.drop_index(f'ix_human_tasks_{column}_state')
            batch_op.create_index(f'ix_human_tasks_{column}', [column])
