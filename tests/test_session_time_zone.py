"""Every PostgreSQL session of the application runs in UTC, whatever the server's `timezone`:
a lender's server set to Asia/Shanghai must not change what a time reads as or how a naive
value is stored."""
import datetime as dt

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import T0, is_postgres


@pytest.fixture
def shanghai_engine(app):
    """An engine whose server default is Asia/Shanghai (as `timezone` in postgresql.conf)."""
    if not is_postgres(app):
        pytest.skip("the session time zone is PostgreSQL's")
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"],
                           connect_args={"options": "-c TimeZone=Asia/Shanghai"})
    yield engine
    engine.dispose()


def test_sessions_run_in_utc_whatever_the_servers_zone(shanghai_engine):
    with shanghai_engine.connect() as conn:
        assert conn.execute(text("SHOW TimeZone")).scalar_one() == "UTC"
        back = conn.execute(text("SELECT CAST(:t AS timestamptz)"), {"t": T0}).scalar_one()
        assert back == T0 and back.utcoffset() == dt.timedelta(0)
        assert back.isoformat() == T0.isoformat()
        # A naive time is read as UTC, as SQLite keeps it (accounts.models.utc).
        naive = conn.execute(text("SELECT CAST(CAST(:t AS timestamp) AS timestamptz)"),
                             {"t": T0.replace(tzinfo=None)}).scalar_one()
        assert naive == T0


def test_a_new_connection_after_a_rollback_keeps_utc(shanghai_engine):
    """The setting is committed on connect, so a rollback of the first transaction keeps it."""
    with shanghai_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.rollback()
        assert conn.execute(text("SHOW TimeZone")).scalar_one() == "UTC"
