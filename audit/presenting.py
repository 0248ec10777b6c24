"""Audit event details as people read them: labelled fields in the reader's language, code
values through their label tables, money, rates and times formatted, ID and phone numbers
masked per the reader's role (pii/rules.py). Used by the case history, the compliance
timeline, search, dossier (HTML and PDF) and CSV. The raw JSON (masked too) is a technical
detail for compliance only."""
import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation

from flask import g, has_request_context
from flask_babel import gettext as _

from audit.field_labels import (FIELD_LABELS, HIDDEN, HIDDEN_FOR, PARTY_KIND_LABELS,
                                PROBLEM_KIND_LABELS, PROCESS_LABELS)
from workflows.clock import BEIJING

TECHNICAL_READERS = frozenset({"compliance"})

MONEY_KEYS = {"amount", "principal", "interest", "penalty", "outstanding", "outstanding_before",
              "outstanding_total", "recovered_amount", "promised_amount", "overdue_amount",
              "total", "paid", "fine", "valuation", "current_outstanding"}
RATE_KEYS = {"interest_rate", "new_interest_rate", "old_interest_rate", "lpr_one_year",
             "current_rate", "proposed_rate", "ltv", "ltv_before", "ltv_after", "ltv_threshold",
             "threshold"}
USER_KEYS = {"approved_by", "proposed_by", "requested_by", "reviewed_by", "decided_by",
             "opinion_by", "holder", "user", "approver", "inspector", "reviewer", "signed_by",
             "username", "account_manager", "entered_by"}
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _code_tables():
    """Every code -> label table, most specific first (merged for the lookup)."""
    from accounts.roles import ROLES
    from cases.models import (FREQUENCY_LABELS, PRODUCT_LABELS, RISK_GROUP_LABELS,
                              STAGE_LABELS, STATUS_LABELS)
    from cases.records import CONTACT_KIND_LABELS, DOCUMENT_KIND_LABELS, OUTCOME_LABELS
    from pii.rules import KIND_LABELS as PII_KIND_LABELS
    from compliance.timeline import KIND_LABELS
    from guarantees import collateral, guarantors
    from notices.defaults import CHANNEL_LABELS, NAMES as NOTICE_NAMES
    return (PII_KIND_LABELS, STAGE_LABELS, STATUS_LABELS, PRODUCT_LABELS, RISK_GROUP_LABELS,
            FREQUENCY_LABELS,
            OUTCOME_LABELS, CONTACT_KIND_LABELS, DOCUMENT_KIND_LABELS, ROLES, PROCESS_LABELS,
            KIND_LABELS, PARTY_KIND_LABELS, PROBLEM_KIND_LABELS,
            # issue 16, after the older tables so that their words for a shared code stay
            guarantors.SOURCE_LABELS, guarantors.CAPACITY_LABELS, guarantors.LICENCE_LABELS,
            guarantors.WEAKER_LABELS,
            collateral.ASSET_TYPE_LABELS, collateral.METHOD_LABELS, collateral.REASON_LABELS,
            collateral.SOURCE_LABELS, CHANNEL_LABELS, NOTICE_NAMES)


def _form_choices():
    """value -> label of every choice of the deployed forms (their newest version first),
    memoized for the request: answers such as "wilful_default", "approve", "spouse"."""
    cache = g.get("_audit_choices") if has_request_context() else None
    if cache is not None:
        return cache
    from extensions import db
    from forms.builder import localized
    from workflows.models import FormDefinition
    choices = {}
    rows = db.session.query(FormDefinition.spec).order_by(FormDefinition.version.desc())
    for (spec,) in rows:
        for field in (spec or {}).get("fields", []):
            for choice in field.get("choices", []) or []:
                if isinstance(choice, dict) and "value" in choice:
                    choices.setdefault(str(choice["value"]),
                                       localized(choice.get("label", choice["value"])))
    if has_request_context():
        g._audit_choices = choices
    return choices


def code_label(value):
    """The label of a code value, or None when it is not a known code."""
    if not isinstance(value, str) or not CODE.match(value):
        return None
    for table in _code_tables():
        if value in table:
            return str(table[value])
    found = _form_choices().get(value)
    return str(found) if found is not None else None


def user_label(username):
    """A user's display name from their username (memoized per request)."""
    if not isinstance(username, str) or not username:
        return None
    cache = g.setdefault("_audit_users", {}) if has_request_context() else {}
    if username not in cache:
        from accounts.models import User
        user = User.query.filter_by(username=username).first()
        cache[username] = user.label if user is not None else None
    return cache[username]


def field_label(key):
    label = FIELD_LABELS.get(key)
    if label is not None:
        return str(label)
    return key.replace("_", " ").capitalize()  # an unknown key still reads as words


def _money(value):
    try:
        return "¥{:,.2f}".format(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return str(value)


def _rate(value):
    try:
        return "{:.2f}%".format(Decimal(str(value)) * 100)
    except (InvalidOperation, ValueError):
        return str(value)


def _time(value):
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def format_value(key, value, action=""):
    """One value as text for the reader; nested mappings and lists as labelled text."""
    if value is None or value == "" or value == [] or value == {}:
        return ""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, dict):
        return "; ".join(f"{field_label(k)}: {v}" for k, v in _pairs(value, action))
    if isinstance(value, list):
        parts = [format_value(key, v, action) for v in value]
        separator = " | " if any(isinstance(v, dict) for v in value) else ", "
        return separator.join(p for p in parts if p)
    if key in MONEY_KEYS or (key == "value" and action.startswith("collateral.")):
        return _money(value)
    if key in RATE_KEYS:
        return _rate(value)
    if action == "pii.revealed" and key == "field":
        from pii.rules import describe_field
        return describe_field(value)
    if key == "process":
        return str(PROCESS_LABELS.get(value, value))
    if key == "category" and action.startswith("risk.") and isinstance(value, int):
        from i18n import current_language
        from monitoring.risk import RISK_CATEGORIES
        names = RISK_CATEGORIES.get(value)
        return f"{value}. {names[current_language()]}" if names else str(value)
    if key in USER_KEYS or (action == "task.reassigned" and key in ("from", "to")):
        return user_label(value) or str(value)
    if isinstance(value, str):
        if ISO_TIME.match(value):
            return _time(value)
        return code_label(value) or value
    return str(value)


def _pairs(data, action=""):
    """(key, text) of a mapping, hidden and empty entries left out."""
    out = []
    hidden = HIDDEN | HIDDEN_FOR.get(action, set())
    for key, value in data.items():
        if key in hidden or key.endswith("_id"):
            continue
        text = format_value(key, value, action)
        if text != "":
            out.append((key, text))
    return out


def _form_pairs(task, submitted):
    """Submitted form data labelled by the task's form (labels and choices of that form)."""
    from workflows.inbox import display_value
    fields = {f["name"]: f for f in (task.form_definition.spec["fields"]
                                     if task is not None and task.form_definition else [])}
    pairs = []
    for key, value in submitted.items():
        if value is None or value == "" or value == []:
            continue
        if key in fields:
            label, text = display_value(fields[key], value)
            if isinstance(value, str) and text == value:
                text = format_value(key, value)  # a free value: still a code or a time?
            pairs.append((str(label), text))
        else:
            text = format_value(key, value)
            if text != "":
                pairs.append((field_label(key), text))
    return pairs


def event_fields(event, task=None, user=None, loan=None):
    """[(label, text)] of an audit event for `user` (default: the logged-in user)."""
    from pii.rules import mask_data
    user = user if user is not None else _current_user()
    data = mask_data(event.data or {}, user, loan)
    if event.action == "task.completed" and isinstance(data.get("data"), dict):
        pairs = _form_pairs(task, data["data"])
        return pairs
    return [(field_label(k), text) for k, text in _pairs(data, event.action)]


def sees_technical(user=None):
    user = user if user is not None else _current_user()
    return bool(getattr(user, "is_authenticated", False) and set(user.roles) & TECHNICAL_READERS)


def technical_json(event, user=None, loan=None):
    """The event's raw details (PII masked for `user`), pretty JSON, unescaped Chinese."""
    from pii.rules import mask_data
    user = user if user is not None else _current_user()
    return json.dumps(mask_data(event.data or {}, user, loan), ensure_ascii=False,
                      sort_keys=True, indent=2, default=str)


def _current_user():
    if not has_request_context():
        return None
    from flask_login import current_user
    return current_user


def register_audit_filters(app):
    """Jinja helpers for templates: audit_fields(event, task, loan), audit_json(event, loan),
    sees_technical()."""
    app.jinja_env.globals["audit_fields"] = lambda event, task=None, loan=None: event_fields(
        event, task, loan=loan)
    app.jinja_env.globals["audit_json"] = lambda event, loan=None: technical_json(
        event, loan=loan)
    app.jinja_env.globals["sees_technical"] = lambda: sees_technical()

