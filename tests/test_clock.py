"""The application clock: a clock moved for one thread (a replay in one request) leaves the
others' "now" alone, and wins over the process-wide frozen clock in its own thread."""
import datetime as dt
import threading

from workflows import clock

UTC = dt.timezone.utc


def test_local_clock_moves_only_the_current_thread():
    moved = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    frozen = dt.datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    seen = {}
    inside, release = threading.Event(), threading.Event()

    def other():
        inside.wait(5)
        seen["other"] = clock.now()
        release.set()

    with clock.frozen_at(frozen):
        thread = threading.Thread(target=other)
        thread.start()
        with clock.local_at(moved.replace(tzinfo=None)):
            inside.set()
            release.wait(5)
            seen["mine"] = clock.now()
        thread.join()
        seen["after"] = clock.now()
    assert seen == {"other": frozen, "mine": moved, "after": frozen}


def test_the_lenders_day_and_time_zone_come_from_the_clock():
    """Dates turn at midnight in Beijing: clock.today() and clock.BEIJING, defined once. A
    naive local now, the server's date or a UTC+8 built by hand would drift from them."""
    import re
    import subprocess
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=root, capture_output=True,
                           text=True, check=True).stdout.split()
    banned = re.compile(r"timedelta\(hours=8\)|date\.today\(\)|datetime\.now\(\)|\.utcnow\(\)")
    found = [f"{name}:{n}" for name in files
             if not name.startswith(("tests/", "migrations/")) and name != "workflows/clock.py"
             for n, line in enumerate((root / name).read_text().splitlines(), 1)
             if banned.search(line)]
    assert found == []


def test_today_is_the_day_in_beijing():
    with clock.frozen_at(dt.datetime(2026, 3, 2, 15, 59, tzinfo=UTC)):
        assert clock.today() == dt.date(2026, 3, 2)  # 23:59 in Beijing
    with clock.frozen_at(dt.datetime(2026, 3, 2, 16, 0, tzinfo=UTC)):
        assert clock.today() == dt.date(2026, 3, 3)  # midnight in Beijing


def test_as_of_without_an_offset_is_beijing_time(app, monkeypatch):
    """`timers run` and `tasks overdue --as-of 2026-12-03T09:30` act at 09:30 in Beijing, as
    a bare time means everywhere else (a repayment's paid_at); a time with an offset keeps
    its instant; anything else is refused with the format to use, and nothing runs."""
    import cli
    import management.views
    seen = []
    monkeypatch.setattr(cli, "fire_due_timers", lambda: seen.append(clock.now()) or 0)
    monkeypatch.setattr(management.views, "check_overdue_tasks",
                        lambda: seen.append(clock.now()) or 0)
    runner = app.test_cli_runner()
    for command in (["timers", "run"], ["tasks", "overdue"]):
        for text in ("2026-12-03T09:30", "2026-12-03T01:30:00+00:00",
                     "2026-12-02T15:30:00-10:00"):
            result = runner.invoke(args=command + ["--as-of", text])
            assert result.exit_code == 0, result.output
        assert seen == [dt.datetime(2026, 12, 3, 1, 30, tzinfo=UTC)] * 3
        assert all(moment.utcoffset() == dt.timedelta(0) for moment in seen)
        seen.clear()
        refused = runner.invoke(args=command + ["--as-of", "tomorrow 9am"])
        assert refused.exit_code == 2 and "'tomorrow 9am' is not a date-time" in refused.output
        assert seen == []
