"""Login throttling with Flask-Limiter: failed logins counted per client address and per user
name; over the limit `/login` answers 429 until the window has passed.

Storage is RATELIMIT_STORAGE_URI (memory:// by default). The in-memory storage is per process:
with several gunicorn workers each counts on its own, so production configures a shared one
(e.g. redis://host:6379). The per-account lock after LOGIN_LOCK_AFTER failures does not depend
on it: it is a counter on the user row (accounts.operations.authenticate).
RATELIMIT_ENABLED=False turns throttling off (the test suite does, except its own tests).
"""
import time

from flask import current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from werkzeug.middleware.proxy_fix import ProxyFix

limiter = Limiter(key_func=get_remote_address)
# One audit event per throttled key and window, so a flood cannot flood the audit log.
AUDIT_ONCE_PER = "1 per 15 minutes"


@limiter.request_filter
def _disabled_for_this_app():
    return not current_app.config.get("RATELIMIT_ENABLED", True)


def _failed_login(_response):
    return bool(g.get("login_failed"))


def _account_key():
    name = (request.form.get("username") or "").strip().casefold()[:80]
    return f"user:{name}" if name else ""  # an empty key is not limited (nothing to count)


per_address = limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
                            methods=["POST"], deduct_when=_failed_login, scope="address")
per_account = limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
                            key_func=_account_key, methods=["POST"],
                            deduct_when=_failed_login, scope="account")


def login_limits(view):
    return per_address(per_account(view))


def first_breach_in_window(exc):
    """True the first time a throttled key is refused within AUDIT_ONCE_PER."""
    try:
        key = exc.limit.key_func() or "?"
        return limiter.limiter.hit(parse(AUDIT_ONCE_PER), "login-throttle-audit", key)
    except Exception:  # noqa: BLE001 — auditing must not turn a 429 into a 500
        current_app.logger.exception("throttle audit check failed")
        return False


def throttled_key(exc):
    try:
        key = exc.limit.key_func() or ""
    except Exception:  # noqa: BLE001
        return {}
    return {"username": key[5:]} if key.startswith("user:") else {"address": key}


def retry_after_seconds():
    """Seconds until the breached window resets (at least 1), 60 when unknown."""
    try:
        current = limiter.current_limit
        return max(1, int(current.reset_at - time.time())) if current else 60
    except Exception:  # noqa: BLE001
        return 60


def init_throttle(app):
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies:
        # Behind N reverse proxies the client address is in X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    limiter.init_app(app)
