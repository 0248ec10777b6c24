"""Bulk paths (issue 12): the batched import registers exactly what registering the loans one
by one did (the code before batching, kept here as the reference), all or nothing on a bad row,
each loan once when two imports overlap, and the daily run starts one collection per newly
overdue loan in batches."""
import datetime as dt
import json
import re
import threading
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

import bulk as bulk_insert
from audit.models import AuditEvent
from audit.operations import record
from cases import operations
from cases.intake import parse_flat
from cases.models import Borrower, Loan
from cases.operations import import_loans
from cases.staging import run_daily
from extensions import db
from ledger.book import ZERO, charge, overdue_amount
from ledger.models import Charge, Installment
from tests.conftest import is_postgres
from tests.test_round_trips import counting
from workflows.definitions import latest_definition
from workflows.models import HumanTask, HumanTaskExclusion, ProcessDefinition, ProcessInstance
from workflows.service import start_process
from workflows.start_template import start_template

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def reference_add_loan(intake, actor):
    """add_loan as it was before the bulk paths: ORM rows flushed one by one, the schedule
    charged through ledger.book.charge, the handover started by start_process."""
    loan = operations._new_loan(intake)
    installments, loan.installments = loan.installments, []
    db.session.add(loan)
    db.session.flush()
    loan.installments = [Installment(seq=i.seq, due_on=i.due_on, principal_due=ZERO,
                                     interest_due=ZERO) for i in installments]
    db.session.flush()
    for inst, item in zip(loan.installments, intake.canonical["schedule"]):
        for kind in ("principal", "interest"):
            if Decimal(item[kind]):
                charge(inst, kind, "schedule", Decimal(item[kind]))
    record("case.created", actor=actor, case_id=loan.id, data=intake.canonical)
    start_process("handover", case_id=loan.id, actor=actor, data={
        "loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
        "account_manager": intake.manager.username,
        "maturity_on": loan.maturity_on.isoformat()})
    return loan


def row(no, principal="500000.00", schedule="", kind="person", manager="am"):
    return {"loan_no": no, "borrower_name": "杭州明远贸易有限公司" if kind == "company" else "张伟",
            "borrower_kind": kind, "principal": principal, "interest_rate": "0.0435",
            "disbursed_on": "2026-03-02", "maturity_on": "2026-09-02",
            "account_manager": manager, "borrower_phone": "13800000000", "schedule": schedule}


SCHEDULES = ["", "2026-06-02:200000:5000;2026-09-02:300000:5000",
             "2026-04-02:100000:0;2026-06-02:100000:1200;2026-09-02:300000"]
# A row: a valid loan (index into a small pool of numbers, a variant), or a bad one.
ROWS = st.one_of(
    st.tuples(st.just("good"), st.integers(0, 5), st.sampled_from(SCHEDULES),
              st.sampled_from(["person", "company"]), st.sampled_from(["am", "am2"]),
              st.sampled_from(["500000.00", "500000"])),
    st.tuples(st.just("bad"), st.integers(0, 5), st.sampled_from(["abc", "-1", ""]),
              st.just(None), st.just(None), st.just(None)))


def flat_rows(spec, prefix):
    rows = []
    for line, (what, n, a, kind, manager, principal) in enumerate(spec, start=2):
        if what == "good":
            rows.append((line, row(f"{prefix}{n}", principal, a, kind, manager)))
        else:
            rows.append((line, row(f"{prefix}{n}", a)))
    return rows


def reference_import(rows, actor):
    """One at a time, in the order of the file, as the import did before batching."""
    registered, imported, unchanged, errors = {}, [], [], []
    for line, flat in rows:
        try:
            intake = parse_flat(flat)
        except Exception:  # noqa: BLE001 — any bad row
            errors.append(line)
            continue
        if intake.loan_no in registered:
            (unchanged if registered[intake.loan_no] == intake.canonical else errors).append(line)
            continue
        registered[intake.loan_no] = intake.canonical
        reference_add_loan(intake, actor)
        imported.append(line)
    db.session.commit()
    return imported, unchanged, errors


def _ids(text, seen):
    return UUID.sub(lambda m: seen.setdefault(m.group(), f"uuid{len(seen)}"), text)


def snapshot(prefix):
    """Everything registered for the loans numbered prefix…, with ids and the prefix left out."""
    out = {}
    loans = db.session.scalars(select(Loan).where(Loan.loan_no.like(prefix + "%"))
                               .order_by(Loan.loan_no)).all()
    for loan in loans:
        key = loan.loan_no[len(prefix):]
        plain = lambda value: json.loads(json.dumps(value, default=str).replace(prefix, "#"))  # noqa: E731
        instances = db.session.scalars(select(ProcessInstance).where(
            ProcessInstance.case_id == loan.id).order_by(ProcessInstance.id)).all()
        seen, states = {}, []
        for instance in instances:
            # (last_state_change is the engine's wall-clock time of each task: left out)
            state = json.loads(_ids(instance.state_json.replace(prefix, "#"), seen),
                               object_hook=lambda d: {k: v for k, v in d.items()
                                                      if k != "last_state_change"})
            # (lock_version is left out: a batch writes an instance once, where the single
            # start inserted it and then saved it, so it counts one write less)
            states.append((instance.definition_id, instance.status, instance.business_key,
                           str(instance.next_timer_at), state))
        numbers = {i.id: n for n, i in enumerate(instances)}
        tasks = db.session.scalars(select(HumanTask).where(HumanTask.case_id == loan.id)
                                   .order_by(HumanTask.id)).all()
        task_numbers = {t.id: n for n, t in enumerate(tasks)}
        seq = {i.id: i.seq for i in loan.installments}
        out[key] = {
            "loan": plain({c: getattr(loan, c) for c in (
                "borrower_name", "principal", "interest_rate", "disbursed_on", "maturity_on",
                "account_manager_id", "status", "product", "purpose", "repayment_account",
                "intake", "dpd", "stage", "created_at")}),
            "borrower": plain({c: getattr(loan.borrower, c) for c in (
                "kind", "name", "id_number", "phones", "addresses")}),
            "installments": plain([(i.seq, i.due_on, i.principal_due, i.interest_due,
                                    i.penalty_due, i.paid_off_on) for i in loan.installments]),
            "charges": plain(sorted((seq[c.installment_id], c.kind, c.source, c.amount, c.note,
                                     c.created_at) for c in db.session.scalars(
                select(Charge).where(Charge.loan_id == loan.id)))),
            "instances": states,
            "tasks": plain([(numbers[t.instance_id], _ids(t.task_guid, seen), t.bpmn_id, t.name,
                             t.lane, t.candidate_user_id, t.due_at, t.priority, t.form_key,
                             t.form_definition_id, t.state, t.context, t.created_at)
                            for t in tasks]),
            "exclusions": sorted((task_numbers[e.task_id], e.user_id, e.reason_task)
                                 for e in db.session.scalars(select(HumanTaskExclusion).where(
                                     HumanTaskExclusion.task_id.in_(task_numbers)))),
            "events": plain([(e.action, e.actor_id, numbers.get(e.instance_id),
                              task_numbers.get(e.task_id), e.data) for e in db.session.scalars(
                select(AuditEvent).where(AuditEvent.case_id == loan.id)
                .order_by(AuditEvent.id))]),
        }
    return out


_round = iter(range(10 ** 6))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=st.lists(ROWS, min_size=1, max_size=8))
def test_bulk_import_equals_one_by_one(app, deployed, users, spec, monkeypatch):
    n = next(_round)
    one, bulk = f"O{n}-", f"B{n}-"
    imported, unchanged, errors = reference_import(flat_rows(spec, one), users["admin"])
    # The import's rows by COPY on PostgreSQL (bulk.insert_rows), whatever their number,
    # against the single loans' INSERTs.
    monkeypatch.setattr(bulk_insert, "COPY_FROM", 1)
    report = import_loans(flat_rows(spec, bulk), users["admin"], skip_errors=True)
    monkeypatch.undo()
    assert [line for line, _no in report.imported] == imported
    assert sorted(line for line, _no in report.unchanged) == unchanged
    assert sorted(line for line, _reasons in report.errors) == errors
    assert snapshot(bulk) == snapshot(one)


def test_handover_start_is_a_template_and_collection_is_not(deployed):
    data = {"loan_no": "X", "borrower_name": "Y", "account_manager": "am", "maturity_on": "Z"}
    assert start_template(latest_definition("handover"), data) is not None
    assert start_template(latest_definition("collection"), {"loan_no": "X", "dpd": 3}) is None
    # values the serializer would encode differently are not templated
    assert start_template(latest_definition("handover"), {"on": dt.date(2026, 1, 1)}) is None


def test_a_bad_row_imports_nothing(deployed, users):
    rows = [(2, row("A-1")), (3, row("A-2")), (4, row("A-3", principal="lots")),
            (5, row("A-4"))]
    report = import_loans(rows, users["admin"])
    assert [line for line, _reasons in report.errors] == [4] and not report.imported
    assert db.session.scalar(select(func.count()).select_from(Loan)) == 0
    assert db.session.scalar(select(func.count()).select_from(ProcessInstance)) == 0
    assert db.session.scalar(select(func.count()).select_from(Installment)) == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.case_id.is_not(None))) == 0


def test_batches_commit_separately_and_report_every_loan(deployed, users, monkeypatch):
    monkeypatch.setattr(operations, "BATCH", 3)
    rows = [(i + 2, row(f"Q-{i}")) for i in range(8)] + [(10, row("Q-1"))]
    report = import_loans(rows, users["admin"])
    assert [no for _line, no in report.imported] == [f"Q-{i}" for i in range(8)]
    assert report.unchanged == [(10, "Q-1")] and not report.errors
    per_case = db.session.execute(select(ProcessInstance.case_id, func.count())
                                  .group_by(ProcessInstance.case_id)).all()
    assert len(per_case) == 8 and all(n == 1 for _case, n in per_case)
    again = import_loans(rows[:4], users["admin"])
    assert not again.imported and len(again.unchanged) == 4
    repeated = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "case.intake_repeated"))
    assert repeated == 4  # a repeat within the file is not a repeat of a registered loan


def test_an_import_costs_the_same_statements_for_3_loans_as_for_30(app, deployed, users):
    """One statement per table per batch, on both databases: nothing per loan (on SQLite the
    rows whose ids are needed were once inserted one at a time)."""
    costs = []
    for prefix, n in (("W30-", 30), ("S3-", 3), ("S30-", 30)):  # W: warms the caches
        with counting(app) as seen:
            report = import_loans([(i + 2, row(f"{prefix}{i}", schedule=SCHEDULES[2]))
                                   for i in range(n)], users["admin"])
        assert len(report.imported) == n
        costs.append(len(seen["statements"]))
    assert costs[1] == costs[2] < 40


def test_overlapping_imports_at_once_register_each_loan_once(app, deployed, users):
    if not is_postgres(app):
        pytest.skip("concurrent writers: PostgreSQL")
    first = [(i + 2, row(f"P-{i:03d}")) for i in range(0, 60)]
    second = [(i + 2, row(f"P-{i:03d}")) for i in range(30, 90)]
    barrier, reports, failures = threading.Barrier(2), [], []

    def run(rows):
        with app.app_context():
            try:
                barrier.wait()
                reports.append(import_loans(rows))
            except Exception as exc:  # noqa: BLE001 — reported below
                failures.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(rows,)) for rows in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert sum(len(r.imported) for r in reports) == 90
    assert all(len(r.imported) + len(r.unchanged) == 60 and not r.errors for r in reports)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Loan)) == 90
    per_case = db.session.execute(select(ProcessInstance.case_id, func.count())
                                  .group_by(ProcessInstance.case_id)).all()
    assert len(per_case) == 90 and all(n == 1 for _case, n in per_case)


def collections_per_case():
    return dict(db.session.execute(
        select(ProcessInstance.case_id, func.count()).join(ProcessInstance.definition)
        .where(ProcessDefinition.process_key == "collection")
        .group_by(ProcessInstance.case_id)).all())


def test_newly_overdue_loans_each_get_one_collection(deployed, users, monkeypatch):
    import cases.staging as staging
    monkeypatch.setattr(staging, "BATCH", 4)
    due = "2026-04-02:100000:1200;2026-09-02:400000:5000"
    rows = [(i + 2, row(f"D-{i}", schedule=due)) for i in range(10)]
    rows += [(20, row("D-later"))]  # one installment, at maturity: stays current
    assert not import_loans(rows, users["admin"]).errors
    run_daily(dt.date(2026, 4, 2))
    assert collections_per_case() == {}
    counts = run_daily(dt.date(2026, 4, 3))
    assert counts["overdue"] == 10
    per_case = collections_per_case()
    later = db.session.scalar(select(Loan.id).where(Loan.loan_no == "D-later"))
    assert len(per_case) == 10 and set(per_case.values()) == {1} and later not in per_case
    overdue_events = db.session.scalars(select(AuditEvent.case_id).where(
        AuditEvent.action == "case.overdue")).all()
    assert sorted(overdue_events) == sorted(per_case)
    # each started with the data the single start gave it
    instance = db.session.scalars(select(ProcessInstance).join(ProcessInstance.definition)
                                  .where(ProcessDefinition.process_key == "collection")).first()
    amount = overdue_amount(instance.case_id, dt.date(2026, 4, 3))
    assert amount > Decimal("101200") and f'"overdue_amount": "{amount}"' in instance.state_json
    # the next days start nothing more
    run_daily(dt.date(2026, 4, 4))
    run_daily(dt.date(2026, 5, 3))
    assert collections_per_case() == per_case
    assert db.session.scalar(select(func.count()).select_from(Borrower)) == 11


def test_batch_start_of_a_process_run_per_instance_equals_start_process(deployed, users):
    """Collection's start runs service tasks and conditions, so start_processes runs it per
    instance: the rows must still be what start_process writes."""
    from workflows.service import start_processes
    due = "2026-04-02:100000:1200;2026-09-02:400000:5000"
    assert not import_loans([(2, row("S-1", schedule=due)), (3, row("S-2", schedule=due))],
                            users["admin"]).errors
    one, two = (db.session.scalar(select(Loan.id).where(Loan.loan_no == no))
                for no in ("S-1", "S-2"))
    data = {"dpd": 3, "stage": "dpd_1_3", "overdue_amount": "101200.00"}
    start_process("collection", case_id=one, actor=users["admin"], data={"loan_no": "S-1"} | data)
    start_processes("collection", [{"case_id": two, "data": {"loan_no": "S-2"} | data}],
                    actor=users["admin"])
    db.session.commit()
    both = [snapshot("S-")[key] for key in ("1", "2")]
    for side in both:
        side.pop("loan")
        side["events"] = [e for e in side["events"] if e[0] != "case.created"]
    # the same but for the loan number (each has its own), with the collection started
    single = json.loads(json.dumps(both[0]).replace("#1", "#n"))
    batch = json.loads(json.dumps(both[1]).replace("#2", "#n"))
    assert single == batch, _differing(single, batch)
    assert any(e[0] == "process.started" for e in both[1]["events"])
    assert len(both[1]["instances"]) == 2 and len(both[1]["tasks"]) >= 2


def _differing(a, b, path=""):
    """The paths where two JSON values differ, with both values (for a readable failure)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in _differing(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differing(x, y, f"{path}[{i}]")]
    return [] if a == b else [(path, a, b)]


def test_the_answer_to_a_new_loan_is_the_case_as_read_back(app, deployed, users, token_for):
    """receive_loan answers with the rows it wrote (not read again): the same JSON as a read."""
    client, headers = app.test_client(), token_for("am")
    body = {"loan_no": "R-1", "borrower_name": "张伟", "principal": "500000",
            "interest_rate": "0.0435", "disbursed_on": "2026-03-02", "maturity_on": "2026-09-02",
            "account_manager": "am", "schedule": [
                {"due_on": "2026-06-02", "principal": "200000", "interest": "5000"},
                {"due_on": "2026-09-02", "principal": "300000"}]}
    created = client.post("/api/v1/loans", json=body, headers=headers)
    assert created.status_code == 201
    read = client.get("/api/v1/cases/R-1", headers=headers)
    assert created.get_json() == read.get_json()
    assert created.get_json()["schedule"][1]["interest"] == "0.00"


def test_a_batch_start_writes_each_instance_as_its_run_left_it(app, users):
    """Run per instance, written together: an instance whose start fails is saved in its
    error state, the others as they ended (here: completed, its timer already past), each
    read back as it ran."""
    from tests.test_script_limits import deploy_probe, diagram
    from workflows.models import ProcessInstance
    from workflows.service import start_processes
    deploy_probe(diagram(script="y = 10 // n"))
    failed, done = start_processes("limits_probe", [{"data": {"n": 0, "x": 1}},
                                                    {"data": {"n": 5, "x": 1}}])
    db.session.commit()
    db.session.expire_all()
    failed, done = (db.session.get(ProcessInstance, i) for i in (failed, done))
    assert failed.status == "error" and "division" in failed.error
    assert failed.state_json != "{}" and failed.completed_at is None
    assert done.status == "completed" and done.error is None and done.completed_at is not None
    assert '"y": 2' in done.state_json
    assert AuditEvent.query.filter_by(action="process.error", instance_id=failed.id).count() == 1


@pytest.mark.parametrize("threshold, analyzed", [(3, True), (4, False)])
def test_a_large_import_refreshes_the_planners_statistics(app, deployed, users, monkeypatch,
                                                          threshold, analyzed):
    """From ANALYZE_AFTER loans on, the tables an import filled are analyzed (PostgreSQL):
    the planner then knows the loans are there (pg_class.reltuples). The emptied tables are
    analyzed first, so that the planner starts from knowing them empty, whatever an earlier
    test left in their statistics."""
    if not is_postgres(app):
        pytest.skip("SQLite keeps no planner statistics here")
    db.session.execute(db.text("ANALYZE loans, installments, human_tasks"))
    monkeypatch.setattr(operations, "ANALYZE_AFTER", threshold)
    report = import_loans([(n + 2, row(f"S-{n}")) for n in range(3)], users["admin"])
    assert len(report.imported) == 3
    counted = {name: db.session.scalar(select(func.count()).select_from(db.table(name)))
               for name in ("loans", "installments", "human_tasks")}
    estimates = dict(db.session.execute(db.text(
        "SELECT relname, reltuples FROM pg_class WHERE relname IN "
        "('loans', 'installments', 'human_tasks')")).all())
    assert (estimates == counted) is analyzed, (estimates, counted)
