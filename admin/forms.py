"""Forms of the administrators' pages."""
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateField, DecimalField, RadioField, StringField,
                     TextAreaField, validators)

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


# ---------------------------------------------------------------- penalty interest
# Rates are entered as percentages (50 for +50%, 3.1 for 3.10%) and stored as fractions; the
# limits mirror ledger.operations and the places those of the columns (markup Numeric(6, 4),
# LPR Numeric(9, 6), multiple Numeric(6, 2)).

class _Between:
    """low < value <= high (or low <= value when `low_inclusive`), at most `places` decimals."""

    def __init__(self, low, high, places, message, low_inclusive=False):
        self.low, self.high, self.places = Decimal(low), Decimal(high), places
        self.low_inclusive, self.message = low_inclusive, message

    def __call__(self, form, field):
        value = field.data
        if value is None:
            return
        if not value.is_finite():
            raise validators.ValidationError(str(self.message))
        above_low = value >= self.low if self.low_inclusive else value > self.low
        if not above_low or value > self.high:
            raise validators.ValidationError(str(self.message))
        if value != value.quantize(Decimal(1).scaleb(-self.places)):
            raise validators.ValidationError(str(_l(
                "At most %(places)d decimal places.", places=self.places)))


class PenaltyTermsForm(FlaskForm):
    """One product's penalty settings; rendered once per product with the product's code as
    prefix, so every control has its own id and label."""
    markup = DecimalField(
        _l("Penalty markup (%)"), places=None,
        validators=[validators.InputRequired(_l("This field is required.")),
                    _Between(0, 500, 2, _l("Enter a percentage from 0 to 500."),
                             low_inclusive=True)],
        description=_l("50 means the contract rate plus 50%."),
        render_kw={"min": 0, "max": 500, "step": "any", "inputmode": "decimal"})
    compound = BooleanField(_l("Compound interest on overdue interest"))


class RateCapForm(FlaskForm):
    effective_on = DateField(
        _l("Effective from"), [validators.InputRequired(_l("Enter a date."))],
        description=_l("Penalty interest for days from this date on is capped by the new "
                       "ceiling. A date that already has a ceiling gets the new figures."))
    lpr = DecimalField(
        _l("One-year LPR (%)"), places=None,
        validators=[validators.InputRequired(_l("This field is required.")),
                    _Between(0, Decimal("99.9999"), 4,
                             _l("Enter a percentage above 0 and below 100, e.g. 3.1."))],
        description=_l("The one-year loan prime rate as published, e.g. 3.1 for 3.10%."),
        render_kw={"min": 0, "max": 100, "step": "any", "inputmode": "decimal"})
    multiple = DecimalField(
        _l("Multiple of the LPR"), places=None, default=Decimal(4),
        validators=[validators.InputRequired(_l("This field is required.")),
                    _Between(0, 10, 2, _l("Enter a number above 0 and at most 10."))],
        description=_l("The ceiling is this multiple of the LPR, e.g. 4."),
        render_kw={"min": 0, "max": 10, "step": "any", "inputmode": "decimal"})
