"""The leader's form for a collector's daily targets."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, IntegerField, validators

from scorecards.targets import AMOUNT_MAX, COUNT_MAX

_REQUIRED = _l("This field is required.")
_COUNT = _l("A whole number from 0 to %(max)s.", max=COUNT_MAX)


def _count(label):
    return IntegerField(label, [validators.InputRequired(_REQUIRED),
                                validators.NumberRange(0, COUNT_MAX, _COUNT)],
                        render_kw={"inputmode": "numeric", "min": 0})


class TargetForm(FlaskForm):
    effective_from = DateField(_l("Effective from"), [validators.InputRequired(_REQUIRED)],
                               description=_l("Today or later: a past day's report does not "
                                              "change."))
    calls = _count(_l("Calls a day"))
    contacts = _count(_l("Contacts reached a day"))
    promises = _count(_l("Promises a day"))
    amount = DecimalField(_l("Amount collected a day (yuan)"), places=2,
                          validators=[validators.InputRequired(_REQUIRED),
                                      validators.NumberRange(0, AMOUNT_MAX, _l(
                                          "An amount of 0 or more."))],
                          render_kw={"inputmode": "decimal", "min": 0, "step": "0.01"})
