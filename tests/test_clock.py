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
