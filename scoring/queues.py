"""The queues ranked by expected recovery: the inbox's order "expected_recovery" (registered
with workflows.inbox, which imports no feature package), highest first, unscored tasks last,
ties by task id; and the same ranking of loans for the reminder list and exports."""
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from extensions import db
from formatting import money
from scoring.labels import points_text, reason_text
from scoring.models import LoanScore
from workflows.inbox import register_sort

SORT = "expected_recovery"


def score_values():
    """(case_id, value) of every scored loan: the inbox joins it on the task's case."""
    return select(LoanScore.loan_id.label("case_id"),
                  LoanScore.expected_recovery.label("value"))


def top_reasons(case_ids, count=2):
    """{case id: its score's first reasons as one line}, for the ranked inbox (one query)."""
    ids = sorted({i for i in case_ids if i is not None})
    if not ids:
        return {}
    rows = db.session.execute(select(LoanScore.loan_id, LoanScore.reasons)
                              .where(LoanScore.loan_id.in_(ids)))
    return {loan_id: "; ".join(f"{reason_text(r)} ({points_text(r['points'])} {_('points')})"
                               for r in (reasons or [])[:count])
            for loan_id, reasons in rows}


register_sort(SORT, _l("Expected recovery"), score_values, money, top_reasons)
