"""Forms of the managers' view."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField, validators

from management.sla import REASON_MAX

_REQUIRED = _l("This field is required.")
_TOO_LONG = _l("At most %(max)d characters.")


class ReassignForm(FlaskForm):
    user = SelectField(_l("New holder"), coerce=int,
                       validators=[validators.InputRequired(_REQUIRED)])
    reason = TextAreaField(_l("Reason"), [validators.DataRequired(_REQUIRED),
                                          validators.Length(max=REASON_MAX, message=_TOO_LONG)])


class WaiveForm(FlaskForm):
    reason = TextAreaField(_l("Reason for waiving"),
                           [validators.DataRequired(_REQUIRED),
                            validators.Length(max=REASON_MAX, message=_TOO_LONG)],
                           description=_l("For example: the leader verified the client would "
                                          "not cooperate."))
