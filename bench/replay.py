"""Replay before deploy (issue 15 item 5): cases replayed per second.

    python -m bench.replay [--quick]

Uses DATABASE_URL when it is set (an empty database), else a fresh SQLite file. Registers a
book of loans (bench.dataset), runs the daily staging so that the overdue ones start
collection, completes each first phone call and, a month and a half later, stages again and
fires the timers (the calls' retries re-read DPD, the monthly notices; loans overdue since
start collection too): the collection cases have a recorded history of a start, maybe a
completed step and a sweep of timers. Then replays the running ones (at most 500, as the studio
does) on bpmn/collection.bpmn as it is (every case identical) and with the litigation threshold
lowered to 40 days (the cases whose litigation check saw 41 to 90 days diverge), and prints
cases per second (the draft's parse and check included, once per run).
"""
import datetime as dt
import time

from bench.common import ROOT, Row, scale_arg, show
from workflows.clock import BEIJING

SIZES = {"quick": 2000, "full": 10000}  # loans; about 3 % are overdue (collection cases)
THRESHOLD = "<bpmn:conditionExpression>dpd &gt; 90</bpmn:conditionExpression>"


def _at(day, hour=10):
    return dt.datetime.combine(day, dt.time(hour), BEIJING).astimezone(dt.timezone.utc)


def build_cases(n_loans):
    """Collection cases with a history; their count."""
    from accounts.operations import create_user
    from bench.dataset import build_loans
    from cases.staging import run_daily
    from extensions import db
    from workflows import clock
    from workflows.models import HumanTask
    from workflows.tasks import complete_task
    from workflows.timers import fire_due_timers
    day = dt.date(2026, 5, 8)
    with clock.frozen_at(_at(day)):
        build_loans(n_loans, as_of=day)
        run_daily(day)
        collector = create_user("bench_collector", "bench-password-1", ["collector"])
        db.session.commit()
        ids = db.session.scalars(db.select(HumanTask.id).where(
            HumanTask.bpmn_id == "phone_collection", HumanTask.state == "ready")).all()
        for task_id in ids:
            complete_task(task_id, collector, data={
                "number_called": "13800138000", "answered_by": "borrower",
                "collection_result": "reached", "next_step": "continue"})
    later = day + dt.timedelta(days=45)
    with clock.frozen_at(_at(later)):
        run_daily(later)
        fire_due_timers()
    return len(ids)


def timed(xml, forms):
    from workflows import replay
    start = time.perf_counter()
    draft = replay.load_draft(xml, forms, "collection.bpmn")
    instances, more = replay.select_instances(draft.process_keys)
    report = replay.replay(draft, instances, more)
    return report, time.perf_counter() - start


def run(scale="full"):
    from bench.common import make_app
    from workflows.validation import load_forms
    app = make_app()
    rows = []
    with app.app_context():
        started = time.perf_counter()
        cases = build_cases(SIZES[scale])
        print(f"  {cases} collection cases with a history in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        xml = (ROOT / "bpmn" / "collection.bpmn").read_text(encoding="utf-8")
        forms = load_forms(ROOT / "bpmn" / "forms")
        for label, diagram, expected in (
                ("unchanged diagram", xml, "identical"),
                ("litigation from 40 days", xml.replace(THRESHOLD, THRESHOLD.replace(
                    "90", "40")), "diverges")):
            report, seconds = timed(diagram, forms)
            note = (f"{report['total']} cases: {report['identical']} identical, "
                    f"{report['diverges']} diverge, {report['fails']} fail")
            if expected == "identical" and report["identical"] != report["total"]:
                note += " — EXPECTED ALL IDENTICAL"
            rows.append(show(Row(f"cases replayed per second, {label}",
                                 report["total"] / seconds, "/s", "", note)))
    return rows


if __name__ == "__main__":
    run(scale_arg())
