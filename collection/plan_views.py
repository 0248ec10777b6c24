"""What the case page shows of a loan's repayment plans (templates/collection/)."""
from flask import Blueprint
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext

from collection.plans import plans_of

bp = Blueprint("repayment_plans", __name__)

# "Completed" alone is a column header elsewhere (完成时间): the plan's status has its own
# context, so it gets its own translation.
PLAN_STATUS_LABELS = {"active": _l("Running"),
                      "completed": lazy_pgettext("repayment plan status", "Completed"),
                      "broken": _l("Broken")}
INSTALMENT_STATUS_LABELS = {"pending": _l("Not yet due"), "kept": _l("Kept"),
                            "missed": _l("Missed")}


@bp.app_template_global()
def repayment_plans_of(loan_id):
    """The case's repayment plans, newest first, with each instalment's covered amount."""
    return {"plans": plans_of(loan_id), "plan_labels": PLAN_STATUS_LABELS,
            "instalment_labels": INSTALMENT_STATUS_LABELS}
