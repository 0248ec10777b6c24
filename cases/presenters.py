"""Plain-data views of a case, shared by the web pages and the API."""
from accounts.models import utc
from workflows.inbox import open_tasks_of_case, task_summary


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
