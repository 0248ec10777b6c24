"""Timers fired per second, by one sweep and by two at once (issue 12).

    python -m bench.timers [--timers N]

Uses DATABASE_URL when it is set (an empty database, e.g. the one scripts/with-postgres.sh
creates), else a fresh SQLite file. Migrates, deploys bpmn/ and the test probe
(tests/bpmn/reminder_probe.bpmn: a working-day timer, then a user task), starts N instances
whose timers are due, then fires them with `flask timers run` in one process, and again (a new
set) with two processes started together. Prints timers per second and checks that each timer
fired exactly once. Figures only, no assertions on speed.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.timers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timers", type=int, default=1000, metavar="N")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(tempfile.mkdtemp()) / 'timers.db'}"
    sys.path.insert(0, str(ROOT))
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from app import create_app
    from audit.models import AuditEvent
    from extensions import db
    from tests.conftest import T0
    from workflows import clock
    from workflows.definitions import deploy_paths
    from workflows.service import start_process

    app = create_app()
    database = app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0]
    flask = [str(Path(sys.executable).parent / "flask"), "--app", "app", "timers", "run"]
    env = dict(os.environ, AUDIT_KEY=app.config.get("AUDIT_KEY") or "bench-audit-key-0123456789",
               AUDIT_ANCHOR_FILE=str(Path(tempfile.mkdtemp()) / "anchors.log"))
    app.config["AUDIT_KEY"] = env["AUDIT_KEY"]
    with app.app_context():
        upgrade()
        deploy_paths(sorted((ROOT / "bpmn").glob("*.bpmn")) + [ROOT / "tests" / "bpmn" /
                     "reminder_probe.bpmn"], ROOT / "bpmn" / "forms")

        def due_timers(n):
            with clock.frozen_at(T0):  # started in March; the timers (September) are due now
                ids = [start_process("reminder_probe", data={"due_on": "2026-10-12"}).id
                       for _ in range(n)]
            db.session.commit()
            return ids

        for label, processes in (("one sweep", 1), ("two sweeps at once", 2)):
            ids = due_timers(args.timers)
            start = time.perf_counter()
            running = [subprocess.Popen(flask, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE) for _ in range(processes)]
            outputs = [p.communicate(timeout=3600) for p in running]
            elapsed = time.perf_counter() - start
            if any(p.returncode for p in running):
                raise SystemExit(outputs[0][1].decode()[-2000:])
            fired = sum(int(out.split()[0]) for out, _err in outputs)
            db.session.rollback()
            per_instance = db.session.execute(
                select(AuditEvent.instance_id, func.count()).where(
                    AuditEvent.action == "timer.fired", AuditEvent.instance_id.in_(ids))
                .group_by(AuditEvent.instance_id)).all()
            once = len(per_instance) == len(ids) and all(n == 1 for _i, n in per_instance)
            print(f"{database}, {label}: {fired} timers in {elapsed:.1f} s = "
                  f"{fired / elapsed:.0f}/s (process start included); exactly once: {once}",
                  flush=True)


if __name__ == "__main__":
    main()
