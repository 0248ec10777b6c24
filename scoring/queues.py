"""The queues ranked by expected recovery: the inbox's order "expected_recovery" (registered
with workflows.inbox, which imports no feature package), highest first, unscored tasks last,
ties by task id; and the same ranking of loans for the reminder list and exports."""
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from formatting import money
from scoring.models import LoanScore
from workflows.inbox import register_sort

SORT = "expected_recovery"


def score_values():
    """(case_id, value) of every scored loan: the inbox joins it on the task's case."""
    return select(LoanScore.loan_id.label("case_id"),
                  LoanScore.expected_recovery.label("value"))


register_sort(SORT, _l("Expected recovery"), score_values, money)
