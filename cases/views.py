"""Case pages: list, register a loan, the case in full with its open tasks and history, and
the staff records of a case (contacts, contact log, documents)."""
from flask import (Blueprint, abort, flash, redirect, render_template, request, send_file,
                   url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.exceptions import RequestEntityTooLarge

from accounts.auth import deny, roles_required
from accounts.models import User, UserRole
from accounts.roles import CASE_READERS, LOAN_REGISTRARS
from audit.queries import case_events
from cases.access import can_change_case, can_view_case
from extension_requests.operations import may_request
from cases.forms import ContactForm, ContactLogForm, DocumentForm, LoanForm, RepaymentForm
from cases.intake import FLAT_COLUMNS, flat_field, payload_from_flat
from cases.listing import SORT_KEYS, account_managers, list_cases, parse_filters
from cases.models import PRODUCT_LABELS, STAGE_LABELS, STAGES, Document
from cases.operations import get_loan, receive_loan
from cases.presenters import case_records, history_rows, plain
from ledger.repayments import REPAYMENT_POSTERS
from ledger.presenters import reversal_context
from ledger.summary import ledger_context
from cases.records import (CONTACT_KIND_LABELS, CONTENT_TYPES, DOCUMENT_KIND_LABELS,
                           OUTCOME_LABELS, add_contact, document_path, ensure_open, log_contact,
                           max_document_bytes, upload_document)
from extensions import db
from web import translate_error
from workflows.errors import Conflict, InvalidData
from workflows.inbox import open_tasks_of_case

bp = Blueprint("cases", __name__)


@bp.route("/cases")
@login_required
def index():
    filters = parse_filters(request.args)
    listing = list_cases(db.session, current_user, filters)
    managers = account_managers(db.session) if current_user.roles & CASE_READERS else []
    return render_template("cases/index.html", listing=listing, f=filters, managers=managers,
                           STAGES=STAGES, STAGE_LABELS=STAGE_LABELS, SORT_KEYS=SORT_KEYS)


@bp.route("/cases/new", methods=["GET", "POST"])
@login_required
@roles_required(*LOAN_REGISTRARS)
def new():
    form = LoanForm()
    managers = (User.query.join(UserRole).filter(UserRole.role == "account_manager")
                .order_by(User.username).all())
    form.account_manager.choices = [(u.username, u.label) for u in managers]
    if form.validate_on_submit():
        # The flat fields of cases.intake; the operation checks them as the API's.
        row = {name: request.form.get(name, "") for name in FLAT_COLUMNS if name in form}
        row["product"], row["borrower_kind"] = form.product.data, form.borrower_kind.data
        try:
            loan, created = receive_loan(payload_from_flat(row)[0], current_user,
                                         source="web")
        except InvalidData as exc:
            _show_intake_errors(form, exc.field_errors)
            flash(translate_error(exc), "error")
        except Conflict as exc:
            if exc.code != "loan_exists":
                raise
            flash(translate_error(exc), "error")
            _show_differences(form, exc.details.get("differences", []))
        else:
            if created:
                flash(_("Loan %(no)s registered; the handover has started.", no=loan.loan_no),
                      "success")
            else:
                flash(_("Loan %(no)s was already registered with the same data.",
                        no=loan.loan_no), "success")
            return redirect(url_for("cases.show", loan_no=loan.loan_no))
    return render_template("cases/new.html", form=form)


def _show_intake_errors(form, field_errors):
    """Put intake errors (paths like "borrower.id_number"), translated, under the form's
    fields; those of no field are flashed with their path."""
    for path, errors in field_errors.items():
        messages = [_(e) for e in errors]
        name = flat_field(path)
        if name in form:
            form[name].errors = list(form[name].errors) + messages
        else:
            for message in messages:
                flash(f"{path}: {message}", "error")


def _show_differences(form, paths):
    """Mark the fields where the form differs from the loan registered under its number."""
    different = _("Differs from the loan already registered under this number.")
    elsewhere = []
    for path in paths:
        name = flat_field(path)
        if name in form:
            form[name].errors = list(form[name].errors) + [different]
        else:
            elsewhere.append(path)
    if elsewhere:
        flash(_("Also different: %(fields)s", fields=", ".join(elsewhere)), "error")


def _show_errors(form, exc):
    """Put an operation's field errors, translated, on the form's fields."""
    for name, errors in exc.field_errors.items():
        if name in form:
            form[name].errors = list(form[name].errors) + [_(e) for e in errors]
    flash(translate_error(exc), "error")


def _case_or_403(loan_no):
    loan = get_loan(loan_no)
    if not can_view_case(current_user, loan):
        deny(current_user, "case")
    return loan


def _changeable_case(loan_no):
    """The case, when the current user may add records to it; 403 or a refusal otherwise."""
    loan = _case_or_403(loan_no)
    if not can_change_case(current_user, loan):
        deny(current_user, "case_change")
    ensure_open(loan)  # a closed case: flashed and sent back by web.workflow_error
    return loan


def _render_case(loan, status=200, open_form=None, **forms):
    """The case page; `forms` replaces the blank record forms (a refused one, with errors)."""
    may_change = can_change_case(current_user, loan) and not loan.is_closed
    if may_change:
        forms = {"contact_form": ContactForm(formdata=None),
                 "log_form": ContactLogForm(formdata=None),
                 "document_form": DocumentForm(formdata=None)} | forms
        if current_user.has_role(*REPAYMENT_POSTERS) and loan.status in ("handover",
                                                                         "servicing"):
            forms.setdefault("repayment_form", RepaymentForm(formdata=None))
        if may_request(current_user, loan) and loan.status in ("handover", "servicing"):
            from extension_requests.views import ExtensionForm
            forms.setdefault("extension_form", ExtensionForm(formdata=None))
        forms["document_form"].file.description = _(
            "PDF, JPEG, PNG, DOCX or XLSX, at most %(mb)s MB.",
            mb=f"{max_document_bytes() / (1024 * 1024):g}")
    return render_template(
        "cases/show.html", loan=loan, tasks=open_tasks_of_case(loan.id),
        history=history_rows(case_events(loan.id)), records=case_records(loan),
        ledger=ledger_context(loan), **reversal_context(loan, current_user),
        may_change=may_change, open_form=open_form, plain=plain,
        PRODUCT_LABELS=PRODUCT_LABELS, STAGE_LABELS=STAGE_LABELS,
        CONTACT_KIND_LABELS=CONTACT_KIND_LABELS, OUTCOME_LABELS=OUTCOME_LABELS,
        DOCUMENT_KIND_LABELS=DOCUMENT_KIND_LABELS,
        TYPE_NAMES={v: k.upper() for k, v in CONTENT_TYPES.items()}, **forms), status


def _save(loan, form, name, anchor, save):
    """Validate `form` and run `save` (an operation returning the success message): back to
    the case on success, else the case page again with the errors (400), nothing saved."""
    if form.validate():
        try:
            message = save()
        except InvalidData as exc:
            _show_errors(form, exc)
        else:
            flash(message, "success")
            return redirect(url_for("cases.show", loan_no=loan.loan_no, _anchor=anchor))
    else:
        flash(_("Please correct the errors below."), "error")
    return _render_case(loan, 400, open_form=name, **{f"{name}_form": form})


@bp.route("/cases/<loan_no>")
@login_required
def show(loan_no):
    return _render_case(_case_or_403(loan_no))


@bp.route("/cases/<loan_no>/contacts", methods=["POST"], endpoint="add_contact")
@login_required
def add_contact_view(loan_no):
    loan = _changeable_case(loan_no)
    form = ContactForm()

    def save():
        contact = add_contact(loan, current_user, form.name.data, form.relationship.data,
                              form.phone.data, form.address.data, form.knows_about_loan.data)
        return _("Contact %(name)s added.", name=contact.name)
    return _save(loan, form, "contact", "contacts", save)


@bp.route("/cases/<loan_no>/contact-log", methods=["POST"], endpoint="log_contact")
@login_required
def log_contact_view(loan_no):
    loan = _changeable_case(loan_no)
    form = ContactLogForm()

    def save():
        log_contact(loan, current_user, form.kind.data, outcome=form.outcome.data,
                    number=form.number.data, answered_by=form.answered_by.data,
                    note=form.note.data, promised_on=form.promised_on.data,
                    promised_amount=form.promised_amount.data, address=form.address.data)
        return _("Contact logged.")
    return _save(loan, form, "log", "contact-log", save)


@bp.route("/cases/<loan_no>/documents", methods=["POST"], endpoint="upload_document")
@login_required
def upload_document_view(loan_no):
    loan = _changeable_case(loan_no)
    form = DocumentForm()

    def save():
        upload = form.file.data
        document = upload_document(loan, current_user, form.kind.data, upload.filename,
                                   upload.read(max_document_bytes() + 1))
        return _("Document %(name)s uploaded.", name=document.filename)
    return _save(loan, form, "document", "documents", save)


@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc):
    """A body over the app's MAX_CONTENT_LENGTH, if one is set."""
    flash(_("The file is too large."), "error")
    loan_no = (request.view_args or {}).get("loan_no")
    return redirect(url_for("cases.show", loan_no=loan_no, _anchor="documents")
                    if loan_no else url_for("cases.index"))


@bp.route("/cases/<loan_no>/documents/<int:document_id>")
@login_required
def document(loan_no, document_id):
    loan = _case_or_403(loan_no)
    row = db.session.get(Document, document_id)
    if row is None or row.loan_id != loan.id or not document_path(row).is_file():
        abort(404)
    response = send_file(document_path(row), mimetype=row.content_type, as_attachment=True,
                         download_name=row.filename, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


import pii.views  # noqa: E402,F401  (the reveal route registers on bp)
