"""daily run indexes: unpaid installments by due date, loans off current, loans by status

Issue 12 item 4: the daily run reads the overdue part of the book, not all of it. The unpaid
installments that fell due before a day (penalty accrual, DPD) are a range of a partial index
by due date; the loans whose stored DPD or stage is not "current" (those that may go back to
current) are a partial index of their own; the open loans are counted, and the loans in
closure found, through an index on the status instead of the whole loans table.

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

UNPAID = "paid_off_on IS NULL"
OFF_CURRENT = "dpd <> 0 OR stage <> 'current'"


def upgrade():
    with op.batch_alter_table('installments', schema=None) as batch_op:
        batch_op.create_index('ix_installments_unpaid_by_due', ['due_on', 'loan_id'],
                              unique=False, sqlite_where=sa.text(UNPAID),
                              postgresql_where=sa.text(UNPAID))
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index('ix_loans_off_current', ['id'], unique=False,
                              sqlite_where=sa.text(OFF_CURRENT),
                              postgresql_where=sa.text(OFF_CURRENT))
        batch_op.create_index('ix_loans_status', ['status'], unique=False)


def downgrade():
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('ix_loans_status')
        batch_op.drop_index('ix_loans_off_current', sqlite_where=sa.text(OFF_CURRENT),
                            postgresql_where=sa.text(OFF_CURRENT))
    with op.batch_alter_table('installments', schema=None) as batch_op:
        batch_op.drop_index('ix_installments_unpaid_by_due', sqlite_where=sa.text(UNPAID),
                            postgresql_where=sa.text(UNPAID))
