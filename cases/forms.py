from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (BooleanField, DateField, DecimalField, SelectField, StringField,
                     TextAreaField, validators)

from cases.models import PRODUCT_LABELS
from cases.records import (CONTACT_KIND_LABELS, DOCUMENT_KIND_LABELS, LOGGABLE_KINDS,
                           OUTCOME_LABELS)


class LoanForm(FlaskForm):
    """The staff form of a loan: the flat fields of cases.intake (FLAT_COLUMNS, without the
    schedule: one installment at maturity). cases.operations checks it as the API's."""
    loan_no = StringField(_l("Loan number"), [validators.InputRequired(),
                                              validators.Length(max=40)])
    product = SelectField(_l("Product"), choices=list(PRODUCT_LABELS.items()), default="term")
    borrower_kind = SelectField(_l("Kind of borrower"), default="person",
                                choices=[("person", _l("Person")), ("company", _l("Company"))])
    borrower_name = StringField(_l("Borrower"), [validators.InputRequired(),
                                                 validators.Length(max=200)])
    borrower_id_number = StringField(
        _l("Resident ID number or unified social credit code"),
        [validators.Optional(), validators.Length(max=40)],
        description=_l("18 characters: the ID number of a person, the unified social credit "
                       "code of a company."))
    borrower_phone = StringField(_l("Borrower's phone numbers"),
                                 [validators.Optional(), validators.Length(max=400)],
                                 description=_l("Separate several with a semicolon (;)."))
    borrower_address = StringField(_l("Borrower's addresses"),
                                   [validators.Optional(), validators.Length(max=1200)],
                                   description=_l("Separate several with a semicolon (;)."))
    principal = DecimalField(_l("Principal (yuan)"), [validators.InputRequired(),
                                                      validators.NumberRange(min=0.01)])
    interest_rate = DecimalField(_l("Annual interest rate (e.g. 0.0435)"),
                                 [validators.InputRequired(), validators.NumberRange(min=0)],
                                 places=6)
    disbursed_on = DateField(_l("Disbursement date"), [validators.InputRequired()])
    maturity_on = DateField(_l("Maturity date"), [validators.InputRequired()])
    account_manager = SelectField(_l("Account manager"), [validators.InputRequired()])
    purpose = TextAreaField(_l("Purpose of funds"),
                            [validators.Optional(), validators.Length(max=2000)])
    repayment_account = StringField(_l("Repayment account"),
                                    [validators.Optional(), validators.Length(max=40)])


class ContactForm(FlaskForm):
    """A contact of the borrower (DOMAIN.md §3); posted with the prefix "contact"."""
    name = StringField(_l("Name"), [validators.InputRequired(), validators.Length(max=120)])
    relationship = StringField(_l("Relationship"), [validators.InputRequired(),
                                                    validators.Length(max=40)],
                               description=_l("e.g. spouse, brother, business partner"))
    phone = StringField(_l("Phone"), [validators.Optional(), validators.Length(max=40)])
    address = StringField(_l("Address"), [validators.Optional(), validators.Length(max=300)])
    knows_about_loan = BooleanField(_l("Knows about the loan"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="contact", **kwargs)


class ContactLogForm(FlaskForm):
    """One call, visit, SMS or note; posted with the prefix "log"."""
    kind = SelectField(_l("Kind"), [validators.InputRequired()],
                       choices=[(k, CONTACT_KIND_LABELS[k]) for k in LOGGABLE_KINDS])
    number = StringField(_l("Number called or texted"),
                         [validators.Optional(), validators.Length(max=40)],
                         description=_l("Required for a call or an SMS."))
    address = StringField(_l("Address visited"),
                          [validators.Optional(), validators.Length(max=300)],
                          description=_l("Required for a visit."))
    answered_by = StringField(_l("Who answered"),
                              [validators.Optional(), validators.Length(max=120)])
    outcome = SelectField(_l("Outcome"), choices=[("", "—")] + list(OUTCOME_LABELS.items()),
                          description=_l("Required for a call or a visit."))
    note = TextAreaField(_l("Note"), [validators.Optional(), validators.Length(max=5000)])
    promised_on = DateField(_l("Promised payment date"), [validators.Optional()],
                            description=_l("A promise to pay needs both a date and an amount."))
    promised_amount = DecimalField(_l("Promised amount (yuan)"),
                                   [validators.Optional(), validators.NumberRange(min=0.01)],
                                   places=2)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="log", **kwargs)


class DocumentForm(FlaskForm):
    """A document of the case; posted (multipart) with the prefix "document"."""
    kind = SelectField(_l("Kind of document"), [validators.InputRequired()],
                       choices=list(DOCUMENT_KIND_LABELS.items()))
    file = FileField(_l("File"), [FileRequired(_l("Choose a file to upload."))])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="document", **kwargs)


class RepaymentForm(FlaskForm):
    amount = DecimalField(_l("Amount (yuan)"), [validators.InputRequired(),
                                                validators.NumberRange(min=0.01)], places=2)
    paid_at = DateField(_l("Paid on"), [validators.InputRequired()])
    external_ref = StringField(_l("Bank reference"), [validators.InputRequired(),
                                                      validators.Length(max=80)])
