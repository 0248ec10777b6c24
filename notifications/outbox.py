"""The notification outbox.

An operation calls enqueue() inside its own transaction, so a message exists exactly when the
change that caused it was committed. deliver_due() (the worker, `notifications send`) sends
what is due through the sender named by app.config["NOTIFY_SENDER"], one row per
transaction: a crash re-sends at most the message being sent (at-least-once delivery).

A failed attempt is retried after 1, 2, 4, 8 … minutes (at most 60); after
NOTIFY_MAX_ATTEMPTS failed attempts the row is "failed": it stays, visible on
/admin/notifications, until an administrator retries it.

Configuration:
  NOTIFY_SENDER          "log" (default) or "webhook", or any name added to SENDERS
  NOTIFY_WEBHOOK_URL     where the webhook sender POSTs (http or https)
  NOTIFY_WEBHOOK_TIMEOUT seconds (default 10)
  NOTIFY_MAX_ATTEMPTS    default 8
"""
import datetime as dt
import json
import os
import urllib.error
import urllib.parse
import urllib.request

from flask import current_app

from audit.operations import record
from extensions import db
from notifications.models import Notification
from workflows import clock
from workflows.errors import Conflict, NotFound

DEFAULT_MAX_ATTEMPTS = 8
BACKOFF_CAP_MINUTES = 60
ERROR_MAX = 1000


class SenderConfigError(RuntimeError):
    """The sender cannot work at all (unknown name, missing URL): no attempt is counted."""


# name -> callable(notification) that sends it or raises. Add one with @sender("name").
SENDERS = {}


def sender(name):
    def register(func):
        SENDERS[name] = func
        return func
    return register


def payload(notification):
    return {"id": notification.id, "channel": notification.channel,
            "recipient": notification.recipient, "body": notification.body,
            "loan_id": notification.loan_id}


@sender("log")
def log_sender(notification):
    """Append one JSON line to <instance_path>/notifications.log."""
    line = json.dumps({"at": clock.now().isoformat(), **payload(notification)},
                      ensure_ascii=False)
    path = os.path.join(current_app.instance_path, "notifications.log")
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


@sender("webhook")
def webhook_sender(notification):
    """POST the message as JSON to NOTIFY_WEBHOOK_URL; any non-2xx answer is a failure."""
    url = current_app.config.get("NOTIFY_WEBHOOK_URL")
    if not url or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise SenderConfigError("NOTIFY_WEBHOOK_URL must be an http(s) URL")
    request = urllib.request.Request(
        url, data=json.dumps(payload(notification), ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8"}, method="POST")
    timeout = current_app.config.get("NOTIFY_WEBHOOK_TIMEOUT", 10)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if not 200 <= response.status < 300:
            raise RuntimeError(f"HTTP {response.status}")


def current_sender():
    name = current_app.config.get("NOTIFY_SENDER") or "log"
    try:
        return SENDERS[name]
    except KeyError:
        raise SenderConfigError(f"unknown NOTIFY_SENDER {name!r}; known: "
                                f"{', '.join(sorted(SENDERS))}") from None


def enqueue(loan_id, recipient, body, channel="sms"):
    """Add a pending notification to the caller's transaction (flushed, not committed)."""
    if not recipient or not str(recipient).strip() or not body:
        raise ValueError("a notification needs a recipient and a body")
    notification = Notification(loan_id=loan_id, recipient=str(recipient).strip(), body=body,
                                channel=channel, status="pending", attempts=0,
                                next_attempt_at=clock.now(), created_at=clock.now())
    db.session.add(notification)
    db.session.flush()
    return notification


def backoff(attempts):
    """The wait after the `attempts`-th failed attempt: 1, 2, 4, 8 … minutes, at most 60."""
    return dt.timedelta(minutes=min(2 ** max(attempts - 1, 0), BACKOFF_CAP_MINUTES))


def _next_due_id():
    query = (db.select(Notification.id)
             .where(Notification.status == "pending",
                    Notification.next_attempt_at <= clock.now())
             .order_by(Notification.next_attempt_at, Notification.id).limit(1))
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return db.session.scalar(query)


def deliver_due(limit=100):
    """Send up to `limit` due notifications; returns (sent, failed), failed counting the
    attempts that failed in this run (whether they will be retried or have given up).
    Raises SenderConfigError, without counting an attempt, when the sender cannot work."""
    send = current_sender()
    max_attempts = current_app.config.get("NOTIFY_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)
    sent = failed = 0
    for _ in range(limit):
        notification_id = _next_due_id()  # locked until this row's commit on PostgreSQL
        if notification_id is None:
            break
        notification = db.session.get(Notification, notification_id)
        try:
            send(notification)
        except SenderConfigError:
            db.session.rollback()
            raise
        except Exception as exc:  # any failure of the channel counts as a failed attempt
            _failed(notification, exc, max_attempts)
            failed += 1
        else:
            notification.status, notification.sent_at = "sent", clock.now()
            notification.last_error = None
            sent += 1
        db.session.commit()
    return sent, failed


def _failed(notification, exc, max_attempts):
    notification.attempts += 1
    notification.last_error = (f"{type(exc).__name__}: {exc}")[:ERROR_MAX]
    if notification.attempts >= max_attempts:
        notification.status = "failed"
        record("notification.failed", case_id=notification.loan_id,
               data={"notification_id": notification.id, "channel": notification.channel,
                     "attempts": notification.attempts, "error": notification.last_error})
    else:
        notification.next_attempt_at = clock.now() + backoff(notification.attempts)


def retry(notification_id, actor):
    """Put a failed notification back in the queue, due now; commits. The attempts so far
    stay counted: if this attempt fails too, it is failed again at once."""
    notification = db.session.get(Notification, notification_id)
    if notification is None:
        raise NotFound(f"no notification {notification_id}", code="notification_missing")
    if notification.status != "failed":
        raise Conflict(f"notification {notification_id} is {notification.status}, not failed",
                       code="notification_not_failed")
    notification.status, notification.next_attempt_at = "pending", clock.now()
    record("notification.retried", actor=actor, case_id=notification.loan_id,
           data={"notification_id": notification.id, "attempts": notification.attempts,
                 "last_error": notification.last_error})
    db.session.commit()
    return notification
