"""Timers: evaluated when reached, indexed next_timer_at, fired by the sweep and the CLI."""
import datetime as dt
from pathlib import Path

from sqlalchemy import text

from extensions import db
from tests.conftest import ROOT, is_postgres
from workflows import clock
from workflows.definitions import deploy_paths
from workflows.models import HumanTask, ProcessInstance
from workflows.service import start_process
from workflows.timers import fire_due_timers

PROBE = Path(__file__).parent / "bpmn" / "reminder_probe.bpmn"
UTC = dt.timezone.utc


def deploy_probe():
    deploy_paths([PROBE], ROOT / "bpmn" / "forms")


def test_working_day_timer_fires_once_when_due(app):
    deploy_probe()
    # Due Monday 2026-10-12, after the National Day holiday (Oct 1-7) and a make-up
    # Saturday (Oct 10): 5 working days before is Sep 29, 09:00 Beijing = 01:00 UTC.
    instance = start_process("reminder_probe", data={"due_on": "2026-10-12"})
    db.session.commit()
    expected = dt.datetime(2026, 9, 29, 1, 0, tzinfo=UTC)
    instance = db.session.get(ProcessInstance, instance.id)
    assert instance.next_timer_at.replace(tzinfo=UTC) == expected
    assert HumanTask.query.count() == 0

    with clock.frozen_at(expected - dt.timedelta(minutes=1)):
        assert fire_due_timers() == 0
    with clock.frozen_at(expected + dt.timedelta(minutes=1)):
        assert fire_due_timers() == 1
        assert fire_due_timers() == 0
    task = HumanTask.query.one()
    assert (task.bpmn_id, task.lane) == ("remind", "back_office")
    assert db.session.get(ProcessInstance, instance.id).next_timer_at is None


def test_statutory_calendar_differs_from_weekdays():
    from calendars.workdays import add_working_days, is_working_day
    assert not is_working_day(dt.date(2026, 10, 1))   # National Day
    assert is_working_day(dt.date(2026, 2, 28))        # a Saturday make-up working day
    assert is_working_day(dt.date(2026, 10, 10))       # Saturday, made a working day
    assert add_working_days(dt.date(2026, 9, 30), 1) == dt.date(2026, 10, 8)
    # 5 working days before Monday Oct 12 (Oct 10, 9, 8, Sep 30, 29) is Sep 29, not Oct 5.
    assert add_working_days(dt.date(2026, 10, 12), -5) == dt.date(2026, 9, 29)


def test_unknown_year_fails_loudly():
    import pytest
    from calendars.workdays import CalendarUnknown, is_working_day
    with pytest.raises(CalendarUnknown):
        is_working_day(dt.date(2031, 5, 6))


def test_timers_cli_as_of(app):
    deploy_probe()
    start_process("reminder_probe", data={"due_on": "2026-06-15"})
    db.session.commit()
    runner = app.test_cli_runner()
    early = runner.invoke(args=["timers", "run", "--as-of", "2026-06-01T00:00:00+00:00"])
    assert early.exit_code == 0 and "0 timer(s) fired" in early.output
    late = runner.invoke(args=["timers", "run", "--as-of", "2026-06-14T00:00:00+00:00"])
    assert "1 timer(s) fired" in late.output
    worker = runner.invoke(args=["worker", "--once"])
    assert worker.exit_code == 0, worker.output


def test_timer_sweep_uses_the_index(app):
    if not is_postgres(app):
        plan = db.session.execute(text(
            "EXPLAIN QUERY PLAN SELECT id FROM process_instances "
            "WHERE status='running' AND next_timer_at <= '2026-01-01' "
            "ORDER BY next_timer_at")).all()
        assert any("ix_process_instances_timer_due" in str(row) for row in plan), plan


def test_worker_runs_the_daily_staging_once_a_day(app):
    from cases.models import DailyRun
    runner = app.test_cli_runner()
    app.config["DAILY_RUN_AT"] = "06:00"
    # 05:59 Beijing: too early.
    with clock.frozen_at(dt.datetime(2026, 3, 2, 21, 59, tzinfo=UTC)):
        runner.invoke(args=["worker", "--once"])
    assert DailyRun.query.count() == 0
    with clock.frozen_at(dt.datetime(2026, 3, 2, 22, 1, tzinfo=UTC)):
        first = runner.invoke(args=["worker", "--once"])
        second = runner.invoke(args=["worker", "--once"])
    assert "daily staging" in first.output and "daily staging" not in second.output
    assert [r.run_on for r in DailyRun.query] == [dt.date(2026, 3, 3)]


def test_a_failing_sweep_does_not_stop_the_worker(app, monkeypatch):
    import cli
    calls = []

    def broken():
        calls.append(1)
        raise RuntimeError("boom")
    monkeypatch.setattr(cli, "_sweep", broken)
    monkeypatch.setattr(cli.time, "sleep", lambda _s: (_ for _ in ()).throw(KeyboardInterrupt))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["worker"])
    # The first sweep failed, was logged, and the worker went on to sleep (interrupted here,
    # which click reports as an abort) instead of dying with the sweep's error.
    assert calls == [1] and not isinstance(result.exception, RuntimeError)
    assert runner.invoke(args=["worker", "--once"]).exit_code != 0


def test_two_sweeps_at_once_fire_each_timer_once(app, tmp_path):
    """Two processes sweeping together (two workers, or `timers run` beside the worker): on
    PostgreSQL SKIP LOCKED splits the work; on SQLite the second waits for the write lock and
    looks again, so neither fires a timer twice nor fails on the other's change."""
    import os
    import subprocess
    import sys

    from sqlalchemy import func, select

    from audit.models import AuditEvent
    from tests.conftest import T0
    deploy_probe()
    with clock.frozen_at(T0):  # started in March; the timers (late September) are due now
        ids = [start_process("reminder_probe", data={"due_on": "2026-10-12"}).id
               for _ in range(30)]
    db.session.commit()
    env = dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               AUDIT_KEY=app.config["AUDIT_KEY"], AUDIT_ANCHOR_FILE=str(tmp_path / "a.log"))
    flask = [str(Path(sys.executable).parent / "flask"), "--app", "app", "timers", "run"]
    runs = [subprocess.Popen(flask, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sum(int(out.split()[0]) for out, _err in outputs) == len(ids)
    db.session.rollback()
    fired = dict(db.session.execute(
        select(AuditEvent.instance_id, func.count()).where(AuditEvent.action == "timer.fired")
        .group_by(AuditEvent.instance_id)).all())
    assert fired == {i: 1 for i in ids}
    assert HumanTask.query.count() == len(ids)


def test_a_case_held_by_another_writer_is_left_to_the_next_sweep(app, new_loan):
    """PostgreSQL: the sweep locks its batch's cases with SKIP LOCKED; a case another
    transaction holds (a repayment, say) is not waited for and its timer fires next time."""
    import pytest
    if not is_postgres(app):
        pytest.skip("SQLite: the sweep holds the database's write lock")
    deploy_probe()
    busy, free = new_loan("L-BUSY"), new_loan("L-FREE")
    for loan in (busy, free):
        start_process("reminder_probe", case_id=loan.id, data={"due_on": "2026-10-12"})
    db.session.commit()
    late = dt.datetime(2026, 9, 29, 1, 1, tzinfo=UTC)
    with db.engine.connect() as other:
        other.execute(text("SELECT id FROM loans WHERE id = :id FOR UPDATE"), {"id": busy.id})
        with clock.frozen_at(late):
            assert fire_due_timers() == 1
        other.rollback()
    assert {t.case_id for t in HumanTask.query.filter_by(bpmn_id="remind")} == {free.id}
    with clock.frozen_at(late):
        assert fire_due_timers() == 1
    assert {t.case_id for t in HumanTask.query.filter_by(bpmn_id="remind")} == {busy.id, free.id}
