"""Timers fired per second, by one sweep and by two at once (issue 12).

    python -m bench.timers [--quick]

Uses DATABASE_URL when it is set (an empty database, e.g. the one scripts/with-postgres.sh
creates), else a fresh SQLite file. Migrates, deploys bpmn/ and the test probe
(tests/bpmn/reminder_probe.bpmn: a working-day timer, then a user task), starts instances
whose timers are due, then fires them with `flask timers run` in one process, and again (a new
set) with two processes started together; 3 rounds of each, alternated. Prints timers per
second over the firing loops (the longest of the processes'; a worker starts once and runs for
days), and with the process start included, and checks that each timer fired exactly once.
"""
import subprocess
import time

from bench.common import BIN, ROOT, Row, make_app, median, scale_arg, show

SIZES = {"quick": 300, "full": 2000}


def due_timers(n):
    """n new instances waiting on a due timer, started by the bulk path (the same rows as n
    start_process calls, tests/test_bulk_intake.py) in one transaction; their ids."""
    from extensions import db
    from tests.conftest import T0
    from workflows import clock
    from workflows.service import start_processes
    with clock.frozen_at(T0):  # started in March; the timers (September) are due now
        ids = start_processes("reminder_probe",
                              [{"data": {"due_on": "2026-10-12"}} for _ in range(n)])
    db.session.commit()
    return ids


def fire(processes, ids):
    """Run `flask timers run` in `processes` processes at once: (timers/s, exactly once)."""
    from sqlalchemy import func, select

    from audit.models import AuditEvent
    from extensions import db
    command = [str(BIN / "flask"), "--app", "app", "timers", "run"]
    start = time.perf_counter()
    running = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE) for _ in range(processes)]
    outputs = [p.communicate(timeout=3600) for p in running]
    elapsed = time.perf_counter() - start
    if any(p.returncode for p in running):
        raise SystemExit(outputs[0][1].decode()[-2000:])
    # "N timer(s) fired in S s": the firing loop's own time, without the process start
    # (a worker starts once and runs for days).
    fired = sum(int(out.split()[0]) for out, _err in outputs)
    firing = max(float(out.split()[-2]) for out, _err in outputs)
    db.session.rollback()
    per_instance = db.session.execute(
        select(AuditEvent.instance_id, func.count()).where(
            AuditEvent.action == "timer.fired", AuditEvent.instance_id.in_(ids))
        .group_by(AuditEvent.instance_id)).all()
    once = len(per_instance) == len(ids) and all(n == 1 for _i, n in per_instance)
    return fired / firing, fired / elapsed, once


def run(scale="full"):
    from workflows.definitions import deploy_paths
    n = SIZES[scale]
    app = make_app()
    rates, with_start = {1: [], 2: []}, {1: [], 2: []}
    every_once = True
    with app.app_context():
        deploy_paths([ROOT / "tests" / "bpmn" / "reminder_probe.bpmn"], ROOT / "bpmn" / "forms")
        for r in range(3):
            for processes in (1, 2):
                rate, started, once = fire(processes, due_timers(n))
                rates[processes].append(rate)
                with_start[processes].append(started)
                every_once &= once
                print(f"  round {r + 1}, {processes} worker(s): {n} timers, {rate:.0f}/s, "
                      f"exactly once: {once}", flush=True)
    note = f"median of 3 alternated rounds of {n}; exactly once: {every_once}"
    return [show(Row("timers fired per second, one worker", median(rates[1]), "/s", "",
                     note)),
            show(Row("timers fired per second, two workers", median(rates[2]), "/s", "≥ 500",
                     note)),
            show(Row("… two workers, process start included", median(with_start[2]), "/s")),
            show(Row("timers fired exactly once", float(every_once), "yes=1", "≥ 1"))]


if __name__ == "__main__":
    run(scale_arg())
