"""guarantor demands and repayment plans

Issue 11 rule 12: the written demand to a guarantor of a lost-contact borrower (notice,
response, payment) and the repayment plan of a willing but unable one (approved plan, its
instalments, tracking).

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('guarantor_demands',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('guarantor_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('demanded_amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('sent_on', sa.Date(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('receipt', sa.String(length=20), nullable=False),
    sa.Column('receipt_note', sa.String(length=200), nullable=False),
    sa.Column('deadline_on', sa.Date(), nullable=False),
    sa.Column('sent_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('response', sa.String(length=20), nullable=True),
    sa.Column('promised_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('promised_on', sa.Date(), nullable=True),
    sa.Column('responded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('repayment_id', sa.Integer(), nullable=True),
    sa.Column('result', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantors.id'], name=op.f('fk_guarantor_demands_guarantor_id_guarantors')),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instances.id'], name=op.f('fk_guarantor_demands_instance_id_process_instances')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_guarantor_demands_loan_id_loans')),
    sa.ForeignKeyConstraint(['repayment_id'], ['repayments.id'], name=op.f('fk_guarantor_demands_repayment_id_repayments')),
    sa.ForeignKeyConstraint(['sent_by_id'], ['users.id'], name=op.f('fk_guarantor_demands_sent_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guarantor_demands'))
    )
    with op.batch_alter_table('guarantor_demands', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guarantor_demands_loan_id'), ['loan_id'], unique=False)

    op.create_table('repayment_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('proposed_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('paid_since_approval', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['approved_by_id'], ['users.id'], name=op.f('fk_repayment_plans_approved_by_id_users')),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instances.id'], name=op.f('fk_repayment_plans_instance_id_process_instances')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_repayment_plans_loan_id_loans')),
    sa.ForeignKeyConstraint(['proposed_by_id'], ['users.id'], name=op.f('fk_repayment_plans_proposed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repayment_plans'))
    )
    with op.batch_alter_table('repayment_plans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repayment_plans_loan_id'), ['loan_id'], unique=False)

    op.create_table('repayment_plan_instalments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['plan_id'], ['repayment_plans.id'], name=op.f('fk_repayment_plan_instalments_plan_id_repayment_plans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repayment_plan_instalments')),
    sa.UniqueConstraint('plan_id', 'seq', name=op.f('uq_repayment_plan_instalments_plan_id_seq'))
    )
    with op.batch_alter_table('repayment_plan_instalments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repayment_plan_instalments_plan_id'), ['plan_id'], unique=False)



def downgrade():
    with op.batch_alter_table('repayment_plan_instalments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repayment_plan_instalments_plan_id'))

    op.drop_table('repayment_plan_instalments')
    with op.batch_alter_table('repayment_plans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repayment_plans_loan_id'))

    op.drop_table('repayment_plans')
    with op.batch_alter_table('guarantor_demands', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guarantor_demands_loan_id'))

    op.drop_table('guarantor_demands')
