"""JSON Schemas (OpenAPI 3.1 = JSON Schema 2020-12) of the API's bodies, registered as
components by api/openapi.py; the views' docstrings refer to them by name.

Response schemas list what the presenters (cases/presenters.py, workflows/inbox.py,
api/reversals.py …) always return; further members may be added later, so objects stay open.
Request schemas say what the parsers (cases/intake.py, ledger/repayments.py, …) accept; the
bounds here are the parsers' bounds, documented, not a second implementation of them.
"""
from cases.intake import (BORROWER_KEYS, COLLATERAL_KEYS, CONTACT_KEYS, GUARANTOR_KEYS,
                          INSTALLMENT_KEYS, LOAN_KEYS, MAX_DATE, MIN_DATE, PRODUCTS)
from guarantees.models import ASSET_TYPES


def nullable(schema):
    """The schema, or null (3.1 style: a type list, not `nullable: true`)."""
    schema = dict(schema)
    kind = schema.get("type")
    if kind is not None:
        schema["type"] = [kind, "null"] if isinstance(kind, str) else [*kind, "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


STRING = {"type": "string"}
DATE = {"type": "string", "format": "date"}
DATE_TIME = {"type": "string", "format": "date-time"}
MONEY = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$",
         "description": "A decimal amount in yuan as a string, two decimals."}
RATE = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$",
        "description": "An annual rate as a decimal fraction, e.g. 0.0435."}
MONEY_IN = {"type": ["string", "number"], "examples": ["150000.00"],
            "description": "A positive amount, at most 1000000000000.00 and two decimals; "
                           "a string is safer than a JSON number."}
DATE_IN = {"type": "string", "format": "date",
           "description": f"YYYY-MM-DD, from {MIN_DATE} to {MAX_DATE}."}


def obj(properties, required=(), closed=False, **extra):
    schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


ERROR = obj({
    "error": {"type": "string", "description": "What went wrong, in English."},
    "field_errors": {"type": "object", "additionalProperties": {
        "type": "array", "items": {"type": "string"}},
        "description": "Messages per field, by path (e.g. `schedule[2].due_on`)."},
    "differences": {"type": "array", "items": {"type": "string"},
                    "description": "A loan sent again with other data: the fields that differ."},
}, required=["error"], description="Every error answer: a message, and field errors when the "
                                   "request had bad values.")

TASK = obj({
    "id": {"type": "integer"}, "process": STRING, "bpmn_id": STRING, "name": STRING,
    "role": nullable(STRING), "loan_no": nullable(STRING), "claimed_by": nullable(STRING),
    "due_at": nullable(DATE_TIME), "priority": {"type": "integer"}, "state": STRING,
    "created_at": DATE_TIME,
    "process_name": obj({"en": STRING, "zh_CN": STRING}, required=["en", "zh_CN"],
                        description="The process's name in both languages, from its BPMN."),
    "step_name": obj({"en": STRING, "zh_CN": STRING}, required=["en", "zh_CN"],
                     description="The step's name in both languages, from its BPMN."),
}, required=["id", "process", "bpmn_id", "name", "role", "loan_no", "claimed_by", "due_at",
             "priority", "state", "created_at", "process_name", "step_name"])

TASK_FIELD = obj({
    "name": STRING, "type": {"type": "string", "enum": ["text", "textarea", "integer",
                                                       "decimal", "date", "boolean", "select",
                                                       "multiselect", "photos", "location"]},
    "label": STRING, "required": {"type": "boolean"},
    "choices": nullable({"type": "array", "items": STRING}),
}, required=["name", "type", "label", "required", "choices"])

TASK_DETAIL = {"allOf": [{"$ref": "#/components/schemas/Task"}, obj({
    "instructions": STRING,
    "fields": {"type": "array", "items": {"$ref": "#/components/schemas/TaskField"}},
    "data": nullable({"type": "object"}),
    "previous": nullable({"type": "object", "description":
                          "For an open step done before in the same process (a file sent "
                          "back): what was submitted last time, to start from; else null."}),
}, required=["instructions", "fields", "data", "previous"])]}

TASK_PAGE = obj({
    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
    "page": {"type": "integer", "minimum": 1}, "per_page": {"type": "integer", "minimum": 1},
    "total": {"type": "integer", "minimum": 0, "maximum": 1000,
              "description": "Tasks in the inbox, counted up to 1000."},
    "total_capped": {"type": "boolean",
                     "description": "True when there are more than `total` tasks."},
    "next": nullable({"type": "string", "description": "Pass as `after` for the next page; "
                                                         "null on the last page."}),
    "previous": nullable({"type": "string", "description": "Pass as `before` for the page "
                                                             "before; null on the first."}),
}, required=["items", "page", "per_page", "total", "total_capped", "next", "previous"])

TASK_COMPLETION = obj({
    "data": {"type": "object", "description": "The task form's values by field name (see "
                                              "`fields` of GET /tasks/{task_id})."},
}, required=["data"])

# A form with a photos field: the values as JSON text, the pictures as file parts.
TASK_COMPLETION_WITH_PHOTOS = {
    "type": "object", "required": ["data"],
    "description": "Each file part is named after the form's photos field; repeat it for "
                   "several pictures (JPEG or PNG).",
    "properties": {"data": {"type": "string", "description": "The JSON object of the form's "
                                                             "values, as in TaskCompletion."}},
    "additionalProperties": {"type": "array", "items": {"type": "string",
                                                        "format": "binary"}}}

PARTY = obj({"kind": {"type": "string", "enum": ["person", "company"]}, "name": STRING,
             "id_number": STRING, "phones": {"type": "array", "items": {}},
             "addresses": {"type": "array", "items": {}}},
            required=["kind", "name", "id_number", "phones", "addresses"])

CASE = obj({
    "loan_no": STRING, "borrower_name": STRING, "principal": MONEY, "interest_rate": RATE,
    "disbursed_on": DATE, "maturity_on": DATE, "account_manager": STRING,
    "status": {"type": "string", "enum": ["handover", "servicing", "closing", "closed"]},
    "risk_group": nullable(STRING), "inspection_frequency": nullable(STRING),
    "product": STRING, "outstanding": MONEY, "dpd": {"type": "integer"}, "stage": STRING,
    "closed_at": nullable(DATE_TIME), "created_at": DATE_TIME,
    "purpose": nullable(STRING), "repayment_account": nullable(STRING), "borrower": PARTY,
    "contacts": {"type": "array", "items": obj({
        "name": STRING, "relationship": STRING, "phone": STRING, "address": STRING,
        "knows_about_loan": {"type": "boolean"}})},
    "guarantors": {"type": "array", "items": obj({
        "kind": STRING, "name": STRING, "id_number": STRING, "phone": STRING,
        "address": STRING})},
    "collateral": {"type": "array", "items": obj({
        "kind": STRING, "description": STRING, "location": STRING,
        "area": nullable(STRING), "valuation": nullable(MONEY),
        "registration_no": STRING, "released_at": nullable(DATE_TIME)})},
    "schedule": {"type": "array", "items": obj({
        "seq": {"type": "integer"}, "due_on": DATE, "principal": nullable(MONEY),
        "interest": nullable(MONEY), "penalty": nullable(MONEY),
        "outstanding": nullable(MONEY), "paid_off_on": nullable(DATE)},
        required=["seq", "due_on"])},
    "open_tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
}, required=["loan_no", "borrower_name", "principal", "interest_rate", "disbursed_on",
             "maturity_on", "account_manager", "status", "outstanding", "borrower", "schedule",
             "open_tasks"])

HISTORY = obj({
    "loan_no": STRING,
    "events": {"type": "array", "items": obj({
        "id": {"type": "integer"}, "at": DATE_TIME, "action": STRING,
        "actor": nullable(STRING), "instance_id": nullable({"type": "integer"}),
        "task_id": nullable({"type": "integer"}), "data": {"type": "object"},
        "hash": STRING}, required=["id", "at", "action", "actor", "data"])},
}, required=["loan_no", "events"])

_TEXT = {"type": "string", "maxLength": 200}
LOAN_INPUT = obj({
    "loan_no": {"type": "string", "minLength": 1, "maxLength": 40,
                "description": "Unique; no control, formatting or bidirectional characters."},
    "product": {"type": "string", "enum": list(PRODUCTS)},
    "principal": MONEY_IN,
    "interest_rate": {"type": ["string", "number"], "examples": ["0.0435"],
                      "description": "Annual rate as a fraction below 1, at most six "
                                     "decimals."},
    "disbursed_on": DATE_IN, "maturity_on": DATE_IN,
    "account_manager": {"type": "string", "maxLength": 80,
                        "description": "User name of an account manager."},
    "purpose": {"type": "string", "maxLength": 2000},
    "repayment_account": {"type": "string", "maxLength": 40},
    "borrower_name": {**_TEXT, "description": "The minimal form of `borrower`: a person "
                                              "known by name."},
    "borrower": obj({
        "kind": {"type": "string", "enum": ["person", "company"]}, "name": _TEXT,
        "id_number": {"type": "string", "maxLength": 40,
                      "description": "Resident ID (GB 11643) or unified social credit "
                                     "code (GB 32100)."},
        "phones": {"type": "array", "items": {"type": "string", "maxLength": 40}},
        "addresses": {"type": "array", "items": {"type": "string", "maxLength": 300}},
    }, closed=True),
    "contacts": {"type": "array", "items": obj({
        "name": {"type": "string", "maxLength": 120},
        "relationship": {"type": "string", "maxLength": 40},
        "phone": {"type": "string", "maxLength": 40},
        "address": {"type": "string", "maxLength": 300},
        "knows_about_loan": {"type": "boolean"}}, required=["name"], closed=True)},
    "guarantors": {"type": "array", "items": obj({
        "kind": {"type": "string", "enum": ["person", "company"]}, "name": _TEXT,
        "id_number": {"type": "string", "maxLength": 40},
        "phone": {"type": "string", "maxLength": 40},
        "address": {"type": "string", "maxLength": 300}}, required=["name"], closed=True)},
    "collateral": {"type": "array", "items": obj({
        "kind": {"type": "string", "enum": ["mortgage", "pledge"]},
        "description": {"type": "string", "maxLength": 300},
        "location": {"type": "string", "maxLength": 300},
        "area": MONEY_IN, "valuation": MONEY_IN,
        "registration_no": {"type": "string", "maxLength": 80},
        # issue 16: what the collateral watch needs
        "asset_type": {"type": "string", "enum": list(ASSET_TYPES)},
        "registration_office": {"type": "string", "maxLength": 120},
        "registered_on": DATE_IN, "registration_expires_on": DATE_IN,
        "insurance_policy": {"type": "string", "maxLength": 80},
        "insurer": {"type": "string", "maxLength": 120}, "insurance_expires_on": DATE_IN},
        required=["kind", "description"], closed=True)},
    "schedule": {"type": "array", "minItems": 1, "items": obj({
        "due_on": DATE_IN, "principal": MONEY_IN, "interest": MONEY_IN},
        required=["due_on", "principal"], closed=True),
        "description": "Installments in date order, the last on the maturity date; left out, "
                       "one installment at maturity."},
}, required=["loan_no", "principal", "interest_rate", "disbursed_on", "maturity_on",
             "account_manager"], closed=True,
    description="A loan as core banking sends it. Either `borrower` or `borrower_name`.")

REPAYMENT_INPUT = obj({
    "amount": MONEY_IN,
    "paid_at": {"type": "string", "examples": ["2026-04-01T10:00:00+08:00"],
                "description": "ISO 8601 date or date-time of the value date (Beijing time "
                               "without an offset); not more than a year before the loan was "
                               "disbursed nor more than a year in the future."},
    "external_ref": {"type": "string", "minLength": 1, "maxLength": 80,
                     "description": "Core banking's unique reference; a repeat is a 409."},
}, required=["amount", "paid_at", "external_ref"])

REPAYMENT = obj({
    "loan_no": STRING, "external_ref": STRING, "amount": MONEY, "paid_at": DATE_TIME,
    "principal": MONEY, "interest": MONEY, "penalty": MONEY,
    "allocation": {"type": ["array", "object", "null"]},
    "outstanding": MONEY, "status": STRING,
}, required=["loan_no", "external_ref", "amount", "paid_at", "principal", "interest",
             "penalty", "outstanding", "status"])

REVERSAL_REQUEST = obj({"reason": {"type": "string", "minLength": 1, "maxLength": 2000}},
                       required=["reason"])
REVERSAL_DECISION = obj({"decision": {"type": "string", "enum": ["approve", "reject"]},
                         "note": {"type": "string", "maxLength": 2000}}, required=["decision"])
REVERSAL = obj({
    "id": {"type": "integer"},
    "status": {"type": "string", "enum": ["pending", "approved", "rejected"]},
    "reason": STRING, "external_ref": STRING, "amount": MONEY, "requested_by": STRING,
    "requested_at": DATE_TIME, "decided_by": nullable(STRING),
    "decided_at": nullable(DATE_TIME), "decision_note": nullable(STRING),
    "repayment_reversed_at": nullable(DATE_TIME), "loan_no": STRING, "outstanding": MONEY,
    "loan_status": STRING,
}, required=["id", "status", "reason", "external_ref", "amount", "requested_by",
             "requested_at", "loan_no", "outstanding", "loan_status"])

EXTENSION_INPUT = obj({
    "new_maturity_on": {**DATE_IN, "description": "After the current maturity date."},
    "proposed_rate": {"type": ["string", "number"], "examples": ["0.05"],
                      "description": "Between 0 and 1, at most six decimals."},
    "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
}, required=["new_maturity_on", "proposed_rate", "reason"])
EXTENSION = obj({
    "loan_no": STRING, "instance_id": {"type": "integer"},
    "process": {"type": "string", "const": "extension"}, "status": STRING,
    "new_maturity_on": nullable(STRING), "proposed_rate": STRING,
}, required=["loan_no", "instance_id", "process", "status"])

SCHEMAS = {
    "Error": ERROR, "Task": TASK, "TaskField": TASK_FIELD, "TaskDetail": TASK_DETAIL,
    "TaskPage": TASK_PAGE, "TaskCompletion": TASK_COMPLETION,
    "TaskCompletionWithPhotos": TASK_COMPLETION_WITH_PHOTOS, "Case": CASE,
    "CaseHistory": HISTORY, "LoanInput": LOAN_INPUT, "RepaymentInput": REPAYMENT_INPUT,
    "Repayment": REPAYMENT, "ReversalRequest": REVERSAL_REQUEST,
    "ReversalDecision": REVERSAL_DECISION, "Reversal": REVERSAL,
    "ExtensionInput": EXTENSION_INPUT, "Extension": EXTENSION,
}

# The intake's keys, so a test can check the request schema names every one of them.
INTAKE_KEYS = {"loan": LOAN_KEYS, "borrower": BORROWER_KEYS, "contacts": CONTACT_KEYS,
               "guarantors": GUARANTOR_KEYS, "collateral": COLLATERAL_KEYS,
               "schedule": INSTALLMENT_KEYS}
