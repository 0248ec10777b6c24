"""Data set of bench/inbox.py: 100k loans, 50k open tasks in three lanes.

build(): the loans come through the project's bulk import (bench.dataset.build_loans, each
starting its handover), then the inbox is reshaped with Core updates of human_tasks: the
inbox reads only human_tasks and human_task_exclusions, never the workflow state, so the
instances' state does not have to match the reshaped tasks. build_core() writes the same
shape with Core inserts only, in seconds, for trying plans (`--core-fixture`).

Shape at `loans` loans: one handover task per loan; the first half open, the other half
completed (history). Open tasks: 40% handover_file (account managers, each their own loans'
tasks), 30% check_file (post-loan officers; each task excludes one officer, four eyes), 30%
collection_call (collectors, a fifth of them held by a user with both lanes). Due dates fall
on 40 days, so hundreds of tasks share a due date; one task in 20 has none; three
priorities. Random (seeded) choices, so due date, priority and exclusions are not
correlated. Every user holds up to CLAIMED_PER_USER claimed tasks of their lanes (loans // 80
at most).
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


def shapes(ids, managers, rng, forms):
    """The inbox columns of one task per loan (managers: the account manager of each), the
    four-eyes exclusions by task position, and how many tasks are claimed."""
    loans = len(managers)
    tasks, exclusions = [], {}
    claimable = {name: [] for name in ids}
    for k, manager in enumerate(managers):
        open_ = k < loans // 2
        step = step_of(k) if open_ else "handover_file"
        lane, form_key = STEPS[step]
        day = START + dt.timedelta(days=rng.randrange(40))
        candidate = manager if step == "handover_file" else None
        tasks.append({
            "bpmn_id": step, "name": step.replace("_", " "), "lane": lane,
            "candidate_user_id": candidate, "claimed_by_id": None, "claimed_at": None,
            "due_at": None if rng.random() < 0.05 else day,
            "priority": rng.choice((1, 2, 2, 3)), "form_key": form_key,
            "form_definition_id": forms.get(form_key),
            "state": "ready" if open_ else "completed",
            "completed_at": None if open_ else START,
            "completed_by_id": None if open_ else candidate})
        if not open_:
            continue
        if step == "check_file":
            excluded = rng.randrange(4)
            exclusions[k] = ids[OFFICERS[excluded]]
            claimable[OFFICERS[(excluded + 1) % 4]].append(k)
        elif step == "collection_call":
            claimable[COLLECTORS[rng.randrange(4)] if rng.random() < 0.8 else DUAL].append(k)
        else:
            claimable[next(n for n in ACCOUNT_MANAGERS if ids[n] == manager)].append(k)
    claimed = 0
    per_user = min(CLAIMED_PER_USER, loans // 80)
    for name, positions in sorted(claimable.items()):
        for k in rng.sample(positions, min(per_user, len(positions))):
            tasks[k].update(claimed_by_id=ids[name], claimed_at=START)
            claimed += 1
    return tasks, exclusions, claimed


def _exclusion_rows(task_ids, exclusions):
    return [{"task_id": task_ids[k], "user_id": user_id, "reason_task": "handover_file"}
            for k, user_id in exclusions.items()]


def build(db, ids, loans, seed=7):
    """Loans through the bulk import (bench.dataset.build_loans: loans, schedules, a started
    handover and its handover_file task each), then the inbox reshaped with Core updates:
    half the tasks completed, the open half spread over three lanes with due dates,
    priorities, claims and four-eyes exclusions. {"loans", "open", "claimed", "exclusions"}."""
    import random

    from sqlalchemy import bindparam, select, update

    from bench.dataset import build_loans
    from workflows.models import FormDefinition, HumanTask, HumanTaskExclusion

    build_loans(loans, seed=seed)
    rng = random.Random(seed)
    forms = dict(db.session.execute(select(FormDefinition.form_key, FormDefinition.id)).all())
    rows = db.session.execute(select(HumanTask.id, HumanTask.candidate_user_id)
                              .where(HumanTask.bpmn_id == "handover_file",
                                     HumanTask.state == "ready")
                              .order_by(HumanTask.id)).all()
    task_ids = [row.id for row in rows]
    tasks, exclusions, claimed = shapes(ids, [row.candidate_user_id for row in rows], rng, forms)
    columns = list(tasks[0])
    statement = (update(HumanTask.__table__)
                 .where(HumanTask.__table__.c.id == bindparam("task_id"))
                 .values({c: bindparam(f"new_{c}") for c in columns}))
    for start in range(0, len(tasks), CHUNK):
        db.session.execute(statement, [
            {"task_id": task_ids[k], **{f"new_{c}": tasks[k][c] for c in columns}}
            for k in range(start, min(len(tasks), start + CHUNK))])
    _insert(db, HumanTaskExclusion.__table__, _exclusion_rows(task_ids, exclusions))
    db.session.commit()
    return {"loans": loans, "open": len(rows) // 2, "claimed": claimed,
            "exclusions": len(exclusions), "via": "bulk import"}


def build_core(db, ids, loans, seed=7):
    """The same shape with Core inserts only (no import, no engine): seconds instead of
    minutes, for trying plans; the instances' workflow state is an empty stub."""
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
    first = {model: (db.session.scalar(select(db.func.max(model.id))) or 0) + 1
             for model in (Loan, ProcessInstance, HumanTask)}
    managers = [ids[ACCOUNT_MANAGERS[i % 4]] for i in range(loans)]
    _insert(db, Loan.__table__, [
        {"id": first[Loan] + i, "loan_no": f"BENCH-{i:06d}",
         "borrower_name": f"Bench borrower {i % 997}", "principal": 100000 + (i % 50) * 10000,
         "interest_rate": "0.0435", "disbursed_on": (START + dt.timedelta(days=i % 300)).date(),
         "maturity_on": (START + dt.timedelta(days=365 + i % 300)).date(),
         "account_manager_id": managers[i], "status": "handover", "created_at": START,
         "product": "term", "purpose": "", "repayment_account": "", "dpd": 0,
         "stage": "current"} for i in range(loans)])
    _insert(db, ProcessInstance.__table__, [
        {"id": first[ProcessInstance] + i, "definition_id": definition_id,
         "case_id": first[Loan] + i, "business_key": None,
         "status": "running" if i < loans // 2 else "completed", "state_json": "{}",
         "serializer_version": "bench", "lock_version": 1, "started_at": START,
         "updated_at": START} for i in range(loans)])
    tasks, exclusions, claimed = shapes(ids, managers, rng, forms)
    task_ids = [first[HumanTask] + k for k in range(loans)]
    _insert(db, HumanTask.__table__, [
        {"id": task_ids[k], "instance_id": first[ProcessInstance] + k,
         "case_id": first[Loan] + k, "task_guid": f"00000000-0000-4000-8000-{k:012d}",
         "process_key": "handover", "created_at": START, **task}
        for k, task in enumerate(tasks)])
    _insert(db, HumanTaskExclusion.__table__, _exclusion_rows(task_ids, exclusions))
    db.session.commit()
    _advance_sequences(db)
    return {"loans": loans, "open": loans // 2, "claimed": claimed,
            "exclusions": len(exclusions), "via": "Core inserts"}


def _advance_sequences(db):
    """Explicit ids leave PostgreSQL's sequences behind; move them past the rows."""
    from sqlalchemy import text

    if db.engine.dialect.name != "postgresql":
        return
    for table in ("loans", "process_instances", "human_tasks"):
        db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT max(id) FROM {table}))"))
    db.session.commit()
