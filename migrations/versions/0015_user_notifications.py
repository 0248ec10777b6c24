"""user notifications: in-app notifications per user, their outbox preferences; loans by stage

Issue 13 item 3: users are told in the app when a task is given or sent back to them, a
decision they asked for is made, their task is overdue or reassigned. The unread count of
the header badge is a range of (user_id, read_at); the page reads one user's newest first by
(user_id, id). The preferences say which kinds also go out through the outbox. Item 2: the
home page counts the open loans by stage (of one account manager) as bounded ranges of two
new loans indexes, (stage, status) and (account_manager_id, stage, status).

Revision ID: 0015
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('user_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_user_notifications_actor_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['loans.id'], name=op.f('fk_user_notifications_case_id_loans')),
    sa.ForeignKeyConstraint(['task_id'], ['human_tasks.id'], name=op.f('fk_user_notifications_task_id_human_tasks')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_notifications_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_notifications'))
    )
    with op.batch_alter_table('user_notifications', schema=None) as batch_op:
        batch_op.create_index('ix_user_notifications_user_read', ['user_id', 'read_at'], unique=False)
        batch_op.create_index('ix_user_notifications_user_id', ['user_id', 'id'], unique=False)

    # The home page counts the open loans of each stage (of one account manager) from these.
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index('ix_loans_stage_status', ['stage', 'status'], unique=False)
        batch_op.create_index('ix_loans_manager_stage_status',
                              ['account_manager_id', 'stage', 'status'], unique=False)

    op.create_table('notification_preferences',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kinds', sa.JSON(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('address', sa.String(length=120), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notification_preferences_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_preferences'))
    )


def downgrade():
    op.drop_table('notification_preferences')
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('ix_loans_manager_stage_status')
        batch_op.drop_index('ix_loans_stage_status')
    with op.batch_alter_table('user_notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_user_notifications_user_id')
        batch_op.drop_index('ix_user_notifications_user_read')
    op.drop_table('user_notifications')
