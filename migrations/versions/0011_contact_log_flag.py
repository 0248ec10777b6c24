"""contact log: calls flagged for the leader

Issue 11 rule 7: a call logged outside the call windows, or beyond its window's maximum
number of calls to the borrower, is kept and flagged (outside_call_window,
over_window_limit).

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contact_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flag', sa.String(length=30), server_default='',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('contact_log', schema=None) as batch_op:
        batch_op.drop_column('flag')
