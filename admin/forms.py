"""Forms of the administrators' pages."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, TextAreaField, validators

from calendars.operations import NOTE_MAX


class CalendarDaysForm(FlaskForm):
    kind = RadioField(_l("Kind of day"),
                      choices=[("holiday", _l("Holiday (a day off, even on a weekday)")),
                               ("workday", _l("Make-up working day (a working day, even on a "
                                              "weekend)"))],
                      default="holiday",
                      validators=[validators.InputRequired(_l("This field is required."))])
    dates = TextAreaField(
        _l("Dates"), [validators.InputRequired(_l("This field is required."))],
        description=_l("One or more dates as YYYY-MM-DD, separated by spaces, commas or new "
                       "lines; a range as 2027-10-01..2027-10-07."))
    note = StringField(_l("Note"), [validators.Length(
        max=NOTE_MAX, message=_l("At most %(max)d characters."))],
        description=_l("For example the State Council notice."))


class ActionForm(FlaskForm):
    """A button that only needs the CSRF token."""
