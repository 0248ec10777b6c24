"""four eyes written by the database with the task

Issue 12 (round trips per completion). A new task names the earlier steps whose completers
may not take it (notSameUserAs) in a new column, `not_same_user_as` (bpmn ids joined by
commas); a trigger on INSERT writes those completers' `human_task_exclusions` rows in the
same statement, so creating a four-eyes task no longer costs a second INSERT … SELECT from
the application. Rows already here keep the exclusions they have.

Revision ID: 0020
Revises: 0019
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

# Whoever completed a step of the same instance that the new task names. The list is
# matched as ",a,b," against ",bpmn_id," (a BPMN id is an XML name: it never holds a comma).
SQLITE_FOUR_EYES = """
    CREATE TRIGGER human_tasks_four_eyes AFTER INSERT ON human_tasks
    WHEN NEW.not_same_user_as IS NOT NULL
    BEGIN
        INSERT INTO human_task_exclusions (task_id, user_id, reason_task)
        SELECT DISTINCT NEW.id, done.completed_by_id, substr(NEW.not_same_user_as, 1, 80)
        FROM human_tasks AS done
        WHERE done.instance_id = NEW.instance_id AND done.state = 'completed'
          AND done.completed_by_id IS NOT NULL
          AND instr(',' || NEW.not_same_user_as || ',', ',' || done.bpmn_id || ',') > 0;
    END"""

POSTGRES_FOUR_EYES = ("""
    CREATE FUNCTION human_tasks_four_eyes() RETURNS trigger AS $$
    BEGIN
        INSERT INTO human_task_exclusions (task_id, user_id, reason_task)
        SELECT DISTINCT NEW.id, done.completed_by_id, substr(NEW.not_same_user_as, 1, 80)
        FROM human_tasks AS done
        WHERE done.instance_id = NEW.instance_id AND done.state = 'completed'
          AND done.completed_by_id IS NOT NULL
          AND done.bpmn_id = ANY (string_to_array(NEW.not_same_user_as, ','));
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql""", """
    CREATE TRIGGER human_tasks_four_eyes AFTER INSERT ON human_tasks
    FOR EACH ROW WHEN (NEW.not_same_user_as IS NOT NULL)
    EXECUTE FUNCTION human_tasks_four_eyes()""")


def upgrade():
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_same_user_as', sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_FOUR_EYES:
            op.execute(statement)
    else:
        op.execute(SQLITE_FOUR_EYES)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS human_tasks_four_eyes ON human_tasks")
        op.execute("DROP FUNCTION IF EXISTS human_tasks_four_eyes()")
    else:
        op.execute("DROP TRIGGER IF EXISTS human_tasks_four_eyes")
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_column('not_same_user_as')
