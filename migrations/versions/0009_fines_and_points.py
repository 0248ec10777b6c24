"""late follow-ups fined by the leader, performance points

A late follow-up is no longer fined automatically: the leader imposes the fine. Rows already
carrying a fine keep it and count as imposed when they were recorded.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('late_followups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fined_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('fined_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('fine_reason', sa.Text(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_late_followups_fined_by_id_users'), 'users',
                                    ['fined_by_id'], ['id'])
    op.execute("UPDATE late_followups SET fined_at = recorded_at, "
               "fine_reason = 'fined automatically before 0009' WHERE fine > 0")
    op.create_table('performance_points',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=30), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=True),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('awarded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_performance_points_loan_id_loans')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_performance_points_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_performance_points')),
    sa.UniqueConstraint('user_id', 'reason', 'period', 'loan_id', name=op.f('uq_performance_points_user_id_reason_period_loan_id'))
    )
    with op.batch_alter_table('performance_points', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_performance_points_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('performance_points', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_performance_points_user_id'))
    op.drop_table('performance_points')
    with op.batch_alter_table('late_followups', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_late_followups_fined_by_id_users'),
                                 type_='foreignkey')
        batch_op.drop_column('fine_reason')
        batch_op.drop_column('fined_by_id')
        batch_op.drop_column('fined_at')
