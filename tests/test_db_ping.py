"""A pooled connection is checked before use only after it sat idle (db_ping.py), and a dead
idle one is replaced instead of failing the request."""
import pytest
from sqlalchemy import create_engine, text

import db_ping
from extensions import db
from tests.conftest import is_postgres


def _engine(app, monkeypatch, idle_seconds):
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    pings = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping",
                        lambda connection: pings.append(1) or real_ping(connection))
    if idle_seconds is not None:
        db_ping.install(engine, idle_seconds)
    return engine, pings


def _use(engine):
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def test_a_connection_in_use_a_moment_ago_is_not_pinged(app, monkeypatch):
    engine, pings = _engine(app, monkeypatch, 60)
    for _ in range(3):
        _use(engine)
    assert pings == []
    engine.dispose()


def test_an_idle_connection_is_pinged_at_checkout(app, monkeypatch):
    engine, pings = _engine(app, monkeypatch, 0)
    for _ in range(3):
        _use(engine)
    assert len(pings) == 2  # not the new connection; each reuse after sitting in the pool
    engine.dispose()


def test_the_app_installs_it(app):
    assert app.config["DB_PING_IDLE_SECONDS"] == 5
    assert len(db.engine.pool.dispatch.checkout) and len(db.engine.pool.dispatch.checkin)


def _backend_pid(connection):
    return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


@pytest.mark.parametrize("idle_ping", [True, False])
def test_a_dead_idle_connection_is_replaced(app, monkeypatch, idle_ping):
    """The database closed the pooled connection (a restart, an idle timeout): with the idle
    ping the next request gets a new connection; without any check it fails (the control)."""
    if not is_postgres(app):
        pytest.skip("PostgreSQL: a server that can end one session")
    engine, _pings = _engine(app, monkeypatch, 0 if idle_ping else None)
    with engine.connect() as connection:
        pid = _backend_pid(connection)
    db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    db.session.commit()
    if idle_ping:
        with engine.connect() as connection:
            assert _backend_pid(connection) != pid
    else:
        with pytest.raises(Exception, match="terminat|closed|connection"):
            _use(engine)
    engine.dispose()
