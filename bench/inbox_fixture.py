"""Bench fixture for bench/inbox.py: loans, instances and human tasks written with Core bulk
inserts, straight into the tables the inbox reads.

This is a fixture, not the application's intake: the workflow state of the instances is an
empty stub, nothing is audited, and no engine runs. The inbox never deserializes an
instance, so its queries see what they would see on a server with these tasks open.

Shape at `loans` loans (100k in the full run): one handover instance per loan; `loans // 2`
open tasks on the first half of the loans and as many completed ones (history) on the other
half. Open tasks: 40% handover_file (account managers, each their own loans' tasks), 30%
check_file (post-loan officers; each one's four-eyes exclusion covers a quarter of them),
30% collection_call (collectors). Due dates fall on 40 days at 09:00 Beijing time, so
thousands of tasks share a due date; one task in 20 has none; three priorities. Random
(seeded) choices, so the due date, priority and exclusions are not correlated. Every
user holds up to CLAIMED_PER_USER claimed tasks of their lanes (loans // 80 at most).
"""
import datetime as dt

START = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.timezone.utc)
PASSWORD = "bench-password"
ACCOUNT_MANAGERS = [f"bench_am{i}" for i in range(1, 5)]
OFFICERS = [f"bench_plo{i}" for i in range(1, 5)]
COLLECTORS = [f"bench_col{i}" for i in range(1, 5)]
DUAL = "bench_dual"  # post-loan officer and collector: two lanes in one inbox
ADMIN = "bench_admin"
# Enough for 50 pages of 20 in "mine" at full scale; a tenth of the loans' worth at most.
CLAIMED_PER_USER = 1200
CHUNK = 5000
STEPS = {  # bpmn id -> (lane, form key)
    "handover_file": ("account_manager", "handover_file"),
    "check_file": ("post_loan_officer", "handover_check"),
    "collection_call": ("collector", "collection_call"),
}


def create_users():
    from accounts.operations import create_user

    ids = {}
    for names, roles in ((ACCOUNT_MANAGERS, ["account_manager"]),
                         (OFFICERS, ["post_loan_officer"]), (COLLECTORS, ["collector"]),
                         ([DUAL], ["post_loan_officer", "collector"]), ([ADMIN], ["admin"])):
        for name in names:
            ids[name] = create_user(name, PASSWORD, roles).id
    return ids


def _insert(db, table, rows):
    for start in range(0, len(rows), CHUNK):
        db.session.execute(table.insert(), rows[start:start + CHUNK])


def step_of(k):
    return "handover_file" if k % 10 < 4 else "check_file" if k % 10 < 7 else "collection_call"


def build(db, ids, loans, seed=7):
    """Insert the data set; returns {"loans": n, "open": n, "claimed": n, "exclusions": n}."""
    import random

    from sqlalchemy import select

    from cases.models import Loan
    from workflows.models import (FormDefinition, HumanTask, HumanTaskExclusion,
                                  ProcessDefinition, ProcessInstance)

    rng = random.Random(seed)
    definition_id = db.session.scalar(select(ProcessDefinition.id)
                                      .where(ProcessDefinition.process_key == "handover")
                                      .order_by(ProcessDefinition.version.desc()).limit(1))
    forms = dict(db.session.execute(select(FormDefinition.form_key, FormDefinition.id)).all())
    first_loan = (db.session.scalar(select(db.func.max(Loan.id))) or 0) + 1
    first_instance = (db.session.scalar(select(db.func.max(ProcessInstance.id))) or 0) + 1
    first_task = (db.session.scalar(select(db.func.max(HumanTask.id))) or 0) + 1
    now = START
    _insert(db, Loan.__table__, [
        {"id": first_loan + i, "loan_no": f"BENCH-{i:06d}",
         "borrower_name": f"Bench borrower {i % 997}", "principal": 100000 + (i % 50) * 10000,
         "interest_rate": "0.0435", "disbursed_on": (START + dt.timedelta(days=i % 300)).date(),
         "maturity_on": (START + dt.timedelta(days=365 + i % 300)).date(),
         "account_manager_id": ids[ACCOUNT_MANAGERS[i % 4]], "status": "handover",
         "created_at": now, "product": "term", "purpose": "", "repayment_account": "",
         "dpd": 0, "stage": "current"} for i in range(loans)])
    _insert(db, ProcessInstance.__table__, [
        {"id": first_instance + i, "definition_id": definition_id, "case_id": first_loan + i,
         "business_key": None, "status": "running" if i < loans // 2 else "completed",
         "state_json": "{}", "serializer_version": "bench", "lock_version": 1,
         "started_at": now, "updated_at": now} for i in range(loans)])
    tasks, exclusions = [], []
    claimable = {name: [] for name in ids}
    for k in range(loans):
        open_ = k < loans // 2
        step = step_of(k) if open_ else "handover_file"
        lane, form_key = STEPS[step]
        day = START + dt.timedelta(days=rng.randrange(40))
        due = None if rng.random() < 0.05 else day
        candidate = ids[ACCOUNT_MANAGERS[k % 4]] if step == "handover_file" else None
        task_id = first_task + k
        tasks.append({
            "id": task_id, "instance_id": first_instance + k, "case_id": first_loan + k,
            "task_guid": f"00000000-0000-4000-8000-{k:012d}", "process_key": "handover",
            "bpmn_id": step, "name": step.replace("_", " "), "lane": lane,
            "candidate_user_id": candidate, "claimed_by_id": None, "claimed_at": None,
            "due_at": due, "priority": rng.choice((1, 2, 2, 3)), "form_key": form_key,
            "form_definition_id": forms.get(form_key),
            "state": "ready" if open_ else "completed", "created_at": now,
            "completed_at": None if open_ else now,
            "completed_by_id": None if open_ else candidate})
        if not open_:
            continue
        if step == "check_file":
            excluded = rng.randrange(4)
            exclusions.append({"task_id": task_id, "user_id": ids[OFFICERS[excluded]],
                               "reason_task": "handover_file"})
            claimable[OFFICERS[(excluded + 1) % 4]].append(len(tasks) - 1)
        elif step == "collection_call":
            holder = COLLECTORS[rng.randrange(4)] if rng.random() < 0.8 else DUAL
            claimable[holder].append(len(tasks) - 1)
        else:
            claimable[ACCOUNT_MANAGERS[k % 4]].append(len(tasks) - 1)
    claimed = 0
    per_user = min(CLAIMED_PER_USER, loans // 80)
    for name, positions in sorted(claimable.items()):
        for position in rng.sample(positions, min(per_user, len(positions))):
            tasks[position].update(claimed_by_id=ids[name], claimed_at=now)
            claimed += 1
    _insert(db, HumanTask.__table__, tasks)
    _insert(db, HumanTaskExclusion.__table__, exclusions)
    db.session.commit()
    _advance_sequences(db)
    return {"loans": loans, "open": loans // 2, "claimed": claimed,
            "exclusions": len(exclusions)}


def _advance_sequences(db):
    """Explicit ids leave PostgreSQL's sequences behind; move them past the rows."""
    from sqlalchemy import text

    if db.engine.dialect.name != "postgresql":
        return
    for table in ("loans", "process_instances", "human_tasks"):
        db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT max(id) FROM {table}))"))
    db.session.commit()
