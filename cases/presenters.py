"""Plain-data views of a case, shared by the web pages and the API."""
from accounts.models import utc
from extensions import db
from workflows.inbox import display_value, open_tasks_of_case, task_summary, task_title
from workflows.models import HumanTask


def loan_dict(loan):
    return {"loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
            "principal": str(loan.principal), "interest_rate": str(loan.interest_rate),
            "disbursed_on": loan.disbursed_on.isoformat(),
            "maturity_on": loan.maturity_on.isoformat(),
            "account_manager": loan.account_manager.username, "status": loan.status,
            "risk_group": loan.risk_group, "inspection_frequency": loan.inspection_frequency,
            "created_at": utc(loan.created_at).isoformat()}


def case_dict(loan):
    body = loan_dict(loan)
    body["open_tasks"] = [task_summary(t, loan.loan_no) for t in open_tasks_of_case(loan.id)]
    return body


def history_rows(events):
    """Audit events of a case with submitted form data made readable:
    (event, task title or None, [(label, value)])."""
    task_ids = {e.task_id for e in events if e.task_id}
    tasks = {t.id: t for t in db.session.query(HumanTask).filter(HumanTask.id.in_(task_ids))}
    rows = []
    for event in events:
        task = tasks.get(event.task_id)
        submitted = (event.data or {}).get("data") if event.action == "task.completed" else None
        fields = {f["name"]: f for f in (task.form_definition.spec["fields"]
                                         if task is not None and task.form_definition else [])}
        pairs = [display_value(fields.get(k, {"name": k}), v) for k, v in (submitted or {}).items()]
        rows.append((event, task_title(task) if task is not None else None, pairs))
    return rows
