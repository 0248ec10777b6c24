"""Check a pooled database connection before use only when it has sat idle.

SQLAlchemy's pool_pre_ping checks every connection at every checkout. That costs one round
trip per request, and under load it only confirms that a connection used milliseconds ago is
still alive (issue 12: 2 of 16 round trips per claim + complete). A connection that sat idle
for DB_PING_IDLE_SECONDS or more may have been cut by a database restart, a failover or a
firewall's idle timeout, so it is checked before it is handed out, and replaced if it is dead.
A connection that dies while in use fails its request, as it would with pool_pre_ping, and
SQLAlchemy then drops every connection in the pool that is older than the failure.
"""
import time

from sqlalchemy import event, exc

IDLE_SINCE = "daihou_idle_since"


def install(engine, idle_seconds):
    """Ping `engine`'s pooled connections at checkout when they were idle >= idle_seconds
    (0: at every checkout, as pool_pre_ping does)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record):
        record.info[IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy):
        since = record.info.pop(IDLE_SINCE, None)
        if since is None or time.monotonic() - since < idle_seconds:
            return  # just opened, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # noqa: BLE001 — any failure means: not usable
            # The pool discards this connection and checks out another (a new one).
            raise exc.DisconnectionError(f"idle connection is dead: {error}") from error
