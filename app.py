"""Daihou: create_app() wires configuration, extensions, blueprints and the CLI."""
import os
import secrets
from pathlib import Path

from flask import Flask, has_request_context, request, session
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.engine import Engine

import db_ping
from extensions import babel, csrf, db, login_manager, migrate
from i18n import LANGUAGES, LOCALES

ROOT = Path(__file__).resolve().parent


def database_url(instance_path):
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'daihou.db'}"
    # psycopg 3 is the PostgreSQL driver; accept plain postgres:// URLs.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _secret_key(instance_path):
    """Generated once into instance/secret_key, never hard-coded."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


@event.listens_for(Engine, "connect")
def _session_settings(dbapi_connection, _record):
    module = type(dbapi_connection).__module__
    if module.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()
    elif module.startswith("psycopg"):
        # Times are UTC in every session, whatever the server's `timezone` (a lender's server
        # is often set to Asia/Shanghai): otherwise times come back in that zone, and the API
        # answers the same instant as +00:00 when written and +08:00 when read back.
        dbapi_connection.execute("SET TIME ZONE 'UTC'")
        dbapi_connection.commit()


def select_locale():
    # A parsed Locale, not its name: Flask-Babel would parse the name again on every request
    # (Babel's normalize_locale scans every known locale, ~0.3 ms).
    return LOCALES[_locale_name()]


def _locale_name():
    if not has_request_context():
        return "zh_CN"
    if current_user.is_authenticated and current_user.locale in LANGUAGES:
        return current_user.locale
    if session.get("locale") in LANGUAGES:
        return session["locale"]
    # By primary language, so en-US, en-GB, zh-TW… all find one of the two catalogs.
    for tag, _quality in request.accept_languages:
        primary = tag.lower().replace("_", "-").split("-")[0]
        if primary == "zh":
            return "zh_CN"
        if primary == "en":
            return "en"
    return "zh_CN"


def create_app(config=None):
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(
        SECRET_KEY=os.environ.get("SECRET_KEY") or _secret_key(app.instance_path),
        SQLALCHEMY_DATABASE_URI=database_url(app.instance_path),
        # A pooled connection idle this long is checked before use (db_ping.py).
        DB_PING_IDLE_SECONDS=float(os.environ.get("DB_PING_IDLE_SECONDS", "5")),
        BPMN_DIR=str(ROOT / "bpmn"),
        BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "translations"),
        BABEL_DEFAULT_LOCALE="zh_CN",
        # Times are stored in UTC and shown in the lender's time zone.
        BABEL_DEFAULT_TIMEZONE="Asia/Shanghai",
        # The worker runs the daily delinquency staging once a day after this Beijing time.
        DAILY_RUN_AT="06:00",
        PAGE_SIZE=20,
        # Uploads are checked against MAX_DOCUMENT_BYTES; refuse far larger bodies outright.
        MAX_DOCUMENT_BYTES=10 * 1024 * 1024,
        MAX_CONTENT_LENGTH=12 * 1024 * 1024,
        WORKER_POLL_SECONDS=10,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Accounts and security (README "Accounts and security"). Behind HTTPS set
        # SESSION_COOKIE_SECURE=1 (or HTTPS=1): cookies are then sent over HTTPS only.
        SESSION_COOKIE_SECURE=_env_flag("SESSION_COOKIE_SECURE") or _env_flag("HTTPS"),
        REMEMBER_COOKIE_SECURE=_env_flag("SESSION_COOKIE_SECURE") or _env_flag("HTTPS"),
        REMEMBER_COOKIE_HTTPONLY=True,
        # Login throttling (Flask-Limiter): memory:// counts per process; with several
        # gunicorn workers configure a shared storage, e.g. redis://host:6379.
        RATELIMIT_ENABLED=os.environ.get("RATELIMIT_ENABLED", "1").strip().lower()
        not in ("0", "false", "no", "off"),
        RATELIMIT_STORAGE_URI=os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        LOGIN_LIMIT_PER_ADDRESS="30 per 15 minutes",  # failed logins from one address
        LOGIN_LIMIT_PER_ACCOUNT="10 per 15 minutes",  # failed logins for one user name
        LOGIN_LOCK_AFTER=5,  # consecutive failures lock the account (on the user row)…
        LOGIN_LOCK_MINUTES=15,  # …for this long
        TRUSTED_PROXIES=int(os.environ.get("TRUSTED_PROXIES", "0")),  # X-Forwarded-For hops
        TOKEN_DAYS=90,
        # The lender on letters and in notices (notices/): demo values unless set.
        LENDER_NAME=os.environ.get("LENDER_NAME", "杭州示范小额贷款有限公司"),
        LENDER_NAME_EN=os.environ.get("LENDER_NAME_EN", "Hangzhou Demo Microcredit Co., Ltd."),
        LENDER_ADDRESS=os.environ.get("LENDER_ADDRESS", "浙江省杭州市西湖区文三路100号"),
        LENDER_ADDRESS_EN=os.environ.get("LENDER_ADDRESS_EN",
                                         "100 Wensan Road, Xihu District, Hangzhou"),
        LENDER_PHONE=os.environ.get("LENDER_PHONE", "0571-8888 6666"),
    )
    app.config.update(config or {})

    # Every table module, so Alembic sees the whole schema.
    import accounts.models, audit.models, calendars.models, cases.models  # noqa: E401,F401
    import ledger.models, notifications.models, workflows.models  # noqa: E401,F401
    import portfolio.models, scoring.models, scorecards.models  # noqa: E401,F401
    # Modules that register the operations BPMN service tasks may call.
    import collection.operations, extension_requests.operations, cases.operations  # noqa: E401,F401
    import collection.legal  # noqa: F401
    import cases.closure, monitoring.reminders, monitoring.risk, ledger.repayments  # noqa: E401,F401
    import ledger.writeoff  # noqa: F401
    import collection.contact_rules  # noqa: F401  (the phone call's contact rules hook)
    import collection.guarantors, collection.plans  # noqa: E401,F401  (tables too)
    import guarantees.models, notices.models  # noqa: E401,F401  (issue 16 tables)
    import guarantees.watch, guarantees.guarantors, notices.operations  # noqa: E401,F401  (hooks)

    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            db_ping.install(engine, app.config["DB_PING_IDLE_SECONDS"])
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    from accounts.throttle import init_throttle
    init_throttle(app)

    from search.views import bp as search_bp  # the header search (also loads its tables)
    app.register_blueprint(search_bp)
    from accounts.views import bp as accounts_bp
    from admin.views import bp as admin_bp
    from admin.users import bp as admin_users_bp
    from api import bp as api_bp
    from extension_requests.views import bp as extensions_bp
    from ledger.views import bp as repayments_bp
    from ledger.writeoff_views import bp as write_offs_bp
    from collection.plan_views import bp as repayment_plans_bp
    from monitoring.views import bp as risk_bp
    from cases.views import bp as cases_bp
    from compliance.search_views import bp as compliance_search_bp
    from compliance.views import bp as compliance_bp
    from management.views import bp as management_bp  # also `flask tasks overdue`
    from studio import bp as studio_bp
    from workflows.views import bp as workflows_bp
    for blueprint in (accounts_bp, workflows_bp, cases_bp, repayments_bp, write_offs_bp,
                      extensions_bp, risk_bp, api_bp, admin_bp, management_bp, studio_bp,
                      compliance_search_bp, compliance_bp, admin_users_bp,
                      repayment_plans_bp):
        app.register_blueprint(blueprint)
    csrf.exempt(api_bp)
    # Issue 14: the portfolio, scorecards and scoring (importing them also registers their
    # daily-run hooks and BPMN service operations)
    from portfolio.classification_views import bp as classification_bp
    from portfolio.views import bp as portfolio_bp
    from scorecards.views import bp as scorecards_bp
    from scoring.views import bp as scoring_bp
    for blueprint in (classification_bp, portfolio_bp, scorecards_bp, scoring_bp):
        app.register_blueprint(blueprint)
    from admin.teams import bp as admin_teams_bp  # teams (issue 14)
    app.register_blueprint(admin_teams_bp)
    from admin.collateral import bp as admin_collateral_bp; app.register_blueprint(admin_collateral_bp)  # noqa: E702 (issue 16)
    from guarantees.views import bp as guarantees_bp  # collateral and guarantors (issue 16)
    from notices.views import bp as notices_bp  # the template library (issue 16)
    app.register_blueprint(guarantees_bp)
    app.register_blueprint(notices_bp)
    from home.views import register as register_home  # "/", /notifications and their hooks
    register_home(app)
    from web_assets import bp as assets_bp  # Bootstrap from node_modules, the favicon
    app.register_blueprint(assets_bp)

    from cli import register_cli
    register_cli(app)

    from web import register_web_helpers
    register_web_helpers(app)
    from pii.rules import register_pii_filters  # pii_id / pii_phone, masked per role
    register_pii_filters(app)
    return app
