"""Fixtures: one migrated database per session (SQLite file, or the PostgreSQL database named
by DATABASE_URL), emptied after every test."""
import datetime as dt
import os
import re
from pathlib import Path

import pytest
from flask import current_app, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from accounts.operations import create_token, create_user
from app import create_app
from audit.models import AuditEvent
from calendars.workdays import clear_cache as clear_calendar_cache
from cases.operations import register_loan
from extensions import db
from workflows import clock
from workflows.definitions import clear_latest_cache, deploy_paths
from workflows.models import FormDefinition, ProcessDefinition

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "secret-pass"
# A Monday in a year the statutory calendar knows.
T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.timezone.utc)


class FreshContextClient(FlaskClient):
    """Each request runs in its own app context, as in production: a fresh `g` (logged-in
    user, locale) and a fresh database session. The test's own session is expired after
    each request so it sees what the request wrote."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        if has_app_context():
            db.session.expire_all()
        return response


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    app = create_app({"TESTING": True, "SECRET_KEY": "test-only", "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": False,  # tests/test_accounts_security.py enables it
                      # the audit key and anchor file stay out of the real instance folder
                      "AUDIT_KEY": "test-only-audit-key-0123456789abcdef",
                      "AUDIT_ANCHOR_FILE": str(tmp_path_factory.mktemp("audit") / "anchors.log"),
                      # fast hashing keeps per-test user creation cheap
                      "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})
    app.test_client_class = FreshContextClient
    with app.app_context():
        upgrade()  # every migration, from an empty database
    yield app


def is_postgres(app):
    return app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


@pytest.fixture(autouse=True)
def _clean(app):
    with app.app_context():
        clock.set_now(T0)
        yield
        db.session.rollback()
        clock.set_now(None)
        Path(app.config["AUDIT_ANCHOR_FILE"]).unlink(missing_ok=True)  # anchors of this test
        empty_database(app)


def empty_database(app):
    """Every table emptied, reference data as the migrations seed it, the per-app memos
    cleared: the database as each test finds it."""
    db.session.rollback()
    # Reference data seeded by migrations stays, as seeded.
    tables = [t.name for t in reversed(db.metadata.sorted_tables) if t.name != "products"]
    if not is_postgres(app):  # (there, foreign keys are off while it empties)
        # users.team_id and teams.leader_id point at each other: unlink them first
        db.session.execute(text("UPDATE users SET team_id = NULL"))
    empty_tables(tables)
    db.session.execute(text("INSERT INTO legal_rate_caps (effective_on, lpr_one_year, "
                            "multiple, entered_at) VALUES ('2025-05-20', 0.03, 4, "
                            "CURRENT_TIMESTAMP)"))
    db.session.execute(text("UPDATE products SET penalty_markup = 0.5, "
                            "compound_interest = false"))
    db.session.commit()
    clear_calendar_cache()  # memoized per app, and this app lives for the whole session
    clear_latest_cache()  # the same (and the ids start again)


# The sequences owned by columns of the tables (serial and identity ids): what TRUNCATE …
# RESTART IDENTITY restarts.
_RESTART_SEQUENCES = text("""
    SELECT setval(d.objid::regclass, 1, false) FROM pg_depend d
    JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
    JOIN pg_class t ON t.oid = d.refobjid
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i') AND t.relname = ANY(:tables)""")

# What TRUNCATE also does: the tables become never analyzed. After a DELETE the planner keeps
# the last ANALYZE's figures, and one taken of an emptied table (the suite's own, or
# autovacuum's) counts its dead pages as holding no rows: every later estimate is then one row,
# and joins over thousands of real rows ran as nested loops (a staging test: 6 s alone, 68 s
# after tests/test_bulk_intake.py).
_FORGET_STATISTICS = text("""
    UPDATE pg_class SET reltuples = -1, relpages = 0, relallvisible = 0
    WHERE relkind = 'r' AND relnamespace = current_schema()::regnamespace
      AND relname = ANY(:tables) AND reltuples <> -1""")


def empty_tables(tables, restart_ids=True):
    """Every row of `tables` (names, referencing tables first) deleted, on either database.
    `restart_ids` is for PostgreSQL (empty_postgres): SQLite numbers the rows of an emptied
    table from 1 again anyway."""
    if db.session.get_bind().dialect.name == "postgresql":
        empty_postgres(tables, restart_ids)
        return
    for name in tables:
        db.session.execute(text(f"DELETE FROM {name}"))


def empty_postgres(tables, restart_ids=True):
    """DELETE every row of `tables` with triggers off (the append-only ones refuse a DELETE;
    foreign keys are triggers too, so the order does not matter), mark them never analyzed
    and, with `restart_ids`, restart their sequences: the same end state as TRUNCATE
    [… RESTART IDENTITY], for about a tenth of its time on tables this small (a TRUNCATE of
    66 tables makes new files for each and their indexes: 0.1-0.2 s per test). Without the
    superuser's right to turn triggers off, TRUNCATE."""
    try:
        with db.session.begin_nested():
            db.session.execute(text("SET LOCAL session_replication_role = replica"))
    except DBAPIError:
        restart = " RESTART IDENTITY" if restart_ids else ""
        db.session.execute(text(f"TRUNCATE {', '.join(tables)}{restart} CASCADE"))
        return
    for name in tables:
        db.session.execute(text(f"DELETE FROM {name}"))
    db.session.execute(text("SET LOCAL session_replication_role = origin"))
    db.session.execute(_FORGET_STATISTICS, {"tables": tables})
    if restart_ids:
        db.session.execute(_RESTART_SEQUENCES, {"tables": tables})


@pytest.fixture
def deployed(app):
    """bpmn/ deployed, as `bpmn deploy` does it. Deploying validates and parses every diagram
    (about a second, in most tests): the first deploy into an empty database is kept, and
    later tests that start from the same state get its rows written back instead."""
    key, fresh = _deploy_key(), _nothing_deployed()
    if fresh and key in _DEPLOYS:
        _restore(_DEPLOYS[key])
        return db.session.scalars(db.select(ProcessDefinition)
                                  .order_by(ProcessDefinition.id)).all()
    first_event = db.session.scalar(db.select(db.func.max(AuditEvent.id))) or 0
    results = deploy_paths(sorted((ROOT / "bpmn").glob("*.bpmn")), ROOT / "bpmn" / "forms")
    if fresh:
        _DEPLOYS[key] = _capture(first_event)
    return results


# What a deploy of bpmn/ wrote into an empty database, by what it depends on (the clock, the
# limits the validation applies): {key: {table: [rows]}}.
_DEPLOYS = {}
_DEPLOY_TABLES = (ProcessDefinition, FormDefinition)


def _deploy_key():
    limits = tuple(sorted((k, v) for k, v in current_app.config.items()
                          if k.startswith(("SCRIPT_", "ENGINE_"))))
    return clock.now(), limits


def _nothing_deployed():
    return not any(db.session.scalar(db.select(db.exists().select_from(model)))
                   for model in _DEPLOY_TABLES)


def _capture(first_event):
    """The rows of the deploy: definitions and forms as they are (ids included: the tables were
    empty), its audit events without their ids (the MAC does not cover the id, and a test may
    have written events before; the trigger queues them for the chainer again)."""
    rows = {model.__table__: [dict(r._mapping) for r in db.session.execute(
        db.select(model.__table__))] for model in _DEPLOY_TABLES}
    events = AuditEvent.__table__
    rows[events] = [{k: v for k, v in r._mapping.items() if k != "id"}
                    for r in db.session.execute(db.select(events).where(
                        events.c.id > first_event).order_by(events.c.id))]
    return rows


def _restore(snapshot):
    for table, rows in snapshot.items():
        if rows:
            db.session.execute(table.insert(), rows)
    if is_postgres(current_app):  # explicit ids leave the sequences behind
        for model in _DEPLOY_TABLES:
            name = model.__tablename__
            db.session.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"(SELECT max(id) FROM {name}))"))
    db.session.commit()


@pytest.fixture
def users(app):
    """A small staff: two account managers, two post-loan officers, one holding both roles."""
    spec = {"am": ["account_manager"], "am2": ["account_manager"],
            "plo": ["post_loan_officer"], "plo2": ["post_loan_officer"],
            "dual": ["account_manager", "post_loan_officer"], "admin": ["admin"],
            "collector": ["collector"], "compliance": ["compliance"]}
    return {name: create_user(name, PASSWORD, roles) for name, roles in spec.items()}


def loan_payload(loan_no="L-001", manager="am", **overrides):
    body = {"loan_no": loan_no, "borrower_name": "杭州明远贸易有限公司", "principal": "500000.00",
            "interest_rate": "0.0435", "disbursed_on": "2026-03-02",
            "maturity_on": "2026-09-02", "account_manager": manager}
    body.update(overrides)
    return body


@pytest.fixture
def new_loan(deployed, users):
    def make(loan_no="L-001", manager="am", **overrides):
        return register_loan(loan_payload(loan_no, manager, **overrides), users["admin"])
    return make


HANDOVER_DATA = {"documents": ["contract", "iou"], "purpose": "working capital",
                 "repayment_source": "sales receipts", "risk_points": "single customer"}


def login(client, username, password=PASSWORD):
    return client.post("/login", data={"username": username, "password": password})


@pytest.fixture
def token_for(app):
    def make(username):
        return {"Authorization": f"Bearer {create_token(username, 'test')}"}
    return make


def simultaneous_posts(app, username, url, body, clients):
    """`clients` sessions of `username`, each logged in over real HTTP (bench.ledger_races
    .serve), POST the form `body` to `url` at the same moment; their statuses, in order."""
    import http.client
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlencode
    from bench.ledger_races import serve

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with serve(app) as address:
        def session_cookie():
            conn = http.client.HTTPConnection(*address, timeout=60)
            conn.request("POST", "/login", urlencode({"username": username,
                                                      "password": PASSWORD}), form)
            response = conn.getresponse()
            response.read()
            cookie = response.getheader("Set-Cookie").split(";")[0]
            conn.close()
            return cookie

        cookies = [session_cookie() for _ in range(clients)]
        barrier = threading.Barrier(clients)

        def post(cookie):
            conn = http.client.HTTPConnection(*address, timeout=120)
            conn.connect()
            barrier.wait()
            conn.request("POST", url, urlencode(body), dict(form, Cookie=cookie))
            status = conn.getresponse().status
            conn.close()
            return status

        with ThreadPoolExecutor(max_workers=clients) as pool:
            return list(pool.map(post, cookies))


def csrf_from(html):
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'name="csrf_token" value="([^"]+)"', html)
    return found.group(1) if found else None
