"""The notification outbox: enqueue in the caller's transaction, deliver through a sender,
back off on failure, give up visibly, retry from the admin page."""
import datetime as dt
import json
from decimal import Decimal
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import text

from accounts.models import utc
from audit.models import AuditEvent
from cases.models import Loan
from extensions import db
from notifications import outbox
from notifications.models import Notification
from notifications.outbox import SENDERS, backoff, deliver_due, enqueue, sender
from tests.conftest import T0, is_postgres, login
from workflows import clock

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def loan(users):
    """A bare case row (no process: the outbox does not need one)."""
    row = Loan(loan_no="L-OUT-1", borrower_name="张伟", principal=Decimal("100000"),
               interest_rate=Decimal("0.05"), disbursed_on=dt.date(2026, 3, 2),
               maturity_on=dt.date(2026, 9, 2), account_manager_id=users["am"].id)
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def instance_dir(app, tmp_path, monkeypatch):
    """The log sender writes under app.instance_path: point it at a temporary directory."""
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    return tmp_path


@pytest.fixture
def config(app, monkeypatch):
    def set_(**values):
        for key, value in values.items():
            monkeypatch.setitem(app.config, key, value)
    return set_


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens there any more


def read_log(directory):
    path = directory / "notifications.log"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_enqueue_joins_the_callers_transaction(app):
    n = enqueue(None, "13800000000", "您的贷款将于3月10日到期。")
    assert n.id is not None and n.status == "pending" and n.attempts == 0
    assert utc(n.next_attempt_at) == T0
    db.session.rollback()
    assert Notification.query.count() == 0
    with pytest.raises(ValueError):
        enqueue(None, " ", "body")


def test_log_sender_writes_the_file(app, instance_dir, loan):
    enqueue(loan.id, "13800000000", "您的贷款将于9月2日到期，请按时还款。")
    enqueue(None, "13900000000", "second", channel="wechat")
    later = enqueue(None, "13700000000", "not yet")
    later.next_attempt_at = T0 + MINUTE
    db.session.commit()
    assert deliver_due() == (2, 0)
    lines = read_log(instance_dir)
    assert [(x["recipient"], x["loan_id"], x["channel"]) for x in lines] == \
        [("13800000000", loan.id, "sms"), ("13900000000", None, "wechat")]
    assert lines[0]["body"] == "您的贷款将于9月2日到期，请按时还款。"
    assert Notification.query.filter_by(status="sent").count() == 2
    assert utc(Notification.query.filter_by(recipient="13800000000").one().sent_at) == T0
    assert deliver_due() == (0, 0)  # nothing is sent twice
    clock.set_now(T0 + MINUTE)
    assert deliver_due() == (1, 0)


def test_limit(app, instance_dir):
    for i in range(5):
        enqueue(None, f"1380000000{i}", "hello")
    db.session.commit()
    assert deliver_due(limit=3) == (3, 0)
    assert deliver_due(limit=3) == (2, 0)


def test_failing_webhook_backs_off_then_fails(app, config):
    config(NOTIFY_SENDER="webhook", NOTIFY_WEBHOOK_URL=closed_port_url(),
           NOTIFY_WEBHOOK_TIMEOUT=2)
    loan_less = enqueue(None, "13800000000", "hello")
    db.session.commit()
    n_id = loan_less.id
    expected_waits = [1, 2, 4, 8, 16, 32, 60]
    now = T0
    for attempt, wait in enumerate(expected_waits, start=1):
        clock.set_now(now)
        assert deliver_due() == (0, 1)
        n = db.session.get(Notification, n_id)
        assert (n.status, n.attempts) == ("pending", attempt)
        assert "refused" in n.last_error.lower() or "urlopen error" in n.last_error
        assert utc(n.next_attempt_at) == now + wait * MINUTE
        # Not due again before its time.
        clock.set_now(now + wait * MINUTE - dt.timedelta(seconds=1))
        assert deliver_due() == (0, 0)
        now += wait * MINUTE
    assert AuditEvent.query.filter_by(action="notification.failed").count() == 0
    clock.set_now(now)
    assert deliver_due() == (0, 1)  # the 8th attempt
    n = db.session.get(Notification, n_id)
    assert (n.status, n.attempts) == ("failed", 8)
    failed = AuditEvent.query.filter_by(action="notification.failed").one()
    assert failed.data["notification_id"] == n_id and failed.data["attempts"] == 8
    clock.set_now(now + dt.timedelta(days=1))
    assert deliver_due() == (0, 0)  # failed rows stay, and are not retried by themselves
    assert Notification.query.count() == 1


def test_backoff_is_capped():
    assert [backoff(a).seconds // 60 for a in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_max_attempts_setting(app, config):
    config(NOTIFY_SENDER="webhook", NOTIFY_WEBHOOK_URL=closed_port_url(),
           NOTIFY_MAX_ATTEMPTS=2)
    enqueue(None, "13800000000", "hello")
    db.session.commit()
    assert deliver_due() == (0, 1)
    clock.set_now(T0 + MINUTE)
    assert deliver_due() == (0, 1)
    assert Notification.query.one().status == "failed"


def test_webhook_posts_json(app, config, loan):
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Content-Type"], json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config(NOTIFY_SENDER="webhook",
               NOTIFY_WEBHOOK_URL=f"http://127.0.0.1:{server.server_port}/sms")
        n = enqueue(loan.id, "13800000000", "到期提醒")
        db.session.commit()
        assert deliver_due() == (1, 0)
    finally:
        server.shutdown()
        server.server_close()
    assert received == [("application/json; charset=utf-8",
                         {"id": n.id, "channel": "sms", "recipient": "13800000000",
                          "body": "到期提醒", "loan_id": loan.id})]


def test_webhook_error_status_is_a_failure(app, config):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config(NOTIFY_SENDER="webhook",
               NOTIFY_WEBHOOK_URL=f"http://127.0.0.1:{server.server_port}/sms")
        enqueue(None, "13800000000", "hello")
        db.session.commit()
        assert deliver_due() == (0, 1)
    finally:
        server.shutdown()
        server.server_close()
    assert "503" in Notification.query.one().last_error


def test_sender_registry_and_misconfiguration(app, config, monkeypatch):
    sent = []
    monkeypatch.setitem(SENDERS, "memory", lambda n: sent.append(n.body))
    config(NOTIFY_SENDER="memory")
    enqueue(None, "13800000000", "hello")
    db.session.commit()
    assert deliver_due() == (1, 0) and sent == ["hello"]
    assert sender("another")(len) is len
    monkeypatch.delitem(SENDERS, "another")

    # A sender that cannot work at all counts no attempt.
    enqueue(None, "13800000000", "second")
    db.session.commit()
    config(NOTIFY_SENDER="carrier-pigeon")
    with pytest.raises(outbox.SenderConfigError):
        deliver_due()
    config(NOTIFY_SENDER="webhook", NOTIFY_WEBHOOK_URL="")
    with pytest.raises(outbox.SenderConfigError):
        deliver_due()
    pending = Notification.query.filter_by(status="pending").one()
    assert pending.attempts == 0 and pending.last_error is None
    result = app.test_cli_runner().invoke(args=["notifications", "send"])
    assert result.exit_code != 0 and "NOTIFY_WEBHOOK_URL" in result.output


def make_failed(loan_id=None):
    n = enqueue(loan_id, "13800000000", "hello")
    n.status, n.attempts, n.last_error = "failed", 8, "URLError: connection refused"
    n.next_attempt_at = T0 - dt.timedelta(hours=1)
    db.session.commit()
    return n.id


def test_admin_page_and_retry_button(app, users, loan, instance_dir):
    failed_id = make_failed(loan.id)
    pending = enqueue(None, "13900000000", "waiting")
    pending.attempts, pending.last_error = 2, "HTTPError: HTTP Error 502"
    pending.next_attempt_at = T0 + 2 * MINUTE
    db.session.commit()
    pending_id = pending.id

    client = app.test_client()
    login(client, "admin")
    page = client.get("/admin/notifications", headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-id="{failed_id}"' in html and f'data-id="{pending_id}"' in html
    assert "connection refused" in html and "HTTP Error 502" in html
    # the next attempt, shown in Beijing time
    assert loan.loan_no in html and "2026-03-02 10:02" in html
    assert f"/admin/notifications/{failed_id}/retry" in html
    assert f"/admin/notifications/{pending_id}/retry" not in html

    done = client.post(f"/admin/notifications/{failed_id}/retry")
    assert done.status_code == 302
    n = db.session.get(Notification, failed_id)
    assert n.status == "pending" and utc(n.next_attempt_at) == T0
    retried = AuditEvent.query.filter_by(action="notification.retried").one()
    assert retried.actor_id == users["admin"].id and retried.case_id == loan.id
    # Only a failed one can be retried.
    again = client.post(f"/admin/notifications/{failed_id}/retry", follow_redirects=True,
                        headers={"Accept-Language": "en"})
    assert "Only a failed notification can be retried." in again.get_data(as_text=True)
    assert client.post("/admin/notifications/999999/retry").status_code == 302
    assert deliver_due() == (1, 0)
    assert db.session.get(Notification, failed_id).status == "sent"


def test_non_admin_cannot_see_or_retry(app, users):
    failed_id = make_failed()
    client = app.test_client()
    login(client, "plo")
    assert client.get("/admin/notifications").status_code == 403
    assert client.post(f"/admin/notifications/{failed_id}/retry").status_code == 403
    assert db.session.get(Notification, failed_id).status == "failed"


def test_cli_and_worker_send(app, instance_dir):
    runner = app.test_cli_runner()
    enqueue(None, "13800000000", "one")
    db.session.commit()
    result = runner.invoke(args=["notifications", "send"])
    assert result.exit_code == 0 and "1 sent, 0 failed" in result.output
    enqueue(None, "13800000000", "two")
    db.session.commit()
    worker = runner.invoke(args=["worker", "--once"])
    assert worker.exit_code == 0 and "1 notification(s) sent" in worker.output
    assert [x["body"] for x in read_log(instance_dir)] == ["one", "two"]


def test_worker_keeps_running_when_the_sender_is_misconfigured(app, config):
    config(NOTIFY_SENDER="nonsense")
    enqueue(None, "13800000000", "one")
    db.session.commit()
    worker = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert worker.exit_code == 0 and "notifications not sent" in worker.output


def test_a_row_locked_elsewhere_is_skipped(app, instance_dir):
    if not is_postgres(app):
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL only")
    first = enqueue(None, "13800000000", "locked")
    enqueue(None, "13900000000", "free")
    db.session.commit()
    with db.engine.connect() as other:
        transaction = other.begin()
        other.execute(text("SELECT id FROM notifications WHERE id = :id FOR UPDATE"),
                      {"id": first.id})
        assert deliver_due() == (1, 0)
        transaction.rollback()
    assert [x["body"] for x in read_log(instance_dir)] == ["free"]
    assert deliver_due() == (1, 0)
