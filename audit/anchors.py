"""Anchors: the chain head (length, last event id, last hash) written outside the database.

The head is that of the whole sequence: the events chained in the row before migration 0013,
then the links of `audit_chain` (audit/chaining.py). `count` is their number, `last_id` the
event of the last link and `last_hash` the link's hash; before the first link, the last event
chained in the row and its hash. Events are linked (`chain_pending`) before every anchor.

Each anchor is one JSON line appended to the anchor file (config/env `AUDIT_ANCHOR_FILE`,
default `instance/audit_anchors.log`):

    {"count": 222, "last_hash": "…", "last_id": 222, "mac": "…", "time": "2026-…+00:00"}

`mac` is an HMAC-SHA256, with the anchor sub-key of the audit key, over the line's other fields
(sorted, compact JSON). A copy goes to the `audit_anchors` table, and, when
`AUDIT_ANCHOR_WEBHOOK` is set, the line is POSTed there as JSON in the background (a failure is
logged, never raised). `flask audit anchor` writes one on demand; the worker writes one when
the last is older than `AUDIT_ANCHOR_EVERY` seconds (default 3600, 0 turns it off).

Whoever can rewrite the database can delete the newest events and their links, leaving a
shorter chain that holds, but the anchor file still says how long the chain was and what its
last hash was.
"""
import datetime as dt
import json
import os
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from audit.chaining import chain_head, chain_pending
from audit.keys import mac, subkeys
from audit.models import AuditAnchor
from audit.operations import to_utc
from extensions import db

ANCHOR_FILE = "audit_anchors.log"
DEFAULT_EVERY = 3600
WEBHOOK_TIMEOUT = 5


def _setting(name, default=None):
    value = current_app.config.get(name)
    if value is None:
        value = os.environ.get(name)
    return default if value in (None, "") else value


def anchor_path():
    configured = _setting("AUDIT_ANCHOR_FILE")
    return Path(configured) if configured else Path(current_app.instance_path) / ANCHOR_FILE


@dataclass(frozen=True)
class Anchor:
    time: dt.datetime
    count: int
    last_id: int | None
    last_hash: str | None
    mac: str

    def fields(self):
        return {"time": to_utc(self.time).isoformat(), "count": self.count,
                "last_id": self.last_id, "last_hash": self.last_hash}

    def line(self):
        return json.dumps({**self.fields(), "mac": self.mac}, sort_keys=True,
                          separators=(",", ":"))


def _signed(fields, key):
    return mac(key, json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())


def _append_line(path, line):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())  # one write: whole lines, even with two writers
        os.fsync(fd)
    finally:
        os.close(fd)


def _post(url, body, logger):
    try:
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
            response.read(1024)
    except Exception as exc:  # noqa: BLE001 — the webhook never blocks the anchor
        logger.warning("audit anchor webhook %s failed: %s", url, exc)


def write_anchor(wait_for_webhook=False):
    """Link the queued events, then anchor the head: append to the anchor file (the
    authority), store a copy in `audit_anchors`, POST to the webhook if any. Returns the
    Anchor."""
    key = subkeys()["anchor"]
    chain_pending()
    count, last_id, last_hash = chain_head()
    moment = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    fields = {"time": moment.isoformat(), "count": count, "last_id": last_id,
              "last_hash": last_hash}
    anchor = Anchor(moment, count, last_id, last_hash, _signed(fields, key))
    _append_line(anchor_path(), anchor.line())
    db.session.add(AuditAnchor(at=moment, event_count=count, last_event_id=last_id,
                               last_hash=last_hash, mac=anchor.mac))
    db.session.commit()
    url = _setting("AUDIT_ANCHOR_WEBHOOK")
    if url:
        thread = threading.Thread(target=_post, daemon=True, name="audit-anchor-webhook",
                                  args=(url, anchor.line().encode(), current_app.logger))
        thread.start()
        if wait_for_webhook:
            thread.join(WEBHOOK_TIMEOUT + 1)
    return anchor


def _parse(text, key):
    """An Anchor from a line, or None when it is not a well-formed line with a valid MAC."""
    try:
        raw = json.loads(text)
        fields = {"time": raw["time"], "count": raw["count"], "last_id": raw["last_id"],
                  "last_hash": raw["last_hash"]}
        if not isinstance(fields["count"], int) or _signed(fields, key) != raw["mac"]:
            return None
        return Anchor(dt.datetime.fromisoformat(fields["time"]), fields["count"],
                      fields["last_id"], fields["last_hash"], raw["mac"])
    except (ValueError, KeyError, TypeError):
        return None


def read_file_anchors(key=None):
    """(valid anchors in file order, [line numbers that are garbled or fail their MAC])."""
    key = key or subkeys()["anchor"]
    path = anchor_path()
    if not path.exists():
        return [], []
    anchors, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            anchor = _parse(text, key)
            if anchor is None:
                bad.append(number)
            else:
                anchors.append(anchor)
    return anchors, bad


def read_table_anchors(key=None):
    """(valid anchors from `audit_anchors`, [ids of rows whose MAC does not hold])."""
    key = key or subkeys()["anchor"]
    anchors, bad = [], []
    for row in AuditAnchor.query.order_by(AuditAnchor.id):
        anchor = Anchor(to_utc(row.at), row.event_count, row.last_event_id, row.last_hash,
                        row.mac)
        if _signed(anchor.fields(), key) == row.mac:
            anchors.append(anchor)
        else:
            bad.append(row.id)
    return anchors, bad


def _last_anchor_time(path):
    """The time of the file's last anchor, reading only its end (the worker asks each poll)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
        return to_utc(dt.datetime.fromisoformat(json.loads(lines[-1])["time"]))
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def anchor_if_due():
    """Write an anchor when the last one in the file is older than AUDIT_ANCHOR_EVERY seconds
    (or there is none). Never raises: a failure is logged and retried at the next call."""
    try:
        every = float(_setting("AUDIT_ANCHOR_EVERY", DEFAULT_EVERY))
        if every <= 0:
            return None
        last = _last_anchor_time(anchor_path())
        if last is not None and \
                (dt.datetime.now(dt.timezone.utc) - last).total_seconds() < every:
            return None
        return write_anchor()
    except Exception:  # noqa: BLE001 — anchoring must never stop the worker
        db.session.rollback()
        current_app.logger.exception("audit anchor failed")
        return None
