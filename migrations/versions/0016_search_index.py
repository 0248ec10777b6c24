"""search index: search_keys, loan_balances kept by triggers, case list indexes

Issue 13 item 4. search_keys holds each loan's normalized identifiers and the suffixes of the
borrower's name (search/models.py says why this and not FTS5/pg_trgm); loan_balances holds
each loan's outstanding amount and next unpaid due date, kept by triggers on installments so
that every ledger write keeps it. Both are filled from the existing rows here.

A later migration that rebuilds `installments` on SQLite (batch_alter_table copies the table)
drops its triggers: it must create them again (SQLITE_TRIGGERS, SQLITE_DELETE below).

Revision ID: 0016
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

OUTSTANDING = ("principal_due + interest_due + penalty_due - principal_paid - interest_paid"
               " - penalty_paid")
NEXT_DUE = "CASE WHEN paid_off_on IS NULL THEN due_on END"
# A loan with nothing left to pay: no NULL, so that sorting by due date (nulls last) is a
# walk of the index on both databases (search.models.NO_DUE).
NO_DUE = "'9999-12-31'"

SQLITE_TRIGGERS = {
    # After a new or changed installment: its loan's totals, the row made when missing.
    "installments_balance_insert": "AFTER INSERT ON installments",
    "installments_balance_update": "AFTER UPDATE ON installments",
}
SQLITE_UPSERT = f"""
    INSERT INTO loan_balances (loan_id, outstanding, next_due_on)
    SELECT NEW.loan_id, ROUND(COALESCE(SUM({OUTSTANDING}), 0), 2),
           COALESCE(MIN({NEXT_DUE}), {NO_DUE})
    FROM installments WHERE loan_id = NEW.loan_id
    ON CONFLICT (loan_id) DO UPDATE SET outstanding = excluded.outstanding,
                                        next_due_on = excluded.next_due_on;"""
# A deleted installment only updates a row that exists (emptying the tables in any order
# must not bring a balance back).
SQLITE_DELETE = f"""
CREATE TRIGGER IF NOT EXISTS installments_balance_delete AFTER DELETE ON installments
BEGIN
    UPDATE loan_balances SET
        outstanding = (SELECT ROUND(COALESCE(SUM({OUTSTANDING}), 0), 2) FROM installments
                       WHERE loan_id = OLD.loan_id),
        next_due_on = (SELECT COALESCE(MIN({NEXT_DUE}), {NO_DUE}) FROM installments
                       WHERE loan_id = OLD.loan_id)
    WHERE loan_id = OLD.loan_id;
END"""

# PostgreSQL: statement-level triggers with transition tables, one refresh per statement
# (an import's INSERT of 1000 installments refreshes their loans once).
PG_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION loan_balances_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO loan_balances (loan_id, outstanding, next_due_on)
    SELECT i.loan_id, SUM({OUTSTANDING}),
           COALESCE(MIN(i.due_on) FILTER (WHERE i.paid_off_on IS NULL), DATE {NO_DUE})
    FROM installments i WHERE i.loan_id IN (SELECT loan_id FROM changed)
    GROUP BY i.loan_id
    ON CONFLICT (loan_id) DO UPDATE SET outstanding = EXCLUDED.outstanding,
                                        next_due_on = EXCLUDED.next_due_on;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION loan_balances_refresh_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE loan_balances b SET
        outstanding = COALESCE((SELECT SUM({OUTSTANDING}) FROM installments i
                                WHERE i.loan_id = b.loan_id), 0),
        next_due_on = COALESCE((SELECT MIN(i.due_on) FROM installments i
                                WHERE i.loan_id = b.loan_id AND i.paid_off_on IS NULL),
                               DATE {NO_DUE})
    WHERE b.loan_id IN (SELECT loan_id FROM changed);
    RETURN NULL;
END $$;
"""
PG_TRIGGERS = {
    "installments_balance_insert": ("AFTER INSERT", "NEW TABLE AS changed",
                                    "loan_balances_refresh"),
    "installments_balance_update": ("AFTER UPDATE", "NEW TABLE AS changed",
                                    "loan_balances_refresh"),
    "installments_balance_delete": ("AFTER DELETE", "OLD TABLE AS changed",
                                    "loan_balances_refresh_deleted"),
}

KEY_TYPE = sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql")
BATCH = 2000


def upgrade():
    op.create_table(
        'search_keys',
        sa.Column('key', KEY_TYPE, nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('key', 'loan_id', 'kind'))
    op.create_index('ix_search_keys_loan_id', 'search_keys', ['loan_id'], unique=False)
    op.create_table(
        'loan_balances',
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('outstanding', sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column('next_due_on', sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('loan_id'))
    op.create_index('ix_loan_balances_outstanding', 'loan_balances',
                    ['outstanding', 'loan_id'],
                    unique=False)
    op.create_index('ix_loan_balances_next_due_on', 'loan_balances',
                    ['next_due_on', 'loan_id'],
                    unique=False)
    op.create_index('ix_loans_dpd_id', 'loans', ['dpd', 'id'], unique=False)
    op.create_index('ix_loans_borrower_name', 'loans', ['borrower_name', 'id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTIONS)
        for name, (when, transition, function) in PG_TRIGGERS.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON installments")
            op.execute(f"CREATE TRIGGER {name} {when} ON installments REFERENCING "
                       f"{transition} FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
    else:
        for name, when in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {when} BEGIN {SQLITE_UPSERT} END")
        op.execute(SQLITE_DELETE)
    _backfill()


def _backfill():
    """The balances and keys of the loans registered before this migration."""
    op.execute(f"INSERT INTO loan_balances (loan_id, outstanding, next_due_on) "
               f"SELECT loan_id, ROUND(SUM({OUTSTANDING}), 2), "
               f"COALESCE(MIN({NEXT_DUE}), {NO_DUE}) FROM installments GROUP BY loan_id")
    from search.normalize import name_keys, normalize, phone_keys
    bind = op.get_bind()
    keys = sa.table('search_keys', sa.column('key'), sa.column('loan_id'), sa.column('kind'))
    last = 0
    while True:
        loans = bind.execute(sa.text(
            "SELECT l.id, l.loan_no, l.borrower_name, b.id_number, b.phones FROM loans l "
            "LEFT JOIN borrowers b ON b.id = l.borrower_id WHERE l.id > :last "
            "ORDER BY l.id LIMIT :n"), {"last": last, "n": BATCH}).all()
        if not loans:
            return
        last = loans[-1][0]
        ids = [row[0] for row in loans]
        found = {}
        for loan_id, loan_no, name, id_number, phones in loans:
            if isinstance(phones, str):  # SQLite hands JSON back as text here
                import json
                phones = json.loads(phones or "[]")
            found[loan_id] = {(normalize(loan_no), "loan"), (normalize(id_number), "id")}
            found[loan_id] |= {(k, "name") for k in name_keys(name)}
            found[loan_id] |= {(k, "phone") for p in phones or () for k in phone_keys(p)}
        parties = sa.text("SELECT loan_id, '' AS id_number, phone FROM contacts "
                          "WHERE loan_id IN :ids UNION ALL SELECT loan_id, id_number, phone "
                          "FROM guarantors WHERE loan_id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True))
        for loan_id, id_number, phone in bind.execute(parties, {"ids": ids}):
            found[loan_id] |= {(normalize(id_number), "id")}
            found[loan_id] |= {(k, "phone") for k in phone_keys(phone)}
        rows = [{"key": key, "loan_id": loan_id, "kind": kind}
                for loan_id, pairs in found.items() for key, kind in sorted(pairs) if key]
        if rows:
            op.bulk_insert(keys, rows)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON installments")
        op.execute("DROP FUNCTION IF EXISTS loan_balances_refresh()")
        op.execute("DROP FUNCTION IF EXISTS loan_balances_refresh_deleted()")
    else:
        for name in (*SQLITE_TRIGGERS, "installments_balance_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index('ix_loans_borrower_name', table_name='loans')
    op.drop_index('ix_loans_dpd_id', table_name='loans')
    op.drop_index('ix_loan_balances_next_due_on', table_name='loan_balances')
    op.drop_index('ix_loan_balances_outstanding', table_name='loan_balances')
    op.drop_table('loan_balances')
    op.drop_index('ix_search_keys_loan_id', table_name='search_keys')
    op.drop_table('search_keys')
