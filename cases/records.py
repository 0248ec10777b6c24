"""Staff records of a case: contacts, the contact log and documents.

Each operation is one transaction, appends an audit event and commits. They take plain
values (the views parse the request); InvalidData lists every bad field at once, with
messages marked for translation (N_) that the web pages translate when they show them.
"""
import hashlib
import io
import os
import re
import secrets
import zipfile
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l

from audit.operations import record
from cases.models import Contact, ContactLogEntry, Document
from i18n import N_
from extensions import db
from workflows import clock
from workflows.clock import BEIJING
from workflows.errors import Conflict, InvalidData

CONTACT_KIND_LABELS = {"call": _l("Phone call"), "visit": _l("Visit"), "sms": _l("SMS"),
                       "note": _l("Note"), "reminder": _l("Reminder")}
# What staff log by hand; reminders are written by the reminder process.
LOGGABLE_KINDS = ("call", "visit", "sms", "note")
OUTCOME_LABELS = {"reached": _l("Reached"), "no_answer": _l("No answer"),
                  "switched_off": _l("Phone switched off"), "wrong_number": _l("Wrong number"),
                  "refused": _l("Refused to pay"), "promised_to_pay": _l("Promised to pay"),
                  "other": _l("Other")}
DOCUMENT_KIND_LABELS = {"contract": _l("Loan contract"), "iou": _l("IOU"),
                        "guarantee": _l("Guarantee"), "collateral": _l("Collateral papers"),
                        "visit_photo": _l("Visit photo"), "court_filing": _l("Court filing"),
                        "other": _l("Other")}

PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{2,38}$")

DEFAULT_MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
# extension -> type sniffed from the content
EXTENSION_TYPES = {"pdf": "pdf", "jpg": "jpeg", "jpeg": "jpeg", "png": "png", "docx": "docx",
                   "xlsx": "xlsx"}
CONTENT_TYPES = {
    "pdf": "application/pdf", "jpeg": "image/jpeg", "png": "image/png",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def ensure_open(loan):
    if loan.is_closed:
        raise Conflict(f"loan {loan.loan_no} is closed", code="case_read_only")


def _invalid(errors):
    if errors:
        raise InvalidData("the record has errors", field_errors=errors, code="invalid")


def _phone_error(phone):
    return None if not phone or PHONE.match(phone) else N_("Not a valid phone number.")


def add_contact(loan, actor, name, relationship, phone="", address="",
                knows_about_loan=False):
    """A person to reach the borrower through (DOMAIN.md §3); commits."""
    ensure_open(loan)
    name, relationship = (name or "").strip(), (relationship or "").strip()
    phone, address = (phone or "").strip(), (address or "").strip()
    errors = {}
    if not name:
        errors["name"] = [N_("This field is required.")]
    if not relationship:
        errors["relationship"] = [N_("This field is required.")]
    if _phone_error(phone):
        errors["phone"] = [_phone_error(phone)]
    elif not phone and not address:
        errors["phone"] = [N_("Give a phone number or an address.")]
    _invalid(errors)
    contact = Contact(loan_id=loan.id, name=name, relationship=relationship, phone=phone,
                      address=address, knows_about_loan=bool(knows_about_loan))
    db.session.add(contact)
    db.session.flush()
    record("contact.added", actor=actor, case_id=loan.id,
           data={"contact_id": contact.id, "name": name, "relationship": relationship,
                 "phone": phone, "address": address,
                 "knows_about_loan": contact.knows_about_loan})
    db.session.commit()
    return contact


def log_contact(loan, actor, kind, outcome="", number="", answered_by="", note="",
                promised_on=None, promised_amount=None, address=""):
    """One entry of the contact log (客户痕迹化管理); commits.

    A call follows the phone collection rules (collection.contact_rules, issue 11 rule 7):
    at DPD 1–3 a contact's or guarantor's number is refused until the borrower and direct
    family are unreachable; outside the call windows or over a window's maximum it is
    logged and flagged for the leader."""
    # Imported here: the collection package builds on the case models and records.
    from collection import contact_rules
    ensure_open(loan)
    number, answered_by = (number or "").strip(), (answered_by or "").strip()
    note, address, outcome = (note or "").strip(), (address or "").strip(), outcome or ""
    errors = {}
    if kind not in LOGGABLE_KINDS:
        errors["kind"] = [N_("Not a valid choice.")]
    if outcome and outcome not in OUTCOME_LABELS:
        errors["outcome"] = [N_("Not a valid choice.")]
    elif not outcome and kind in ("call", "visit"):
        errors["outcome"] = [N_("This field is required.")]
    if kind in ("call", "sms") and not number:
        errors["number"] = [N_("This field is required.")]
    elif _phone_error(number):
        errors["number"] = [_phone_error(number)]
    if kind == "visit" and not address:
        errors["address"] = [N_("This field is required.")]
    if kind == "note" and not note:
        errors["note"] = [N_("This field is required.")]
    if (promised_on is None) != (promised_amount is None):
        missing = "promised_amount" if promised_amount is None else "promised_on"
        errors[missing] = [N_("A promise to pay needs both a date and an amount.")]
    elif outcome == "promised_to_pay" and promised_on is None:
        errors["promised_on"] = [N_("A promise to pay needs both a date and an amount.")]
    if promised_on is not None and promised_on < clock.now().astimezone(BEIJING).date():
        errors["promised_on"] = [N_("The promised date cannot be in the past.")]
    if promised_amount is not None and not (promised_amount.is_finite() and promised_amount > 0):
        errors["promised_amount"] = [N_("Must be a positive number.")]
    if kind == "call" and not errors:
        errors.update({"number" if name == "number_called" else name: messages
                       for name, messages in contact_rules.rule_errors(
                           loan, number, answered_by, False, clock.now()).items()})
    _invalid(errors)
    flag = contact_rules.call_flag(loan, number, answered_by, clock.now()) \
        if kind == "call" else None
    entry = ContactLogEntry(loan_id=loan.id, at=clock.now(), kind=kind, number=number,
                            answered_by=answered_by, outcome=outcome, note=note,
                            address=address if kind == "visit" else "",
                            promised_on=promised_on, promised_amount=promised_amount,
                            user_id=actor.id)
    db.session.add(entry)
    db.session.flush()
    record("contact.logged", actor=actor, case_id=loan.id,
           data={"entry_id": entry.id, "kind": kind, "outcome": outcome, "number": number,
                 "answered_by": answered_by, "address": address,
                 "promised_on": promised_on, "promised_amount": promised_amount})
    if flag:
        contact_rules.flag_for_leader(loan, entry, actor, flag)
    db.session.commit()
    return entry


def documents_dir():
    return Path(current_app.config.get("DOCUMENTS_DIR")
                or Path(current_app.instance_path) / "documents")


def max_document_bytes():
    return int(current_app.config.get("MAX_DOCUMENT_BYTES", DEFAULT_MAX_DOCUMENT_BYTES))


def sniff(data):
    """The type the content really is ("pdf", "jpeg", "png", "docx", "xlsx") or None."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"PK\x03\x04"):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except (zipfile.BadZipFile, ValueError):
            return None
        if "[Content_Types].xml" in names:
            if "word/document.xml" in names:
                return "docx"
            if "xl/workbook.xml" in names:
                return "xlsx"
    return None


def clean_filename(filename):
    """The user's file name without any directory part or control characters, at most 200
    characters (the extension kept). Only ever shown and sent back, never used on disk."""
    name = os.path.basename((filename or "").replace("\\", "/"))
    name = "".join(c for c in name if c.isprintable()).strip()
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = stem[:199 - len(ext)] + dot + ext if dot and len(ext) < 20 else name[:200]
    return name


def upload_document(loan, actor, kind, filename, data):
    """Store a document of the case under a random name and list it; commits.

    `data` is the file's content (the caller reads at most max_document_bytes() + 1)."""
    path = None
    try:
        document, path = store_document(loan, actor, kind, filename, data)
        db.session.commit()
    except (InvalidData, Conflict):
        raise  # refused before anything was written
    except BaseException:
        db.session.rollback()
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    return document


def store_document(loan, actor, kind, filename, data):
    """upload_document without the commit, for a caller whose transaction it joins (photos
    taken with a task's form): (document, path of the file written). The caller removes the
    file if its transaction does not commit."""
    ensure_open(loan)
    filename = clean_filename(filename)
    errors = {}
    if kind not in DOCUMENT_KIND_LABELS:
        errors["kind"] = [N_("Not a valid choice.")]
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    if not filename or not data:
        errors["file"] = [N_("Choose a file to upload.")]
    elif len(data) > max_document_bytes():
        errors["file"] = [N_("The file is too large.")]
    elif extension not in EXTENSION_TYPES or sniff(data) != EXTENSION_TYPES[extension]:
        errors["file"] = [N_("Only PDF, JPEG, PNG, DOCX and XLSX files are accepted, and the "
                             "content must match the file name.")]
    _invalid(errors)
    folder = documents_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stored_name = secrets.token_hex(20)
    path = folder / stored_name
    with open(path, "xb") as f:
        f.write(data)
    try:
        document = Document(loan_id=loan.id, kind=kind, filename=filename,
                            stored_name=stored_name,
                            content_type=CONTENT_TYPES[EXTENSION_TYPES[extension]],
                            size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                            uploaded_by_id=actor.id, uploaded_at=clock.now())
        db.session.add(document)
        db.session.flush()
        record("document.uploaded", actor=actor, case_id=loan.id,
               data={"document_id": document.id, "kind": kind, "filename": filename,
                     "size": document.size, "sha256": document.sha256,
                     "content_type": document.content_type})
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return document, path


def document_path(document):
    return documents_dir() / document.stored_name
