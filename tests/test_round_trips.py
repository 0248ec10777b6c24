"""Round trips on the hot path (issue 12): a claim and a completion through the API cost a
fixed, small number of SQL statements and one commit each, whatever the database."""
from contextlib import contextmanager

from sqlalchemy import event

from extensions import db
from workflows.models import HumanTask

HANDOVER = {"documents": ["contract", "iou"], "purpose": "working capital",
            "repayment_source": "sales receipts", "risk_points": "single customer"}


@contextmanager
def counting(app):
    seen = {"statements": [], "commits": 0}

    def statement(_conn, _cursor, sql, *_args):
        seen["statements"].append(sql.split("\n")[0][:120])

    def commit(_conn):
        seen["commits"] += 1

    engine = db.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


def _claim_and_complete(app, headers, task_id):
    client = app.test_client()
    with counting(app) as claim:
        assert client.post(f"/api/v1/tasks/{task_id}/claim", headers=headers).status_code == 200
    with counting(app) as complete:
        response = client.post(f"/api/v1/tasks/{task_id}/complete", headers=headers,
                               json={"data": HANDOVER})
        assert response.status_code == 200, response.get_json()
    return claim, complete, response.get_json()


def test_claim_and_complete_cost_a_fixed_number_of_statements(app, new_loan, token_for):
    headers = token_for("am")
    first, second = new_loan("L-001"), new_loan("L-002")
    ids = {loan.id: db.session.scalar(db.select(HumanTask.id).where(
        HumanTask.case_id == loan.id, HumanTask.state == "ready")) for loan in (first, second)}
    _claim_and_complete(app, headers, ids[first.id])  # warms the per-process caches
    claim, complete, body = _claim_and_complete(app, headers, ids[second.id])

    print(f"claim: {len(claim['statements'])} statements, "
          f"completion: {len(complete['statements'])} statements")
    assert body["loan_no"] == "L-002" and body["state"] == "completed"
    assert body["claimed_by"] == "am"
    # claim: token and user, the guarded update returning the task, the audit events (one
    # insert: no chain lock nor head read since the chainer links them in the background)
    assert len(claim["statements"]) <= 3, claim["statements"]
    # completion: token and user, case lock, task with instance and its open siblings, two
    # updates, the new task (whose four-eyes exclusions the database's trigger writes), the
    # audit events (the calendar is memoized per process)
    assert len(complete["statements"]) <= 7, complete["statements"]
    assert not any(sql.startswith("INSERT INTO human_task_exclusions")
                   for sql in complete["statements"])
    for sql in claim["statements"] + complete["statements"]:
        assert "advisory" not in sql and "audit_chain" not in sql
    assert claim["commits"] == complete["commits"] == 1
    # No lazy load of the definition's XML or spec, nor of the form row, on the hot path.
    for sql in claim["statements"] + complete["statements"]:
        assert "process_definitions.bpmn_xml" not in sql
        assert not sql.startswith("SELECT form_definitions")


def test_firing_timers_costs_two_statements_per_timer(app, new_loan):
    """Each fired timer writes its instance and its new task; reading the batch, locking its
    cases and writing the audit events are per batch, not per timer."""
    import datetime as dt
    from tests.test_timers import deploy_probe
    from workflows import clock
    from workflows.service import start_process
    from workflows.timers import fire_due_timers
    deploy_probe()
    loans = [new_loan(f"L-T{i}") for i in range(6)]
    for loan in loans:
        start_process("reminder_probe", case_id=loan.id, data={"due_on": "2026-10-12"})
    db.session.commit()
    with counting(app) as fired, clock.frozen_at(
            dt.datetime(2026, 9, 29, 1, 1, tzinfo=dt.timezone.utc)):
        assert fire_due_timers() == len(loans)
    per_timer = [sql for sql in fired["statements"]
                 if sql.startswith("INSERT INTO human_tasks") or (
                     sql.startswith("UPDATE process_instances SET") and "state_json" in sql)]
    assert len(per_timer) == 2 * len(loans), fired["statements"]
    assert len(fired["statements"]) - len(per_timer) <= 7, fired["statements"]
    assert fired["commits"] == 1
