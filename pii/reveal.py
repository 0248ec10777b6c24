"""Revealing one masked value: which value a field key names on a loan, and the audited
reveal itself (a reason required, an hourly cap per user). Never reads the request."""
import datetime as dt

from flask import current_app
from sqlalchemy import func, select

from audit.models import AuditEvent
from audit.operations import record
from cases.models import Contact, ContactLogEntry, Guarantor
from extensions import db
from pii.rules import ID_NUMBER, PHONE, may_reveal, revealed
from workflows import clock
from workflows.errors import InvalidData, NotAllowed

MIN_REASON = 5
MAX_REASON = 500
DEFAULT_PER_HOUR = 30

# (owner, attribute) of "<owner>.<id>.<attribute>" keys -> (model, column, kind).
_ROWS = {("contact", "phone"): (Contact, "phone", PHONE),
         ("guarantor", "id_number"): (Guarantor, "id_number", ID_NUMBER),
         ("guarantor", "phone"): (Guarantor, "phone", PHONE),
         ("contact_log", "number"): (ContactLogEntry, "number", PHONE)}


def resolve(loan, field):
    """(kind, value) a field key names on `loan`, or None: "borrower.id_number",
    "borrower.phone.<index>", "contact.<id>.phone", "guarantor.<id>.id_number",
    "guarantor.<id>.phone", "contact_log.<id>.number"."""
    parts = str(field or "").split(".")
    borrower = loan.borrower
    if parts == ["borrower", "id_number"]:
        return (ID_NUMBER, borrower.id_number) if borrower is not None else None
    if len(parts) == 3 and parts[:2] == ["borrower", "phone"]:
        phones = list(borrower.phones or []) if borrower is not None else []
        if parts[2].isdigit() and int(parts[2]) < len(phones):
            return PHONE, phones[int(parts[2])]
        return None
    if len(parts) != 3 or (parts[0], parts[2]) not in _ROWS or not parts[1].isdigit() \
            or len(parts[1]) > 9:
        return None
    model, column, kind = _ROWS[(parts[0], parts[2])]
    row = db.session.get(model, int(parts[1]))
    if row is None or row.loan_id != loan.id:
        return None
    return kind, getattr(row, column)


def reveals_in_last_hour(user):
    since = clock.now() - dt.timedelta(hours=1)
    return db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.actor_id == user.id, AuditEvent.action == "pii.revealed",
        AuditEvent.at >= since))


def reveal(loan, user, field, reason):
    """The value `field` names, in full, after recording who revealed which field of which
    case and why (never the value). Refused: a role that may not reveal (NotAllowed), no
    such field, a reason under MIN_REASON characters, more than PII_REVEALS_PER_HOUR reveals
    by the user in the last hour (InvalidData); nothing is recorded then."""
    if not may_reveal(user):
        raise NotAllowed("Your role may not reveal personal data.", code="pii_not_allowed")
    found = resolve(loan, field)
    if found is None or not found[1]:
        raise InvalidData("No such value on this case.", {"field": ["No such value."]},
                          code="pii_no_field")
    reason = " ".join(str(reason or "").split())
    if len(reason) < MIN_REASON or len(reason) > MAX_REASON:
        raise InvalidData("A reason of 5 to 500 characters is required.",
                          {"reason": ["A reason of 5 to 500 characters is required."]},
                          code="pii_reason")
    limit = current_app.config.get("PII_REVEALS_PER_HOUR", DEFAULT_PER_HOUR)
    if reveals_in_last_hour(user) >= limit:
        raise InvalidData("Too many reveals in the last hour.", code="pii_rate_limited")
    kind, value = found
    record("pii.revealed", actor=user, case_id=loan.id,
           data={"loan_no": loan.loan_no, "field": field, "kind": kind, "reason": reason})
    db.session.commit()
    revealed().add(field)
    return value
