from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, SelectField, StringField, validators


class LoanForm(FlaskForm):
    loan_no = StringField(_l("Loan number"), [validators.InputRequired(),
                                              validators.Length(max=40)])
    borrower_name = StringField(_l("Borrower"), [validators.InputRequired(),
                                                 validators.Length(max=200)])
    principal = DecimalField(_l("Principal (yuan)"), [validators.InputRequired(),
                                                      validators.NumberRange(min=0.01)])
    interest_rate = DecimalField(_l("Annual interest rate (e.g. 0.0435)"),
                                 [validators.InputRequired(), validators.NumberRange(min=0)],
                                 places=6)
    disbursed_on = DateField(_l("Disbursement date"), [validators.InputRequired()])
    maturity_on = DateField(_l("Maturity date"), [validators.InputRequired()])
    account_manager = SelectField(_l("Account manager"), [validators.InputRequired()])
