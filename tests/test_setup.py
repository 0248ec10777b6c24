"""Migrations, accounts CLI, demo data and the audit chain."""
import datetime as dt
from decimal import Decimal

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from accounts.models import ApiToken, User
from audit.models import AuditEvent
from audit.operations import verify_chain
from cases.models import Loan
from extensions import db
from ledger.models import Charge
from tests.conftest import is_postgres
from workflows.models import HumanTask


def test_migrations_match_models_and_run_down_and_up(app):
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert diff == []
    db.session.remove()
    downgrade(revision="base")
    upgrade()
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), db.metadata) == []


def test_users_and_tokens_cli(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "wang", "--role", "account_manager",
                                 "--role", "post_loan_officer", "--password", "long-enough"])
    assert result.exit_code == 0, result.output
    user = User.query.filter_by(username="wang").one()
    assert user.roles == {"account_manager", "post_loan_officer"}
    assert user.password_hash != "long-enough" and user.check_password("long-enough")
    bad = runner.invoke(args=["users", "create", "li", "--role", "boss", "--password", "x" * 9])
    assert bad.exit_code != 0 and "unknown role" in bad.output
    token = runner.invoke(args=["tokens", "create", "wang"]).output.strip().splitlines()[-1]
    assert token.startswith("dh_")
    assert ApiToken.query.one().token_hash != token
    response = app.test_client().get("/api/v1/tasks?scope=mine",
                                     headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_demo_load(app, deployed):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "load", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert Loan.query.count() == 23
    assert {"handover", "servicing", "closing"} == {loan.status for loan in Loan.query}
    bpmn_ids = {t.bpmn_id for t in HumanTask.query.filter_by(state="ready")}
    # issue 16's story: a revaluation to enter, the leader's opinions on the collateral and
    # guarantor warnings, the risk manager's decision on the registration expiring next month,
    # the guarantor's response to a demand
    assert bpmn_ids == {"handover_file", "check_file", "register_loan", "phone_collection",
                        "verify_settlement", "enter_valuation", "opinion", "decide",
                        "record_guarantor_response"}
    decide = HumanTask.query.filter_by(bpmn_id="decide", state="ready").one()
    assert decide.lane == "risk_manager" and decide.case_id == Loan.query.filter_by(
        loan_no="DH2026-0019").one().id
    assert "抵押登记" in decide.context["signal_description"]
    overdue = Loan.query.filter(Loan.dpd > 0).all()
    assert len(overdue) == 2 and {loan.stage for loan in overdue} == {"dpd_8_30"}
    # No false fines: nobody is fined without the leader's finding (issue 11 rule 3).
    from cases.models import LateFollowUp
    assert LateFollowUp.query.filter(LateFollowUp.fine > 0).count() == 0
    # The overdue loans bear penalty interest; DH2026-0022 (9%) at the legal ceiling of 12%.
    capped = Loan.query.filter_by(loan_no="DH2026-0022").one()
    rates = {c.rate for c in Charge.query.filter_by(loan_id=capped.id, source="penalty")}
    assert rates == {Decimal("0.12")}
    balance = capped.outstanding
    verified = runner.invoke(args=["ledger", "verify"])
    assert verified.exit_code == 0 and "every invariant holds" in verified.output
    # The next day's run adds a day of penalty interest, and only one.
    from cases.staging import run_daily
    from workflows import clock
    tomorrow = clock.today() + dt.timedelta(days=1)
    run_daily(tomorrow)
    run_daily(tomorrow)
    db.session.expire_all()
    unpaid = sum(i.principal_due - i.principal_paid for i in capped.installments
                 if i.due_on < tomorrow)
    assert capped.outstanding - balance == (unpaid * Decimal("0.12") / 365).quantize(
        Decimal("0.01"))
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0
    assert User.query.filter_by(username="dual").one().roles == {"account_manager",
                                                                 "post_loan_officer"}
    # People have names (not "demo <role>"), and the demo's texts are in one language.
    assert User.query.filter_by(username="dept_head").one().display_name == "陈建国"
    assert not [u.username for u in User.query if u.display_name == u.username
                or "demo" in u.display_name]
    again = runner.invoke(args=["demo", "load", "--if-empty"])
    assert "not loaded" in again.output and Loan.query.count() == 23


def test_audit_chain_detects_tampering(app, new_loan, users):
    new_loan()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    victim = AuditEvent.query.filter_by(action="case.created").one()
    if is_postgres(app):
        # The trigger refuses the change; a superuser must disable it first.
        import pytest
        from sqlalchemy.exc import DBAPIError
        with pytest.raises(DBAPIError):
            db.session.execute(text("UPDATE audit_events SET action='x' WHERE id=:i"),
                               {"i": victim.id})
        db.session.rollback()
        db.session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
    db.session.execute(text("UPDATE audit_events SET data='{\"loan_no\": \"forged\"}' "
                            "WHERE id=:i"), {"i": victim.id})
    if is_postgres(app):
        db.session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
    db.session.commit()
    count, bad = verify_chain()
    assert bad is not None and bad.id == victim.id
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and f"event {victim.id}" in result.output


def test_secret_key_is_generated_not_hardcoded(tmp_path, monkeypatch):
    from app import _secret_key
    first = _secret_key(tmp_path)
    assert len(first) == 64 and _secret_key(tmp_path) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
