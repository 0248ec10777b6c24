"""Scale-out on PostgreSQL (issue 12): two web servers (gunicorn, as `make serve` runs them) and
two worker processes share one database; every completion, timer and daily run happens exactly
once. PostgreSQL only: SQLite is the single-machine database."""
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from audit.models import AuditEvent
from extensions import db
from tests.conftest import ROOT, T0, is_postgres
from tests.test_timers import deploy_probe
from workflows import clock
from workflows.models import HumanTask, ProcessInstance
from workflows.service import start_process

BIN = Path(sys.executable).parent
HANDOVER = {"documents": ["contract", "iou"], "purpose": "working capital",
            "repayment_source": "sales receipts", "risk_points": "single customer"}


@pytest.fixture
def postgres_only(app):
    if not is_postgres(app):
        pytest.skip("scale-out is for PostgreSQL")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment(app, tmp_path):
    return dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
                SECRET_KEY="scale-out-test", AUDIT_KEY=app.config["AUDIT_KEY"],
                AUDIT_ANCHOR_FILE=str(tmp_path / "anchors.log"), RATELIMIT_ENABLED="0",
                WEB_WORKERS="2", WEB_THREADS="4", ACCESS_LOG="/dev/null")


def _wait_listening(port, process, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"web server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("web server did not start")


def _post(port, path, headers, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, json.dumps(body) if body is not None else None,
                     {"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _run_together(commands, env):
    """Start every command at once; wait for all; [(returncode, stdout, stderr)]."""
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for command in commands]
    return [(p.wait(timeout=300), p.stdout.read().decode(), p.stderr.read().decode())
            for p in processes]


def test_two_web_servers_and_two_workers_do_everything_exactly_once(
        app, postgres_only, deployed, users, new_loan, token_for, tmp_path):
    clock.set_now(None)  # the servers and workers live in real time, so does the test
    env = _environment(app, tmp_path)
    flask = [str(BIN / "flask"), "--app", "app"]
    # Work for both: handover tasks to complete, probe timers already due, overdue loans.
    # Half of them overdue on the day of the daily run (due 2026-03-05, run as of 03-10).
    loans = [new_loan(f"S-{i:03d}", **({"maturity_on": "2026-03-05"} if i % 2 else {}))
             for i in range(24)]
    deploy_probe()
    with clock.frozen_at(T0):  # started in March: their timers (late September) are due now
        timers = [start_process("reminder_probe", data={"due_on": "2026-10-12"}).id
                  for _ in range(40)]
    db.session.commit()
    headers = token_for("am")
    task_ids = db.session.scalars(select(HumanTask.id).where(
        HumanTask.bpmn_id == "handover_file", HumanTask.state == "ready")).all()
    assert len(task_ids) == len(loans)

    ports = [_free_port(), _free_port()]
    servers = [subprocess.Popen([str(BIN / "gunicorn"), "--config", "gunicorn.conf.py"],
                                cwd=ROOT, env=dict(env, BIND=f"127.0.0.1:{port}"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for port in ports]
    try:
        for port, server in zip(ports, servers):
            _wait_listening(port, server)

        # Completions: each task claimed and completed through one server while a second
        # client races for it through the other; exactly one of them completes it.
        def race(i_task):
            i, task_id = i_task
            mine, other = ports[i % 2], ports[(i + 1) % 2]
            with ThreadPoolExecutor(2) as pool:
                first = pool.submit(_post, mine, f"/api/v1/tasks/{task_id}/complete", headers,
                                    {"data": HANDOVER})
                second = pool.submit(_post, other, f"/api/v1/tasks/{task_id}/complete",
                                     headers, {"data": HANDOVER})
                return first.result()[0], second.result()[0]

        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(race, enumerate(task_ids)))
        for statuses in outcomes:
            assert sorted(statuses) == [200, 409], statuses

        # Timers: two workers sweep at the same moment.
        results = _run_together([flask + ["timers", "run"], flask + ["timers", "run"]], env)
        assert all(code == 0 for code, _out, _err in results), results
        fired = sum(int(out.split()[0]) for _code, out, _err in results)
        assert fired == len(timers), results

        # The daily run, started by two machines at once for the same day.
        results = _run_together([flask + ["daily", "--as-of", "2026-03-10"]] * 2, env)
        assert all(code == 0 for code, _out, _err in results), results
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)

    db.session.rollback()
    # Every handover task completed once, and its next task created once.
    assert db.session.scalar(select(func.count()).select_from(HumanTask).where(
        HumanTask.bpmn_id == "handover_file", HumanTask.state == "completed")) == len(loans)
    assert db.session.scalar(select(func.count()).select_from(HumanTask).where(
        HumanTask.bpmn_id == "check_file")) == len(loans)
    completed = db.session.scalars(select(AuditEvent.task_id).where(
        AuditEvent.action == "task.completed")).all()
    assert len(completed) == len(set(completed)) == len(loans)
    # Every timer fired once.
    for instance_id in timers:
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "timer.fired", AuditEvent.instance_id == instance_id)) == 1
        assert db.session.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.instance_id == instance_id)) == 1
        assert db.session.get(ProcessInstance, instance_id).next_timer_at is None
    # The daily run: each loan's stage change recorded once.
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "daily.staging")) >= 1
    stage_events = db.session.scalars(select(AuditEvent.case_id).where(
        AuditEvent.action == "case.stage_changed")).all()
    assert sorted(stage_events) == sorted(loan.id for loan in loans[1::2])
    # The audit chain written by five processes verifies.
    from audit.operations import verify_chain
    checked, first_bad = verify_chain()
    assert first_bad is None and checked == db.session.scalar(
        select(func.count()).select_from(AuditEvent))
