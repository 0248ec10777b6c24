"""Who may see which case."""
from accounts.roles import CASE_READERS, CASE_RECORDERS
from cases.models import Loan
from extensions import db
from workflows.models import HumanTask


def can_view_case(user, loan):
    if user.roles & CASE_READERS:
        return True
    if "account_manager" in user.roles and loan.account_manager_id == user.id:
        return True
    # Anyone who holds or handled a task of the case may see it.
    return db.session.query(HumanTask.id).filter(
        HumanTask.case_id == loan.id,
        (HumanTask.claimed_by_id == user.id) | (HumanTask.completed_by_id == user.id)
    ).first() is not None


def can_change_case(user, loan):
    """May add contacts, contact log entries and documents to the case; whether the case
    is closed (then read-only) is checked separately."""
    if user.roles & CASE_RECORDERS:
        return True
    return "account_manager" in user.roles and loan.account_manager_id == user.id


def can_view_task(user, task):
    """A task is visible to its role, its holder and whoever may see its case."""
    if task.claimed_by_id == user.id or task.completed_by_id == user.id:
        return True
    if task.lane in user.roles and task.candidate_user_id in (None, user.id):
        return True
    loan = db.session.get(Loan, task.case_id) if task.case_id else None
    return loan is not None and can_view_case(user, loan)
