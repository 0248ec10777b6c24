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
