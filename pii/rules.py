"""Personal data protection (PIPL, 个人信息保护法): ID numbers and phone numbers are shown in
full only to the roles whose work needs them (RULES, the one table: README "Personal data
(PIPL)"); everyone else sees them masked and may reveal one value, with a reason, audited
(pii/views.py). The same rule masks the case page, audit histories, CSV, the PDF
dossier and the REST API (a token acts as its user)."""
import re

from flask import has_request_context, request
from flask_babel import lazy_gettext as _l

ID_NUMBER, PHONE = "id_number", "phone"
KINDS = (ID_NUMBER, PHONE)
FULL, OWN, MASKED = "full", "own", "masked"  # OWN: in full on the loans the user manages

# role -> (ID numbers, phone numbers, may reveal a masked value with a reason).
# Minimum necessary: whoever calls needs the phone; whoever files in court or keeps the ledger
# against the ID card needs the ID; reviewers and managers read masked and reveal on demand;
# administrators and process owners run the system, not cases, and may not reveal.
RULES = {
    "account_manager": (OWN, OWN, False),    # their own borrowers; they see no other case
    "back_office": (MASKED, FULL, True),     # due-date reminders by SMS or phone
    "post_loan_officer": (FULL, FULL, True),  # checks the file, keeps the ledger (台账)
    "collector": (MASKED, FULL, True),       # phone collection and visits
    "risk_manager": (MASKED, MASKED, True),
    "dept_head": (MASKED, MASKED, True),
    "general_manager": (MASKED, MASKED, True),
    "legal": (FULL, FULL, False),            # court filings, preservation, enforcement
    "compliance": (MASKED, MASKED, True),    # reviews histories; reveals only with a reason
    "process_owner": (MASKED, MASKED, False),
    "admin": (MASKED, MASKED, False),
}

KIND_LABELS = {ID_NUMBER: _l("ID number"), PHONE: _l("Phone number")}
FIELD_OWNERS = {"borrower": _l("Borrower"), "contact": _l("Contact"),
                "guarantor": _l("Guarantor"), "contact_log": _l("Contact log")}

# Audit data keys that hold such values (intake, the phone call, contacts, guarantors).
PII_KEYS = {"id_number": ID_NUMBER, "phones": PHONE, "phone": PHONE, "number": PHONE,
            "number_called": PHONE, "new_phone": PHONE}


def describe_field(field):
    """A reveal's field key ("borrower.phone.0", "guarantor.3.id_number") in words."""
    parts = str(field or "").split(".")
    kind = {"phone": PHONE, "number": PHONE, "id_number": ID_NUMBER}.get(parts[-1])
    owner = FIELD_OWNERS.get(parts[0])
    if owner is None or kind is None:
        return str(field)
    if parts[0] == "borrower" and len(parts) == 3 and parts[2].isdigit():
        return f"{owner} · {KIND_LABELS[kind]} {int(parts[2]) + 1}"
    return f"{owner} · {KIND_LABELS[kind]}"


def _stars(n):
    return "*" * max(n, 0)


def mask_id_number(value):
    """18-character resident ID (or credit code): the first 6 (region) and last 4 kept,
    110101********1234; any other length keeps the last 4 when over 8 characters, else
    nothing. Same length as the value."""
    if not value:
        return value
    text = str(value)
    n = len(text)
    if n == 18:
        return text[:6] + _stars(8) + text[-4:]
    if n > 8:
        return _stars(n - 4) + text[-4:]
    return _stars(n)


def mask_phone(value):
    """138****5678: 11 characters or more keep the first 3 and last 4; 8 to 10 keep the last
    4; shorter ones nothing. A stored phone mapping ({"type": …, "value": …}) is masked in
    its number entries. Same length as the value."""
    if isinstance(value, dict):
        return {k: (mask_phone(v) if k in ("value", "number", "phone") else v)
                for k, v in value.items()}
    if not value:
        return value
    text = str(value)
    n = len(text)
    if n >= 11:
        return text[:3] + _stars(n - 7) + text[-4:]
    if n >= 8:
        return _stars(n - 4) + text[-4:]
    return _stars(n)


MASKERS = {ID_NUMBER: mask_id_number, PHONE: mask_phone}


def _roles(user):
    if user is None or not getattr(user, "is_authenticated", False):
        return set()
    return set(user.roles)


def sees_in_full(user, kind, loan=None):
    """Whether `user` sees values of `kind` in full (on `loan`, for the own-loans rule)."""
    column = KINDS.index(kind)
    for role in _roles(user):
        rule = RULES.get(role, (MASKED, MASKED, False))[column]
        if rule == FULL or (rule == OWN and loan is not None
                            and loan.account_manager_id == user.id):
            return True
    return False


def may_reveal(user):
    return any(RULES.get(role, (None, None, False))[2] for role in _roles(user))


def revealed():
    """Fields revealed for this response only (set by the reveal view); kept on the request,
    not on `g`, which lives as long as the app context."""
    if not has_request_context():
        return set()
    if not hasattr(request, "pii_revealed"):
        request.pii_revealed = set()
    return request.pii_revealed


def shown(value, kind, user=None, loan=None, field=None):
    """`value` as `user` (default: the logged-in user) may see it: in full, or masked (also
    inside lists)."""
    if value in (None, "", []):
        return value
    user = user if user is not None else _current_user()
    if sees_in_full(user, kind, loan) or (field is not None and field in revealed()):
        return value
    if isinstance(value, (list, tuple)):
        return [MASKERS[kind](v) for v in value]
    return MASKERS[kind](value)


def mask_data(data, user=None, loan=None):
    """A copy of JSON-like `data` (an audit event's details, an API payload) with the values
    under PII_KEYS masked for `user`, at any depth."""
    if isinstance(data, dict):
        return {k: (shown(v, PII_KEYS[k], user, loan) if k in PII_KEYS and
                    isinstance(v, (str, list, dict)) else mask_data(v, user, loan))
                for k, v in data.items()}
    if isinstance(data, list):
        return [mask_data(v, user, loan) for v in data]
    return data


# Numbers inside free text (a task's list of contacts, a note): an 18-character resident ID,
# a mobile number (with or without +86) and a landline with its area code.
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
_PHONE_IN_TEXT = re.compile(r"(?<![0-9])(?:(?:\+?86[- ]?)?1\d{10}|0\d{2,3}-?\d{7,8})(?![0-9])")


def mask_text(text, user=None, loan=None):
    """`text` with the ID numbers and phone numbers in it masked for `user` (default: the
    logged-in user) as the rule says; anything but a string is returned as it is."""
    if not isinstance(text, str) or not text:
        return text
    user = user if user is not None else _current_user()
    if not sees_in_full(user, ID_NUMBER, loan):
        text = _ID_IN_TEXT.sub(lambda m: mask_id_number(m.group()), text)
    if not sees_in_full(user, PHONE, loan):
        text = _PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group()), text)
    return text


def _current_user():
    if not has_request_context():
        return None
    from flask_login import current_user
    return current_user


def register_pii_filters(app):
    """Jinja filters: {{ value|pii_id(current_user, loan, "borrower.id_number") }} and
    {{ value|pii_phone(current_user, loan, "borrower.phone.0") }}; loan and field optional
    (the field names the value for the reveal form, cases/_reveal.html)."""
    @app.template_filter("pii_id")
    def pii_id(value, user=None, loan=None, field=None):
        return shown(value, ID_NUMBER, user or _current_user(), loan, field)

    @app.template_filter("pii_phone")
    def pii_phone(value, user=None, loan=None, field=None):
        from cases.presenters import plain
        result = shown(value, PHONE, user or _current_user(), loan, field)
        return plain(result) if isinstance(result, dict) else result

    # Globals, not a context processor: imported macros (cases/_reveal.html) see them.
    app.jinja_env.globals["pii_masked"] = lambda kind, loan=None, field=None: not (
        sees_in_full(_current_user(), kind, loan) or (field is not None and field in revealed()))
    app.jinja_env.globals["pii_may_reveal"] = lambda: may_reveal(_current_user())
    # The audit readers' helpers (audit_fields, audit_json, sees_technical) with them: the
    # histories they render mask the same values.
    from audit.presenting import register_audit_filters
    register_audit_filters(app)
