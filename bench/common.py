"""What the issue-12 benchmarks share: the database, the app, figures as rows, gunicorn.

Every benchmark module has `run(scale)` (scale "quick" or "full") returning a list of `Row`
and printing them as it goes; `python -m bench.run` calls them all on SQLite and PostgreSQL
and prints the summary table with the targets.
"""
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
AUDIT_KEY = "bench-audit-key-0123456789abcdef"
PASSWORD = "bench-password-1"
HANDOVER = {"documents": ["contract", "iou"], "purpose": "working capital",
            "repayment_source": "sales receipts", "risk_points": "single customer"}


@dataclass
class Row:
    """One figure: `target` is like "≥ 200" or "≤ 2.5" (or "" when the issue sets none)."""
    label: str
    value: float
    unit: str
    target: str = ""
    note: str = ""

    @property
    def met(self):
        """True/False against the target ("≥ 200", ">= 200", "≤ 50", "<= 50"); None without."""
        if not self.target:
            return None
        sign, bound = self.target.replace(">=", "≥").replace("<=", "≤").split()
        bound = float(bound.replace(",", ""))
        return self.value >= bound if sign == "≥" else self.value <= bound

    def format(self):
        verdict = {None: "", True: "met", False: "NOT met"}[self.met]
        target = f"target {self.target}" if self.target else ""
        return (f"  {self.label:<58} {self.value:>10,.1f} {self.unit:<10} {target:<16} "
                f"{verdict}{'  (' + self.note + ')' if self.note else ''}")


def show(row):
    print(row.format(), flush=True)
    return row


def median(values):
    return statistics.median(values)


def write_rows(rows, path):
    rows = [r if isinstance(r, Row) else Row(r[0], r[1], r[2], r[3] or "" if len(r) > 3 else "")
            for r in rows]
    Path(path).write_text(json.dumps([asdict(r) for r in rows], ensure_ascii=False))


def read_rows(path):
    return [Row(**r) for r in json.loads(Path(path).read_text())]


def database_url():
    """DATABASE_URL when set (an empty database from scripts/with-postgres.sh), else a new
    SQLite file; exported so that subprocesses (gunicorn, flask) use the same one."""
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    return os.environ["DATABASE_URL"]


def database_name():
    return "PostgreSQL" if database_url().startswith("postgresql") else "SQLite"


# Set by bench.run when DATABASE_URL names a copy of a database it migrated and deployed
# bpmn/ to once for the whole run (bench/run.py: template), so each bench skips both.
PREPARED = "BENCH_DATABASE_PREPARED"


def prepare_database():
    """Inside an app context: every migration from empty, then bpmn/ deployed; nothing when
    bench.run handed over a copy of a database where it did that once (PREPARED)."""
    if os.environ.get(PREPARED) == "1":
        return
    from flask_migrate import upgrade

    from workflows.definitions import deploy_paths
    upgrade()
    deploy_paths(sorted((ROOT / "bpmn").glob("*.bpmn")), ROOT / "bpmn" / "forms")


def make_app():
    """The app on the bench database, migrated, with bpmn/ deployed; returns the app."""
    database_url()
    sys.path.insert(0, str(ROOT))
    from app import create_app
    os.environ.setdefault("AUDIT_KEY", AUDIT_KEY)
    os.environ.setdefault("AUDIT_ANCHOR_FILE", str(Path(tempfile.mkdtemp()) / "anchors.log"))
    app = create_app({"PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000", "RATELIMIT_ENABLED": False,
                      "AUDIT_KEY": os.environ["AUDIT_KEY"]})
    with app.app_context():
        prepare_database()
    return app


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """`make serve`'s server (gunicorn.conf.py) on a free port, on the bench database."""

    def __init__(self, workers, threads):
        self.port, self.workers = free_port(), workers
        env = dict(os.environ, BIND=f"127.0.0.1:{self.port}", WEB_WORKERS=str(workers),
                   WEB_THREADS=str(threads), ACCESS_LOG="/dev/null", RATELIMIT_ENABLED="0",
                   SECRET_KEY="bench-secret", WEB_MAX_REQUESTS="0")
        # Its log goes to a file: a pipe nobody reads fills up at full scale and blocks the
        # server in a write, so that it never stops.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen([str(BIN / "gunicorn"), "--config", "gunicorn.conf.py"],
                                        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                        stderr=self.log)

    def __enter__(self):
        """Once the port answers; `ready()` waits for every worker."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited: {self._log_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return ("127.0.0.1", self.port)
            except OSError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not start")

    def ready(self):
        """Wait until every worker has loaded the app (gunicorn.conf.py logs it). The master
        answers on the port before that: a round started earlier shares the machine with the
        workers still booting (about a second of CPU each)."""
        deadline = time.monotonic() + 120
        while self._log_text().count("Worker ready") < self.workers:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn workers did not start: {self._log_text()[-2000:]}")
            time.sleep(0.1)

    def _log_text(self):
        # pread: the server writes through the same open file, so moving its offset (seek)
        # would make the server overwrite what it wrote.
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def __exit__(self, *_exc):
        # Quick shutdown (the figures are taken): SIGTERM's graceful one waits on the
        # gthread workers' one-second poll.
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def run_clients(address, items, send, clients):
    """`clients` threads, each on its own keep-alive connection to `address`, take the next
    item from one shared queue and call send(conn, item) until none is left; the seconds
    until the last one is done. Sharing the queue, a client whose connection landed on a
    less busy server worker does more, as a person at a desk would: the round ends when the
    work is done, not when the unluckiest client's fixed share is (with fixed shares the
    last seconds ran on one worker while the others idled). A client's exception ends the
    bench with it."""
    errors, queue = [], iter(items)
    lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection(*address, timeout=120)
        try:
            while not errors:
                with lock:
                    item = next(queue, _DONE)
                if item is _DONE:
                    return
                send(conn, item)
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{len(errors)} client(s) failed, e.g. {errors[0]}")
    return elapsed


_DONE = object()


def post(conn, path, headers, body=None, expect=200):
    conn.request("POST", path, json.dumps(body) if body is not None else None,
                 {"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    data = response.read()
    if response.status != expect:
        raise SystemExit(f"{path}: {response.status} {data[:300]!r}")
    return data


def scale_arg(argv=None):
    """`--quick` or BENCH_SCALE=quick → "quick", else "full"."""
    argv = sys.argv[1:] if argv is None else argv
    return "quick" if "--quick" in argv or os.environ.get("BENCH_SCALE") == "quick" \
        else "full"
