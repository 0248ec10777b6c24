"""Staff forms of the ledger: asking for a repayment's reversal and deciding one."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField, validators

from ledger.reversals import TEXT_MAX


class ReversalRequestForm(FlaskForm):
    reason = TextAreaField(_l("Reason for the reversal"),
                           [validators.DataRequired(), validators.Length(max=TEXT_MAX)],
                           description=_l("e.g. the debit bounced; a second person decides."))


class ReversalDecisionForm(FlaskForm):
    # The page posts it from one of two buttons named "decision".
    decision = SelectField(_l("Decision"), [validators.InputRequired()],
                           choices=[("approve", _l("Approve the reversal")),
                                    ("reject", _l("Reject the reversal"))])
    note = TextAreaField(_l("Note on the decision"),
                         [validators.Optional(), validators.Length(max=TEXT_MAX)])
