"""Loan intake: check a loan as core banking (JSON), the CSV import or the staff form send it,
and bring it to one canonical, JSON-safe form (strings for decimals and dates).

`parse_intake` lists every field error at once (InvalidData, code "invalid") under paths like
"borrower.id_number" or "schedule[2].due_on". The canonical form is stored in Loan.intake and
compared with `differences` when the same loan number arrives again.

Messages are marked with N_(): the API returns them in English, the web pages translate them.
"""
import csv
import datetime as dt
import io
import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from accounts.models import User
from cases.models import PRODUCT_LABELS
from extensions import db
from i18n import N_
from workflows.errors import InvalidData


PRODUCTS = tuple(PRODUCT_LABELS)
PARTY_KINDS = ("person", "company")
COLLATERAL_KINDS = ("mortgage", "pledge")
CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.000001")

LOAN_KEYS = ("loan_no", "product", "principal", "interest_rate", "disbursed_on", "maturity_on",
             "account_manager", "purpose", "repayment_account", "borrower", "borrower_name",
             "contacts", "guarantors", "collateral", "schedule")
BORROWER_KEYS = ("kind", "name", "id_number", "phones", "addresses")
CONTACT_KEYS = ("name", "relationship", "phone", "address", "knows_about_loan")
GUARANTOR_KEYS = ("kind", "name", "id_number", "phone", "address")
COLLATERAL_KEYS = ("kind", "description", "location", "area", "valuation", "registration_no",
                   "asset_type", "registration_office", "registered_on",
                   "registration_expires_on", "insurance_policy", "insurer",
                   "insurance_expires_on")
# Issue 16: the registration and insurance of an item. In the canonical form only when given,
# so a loan registered before them compares equal when it is sent again.
COLLATERAL_DATES = ("registered_on", "registration_expires_on", "insurance_expires_on")
INSTALLMENT_KEYS = ("due_on", "principal", "interest")

# Bounds: no amount above a trillion (principal, valuation, installments), dates within
# sane years, so no value overflows a column, a date calculation or Decimal's precision.
MAX_AMOUNT = Decimal(10) ** 12
MIN_DATE = dt.date(1990, 1, 1)
MAX_DATE = dt.date(2100, 12, 31)
# Invisible characters that make text display in another order than it is stored: the
# Arabic letter mark, LRM/RLM, the embeddings and overrides (U+202A–U+202E, "Trojan Source")
# and the isolates (U+2066–U+2069).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                          "\u2066\u2067\u2068\u2069")
BAD_CHARACTERS = N_("Must not contain control, formatting or bidirectional characters.")

REQUIRED = N_("This field is required.")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()-]{3,38}[0-9]$")

# GB 11643-1999: 17 digits (address code, birth date YYYYMMDD, sequence) and a check character.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
ID_RE = re.compile(r"^\d{17}[\dX]$")
# GB 32100-2015: registration authority, organisation type, 6-digit administrative division,
# 9-character organisation code, check character; letters I, O, Z, S, V are not used.
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
USCC_RE = re.compile(r"^[0-9A-HJ-NP-RTUWXY]{2}\d{6}[0-9A-HJ-NP-RTUWXY]{10}$")


def bad_character(value, identifier=False):
    """The first character of `value` that no field may hold, or None. Text may hold tabs and
    line breaks, but no other control character (NUL included), no unpaired surrogate and no
    bidirectional control. An identifier (a loan number, a reference, an ID number) holds no
    control, format, private-use, unassigned or surrogate character and no line or paragraph
    separator at all."""
    for ch in value:
        category = unicodedata.category(ch)
        if identifier:
            if category[0] == "C" or category in ("Zl", "Zp"):
                return ch
        elif (category == "Cc" and ch not in "\t\n\r") or category == "Cs" or \
                ch in BIDI_CONTROLS:
            return ch
    return None


def resident_id_ok(value):
    """An 18-character resident identity number with a real birth date and a valid check
    character (GB 11643)."""
    if not ID_RE.match(value):
        return False
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if born.year < 1900:
        return False
    total = sum(int(c) * w for c, w in zip(value[:17], ID_WEIGHTS))
    return ID_CHECK[total % 11] == value[17]


def uscc_ok(value):
    """An 18-character unified social credit code with a valid check character (GB 32100)."""
    if not USCC_RE.match(value):
        return False
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(value[:17], USCC_WEIGHTS))
    return USCC_CHARSET[(31 - total % 31) % 31] == value[17]


@dataclass
class LoanIntake:
    """A checked loan: the canonical payload and the account manager it names."""
    canonical: dict
    manager: User

    @property
    def loan_no(self):
        return self.canonical["loan_no"]


class _Reader:
    """Reads values out of the payload, collecting every error by its path."""

    def __init__(self):
        self.errors = {}

    def error(self, path, message):
        self.errors.setdefault(path, []).append(message)

    def unknown(self, obj, allowed, prefix=""):
        for key in obj:
            if key not in allowed:
                self.error(f"{prefix}{key}", N_("Unknown field."))

    def obj(self, value, path):
        if isinstance(value, dict):
            return value
        self.error(path, N_("Must be an object."))
        return None

    def items(self, value, path):
        """A list; absent or null is an empty one."""
        if value is None:
            return []
        if isinstance(value, list):
            return value
        self.error(path, N_("Must be a list."))
        return []

    def text(self, value, path, required=False, max_len=200, identifier=False):
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.error(path, REQUIRED)
            return ""
        if isinstance(value, bool) or not isinstance(value, (str, int)) or \
                (isinstance(value, int) and abs(value) >= 10 ** max_len):
            self.error(path, N_("Must be text."))
            return ""
        value = str(value).strip()
        if len(value) > max_len:
            self.error(path, N_("Too long."))
        elif bad_character(value, identifier) is not None:
            self.error(path, BAD_CHARACTERS)
        return value

    def choice(self, value, path, choices, default=None):
        value = self.text(value, path, required=default is None, max_len=40)
        if not value:
            return default
        if value not in choices:
            self.error(path, N_("Not one of the allowed values."))
        return value

    def number(self, value, path, required=True, places=CENT, digits=18, zero_ok=False,
               below=None, too_large=N_("Too large.")):
        """A positive decimal (or zero when zero_ok) with at most `places` decimals and
        `digits` digits in all, at most MAX_AMOUNT and less than `below`; returns it quantized,
        or None. The bounds are checked before quantizing: 1e30 is too large, not a crash."""
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.error(path, REQUIRED)
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)) or \
                (isinstance(value, str) and len(value) > 100):
            self.error(path, N_("Must be a positive number."))
            return None
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or number < 0 or \
                (number == 0 and not zero_ok):
            self.error(path, N_("Must be zero or a positive number.") if zero_ok
                       else N_("Must be a positive number."))
            return None
        if number > MAX_AMOUNT or (below is not None and number >= below):
            self.error(path, too_large)
            return None
        if number != number.quantize(places):
            self.error(path, N_("Too many decimal places."))
            return None
        number = number.quantize(places)
        if len(number.as_tuple().digits) > digits:
            self.error(path, too_large)
            return None
        return number

    def date(self, value, path, required=True):
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.error(path, REQUIRED)
            return None
        try:
            if not isinstance(value, str) or not DATE_RE.match(value.strip()):
                raise ValueError
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            self.error(path, N_("Must be a date as YYYY-MM-DD."))
            return None
        if not MIN_DATE <= day <= MAX_DATE:
            self.error(path, N_("Must be between 1990-01-01 and 2100-12-31."))
            return None
        return day

    def phone(self, value, path, required=False):
        value = self.text(value, path, required=required, max_len=40)
        if value and not PHONE_RE.match(value):
            self.error(path, N_("Not a valid phone number."))
        return value

    def id_number(self, value, path, kind):
        value = self.text(value, path, max_len=40, identifier=True).upper().replace(" ", "")
        if not value or kind not in PARTY_KINDS:
            return value
        if kind == "person" and not resident_id_ok(value):
            self.error(path, N_("Not a valid resident ID number (18 characters, check "
                                "digit per GB 11643)."))
        elif kind == "company" and not uscc_ok(value):
            self.error(path, N_("Not a valid unified social credit code (18 characters, "
                                "check character per GB 32100)."))
        return value

    def flag(self, value, path):
        if value is None:
            return False
        if not isinstance(value, bool):
            self.error(path, N_("Must be true or false."))
            return False
        return value


def _money(value):
    return None if value is None else str(value)


def default_schedule(principal, rate, disbursed_on, maturity_on):
    """One installment at maturity: the whole principal, interest for the days held."""
    days = (maturity_on - disbursed_on).days
    interest = (principal * rate * days / Decimal(365)).quantize(CENT, rounding=ROUND_HALF_UP)
    return [{"due_on": maturity_on.isoformat(), "principal": str(principal),
             "interest": str(interest)}]


def _borrower(r, payload):
    raw = payload.get("borrower")
    if raw is None:
        # The minimal form: a person known only by name.
        name = r.text(payload.get("borrower_name"), "borrower_name", required=True)
        return {"kind": "person", "name": name, "id_number": "", "phones": [], "addresses": []}
    raw = r.obj(raw, "borrower")
    if raw is None:
        return None
    r.unknown(raw, BORROWER_KEYS, "borrower.")
    kind = r.choice(raw.get("kind"), "borrower.kind", PARTY_KINDS, default="person")
    borrower = {"kind": kind,
                "name": r.text(raw.get("name"), "borrower.name", required=True),
                "id_number": r.id_number(raw.get("id_number"), "borrower.id_number", kind),
                "phones": [r.phone(p, f"borrower.phones[{i}]", required=True)
                           for i, p in enumerate(r.items(raw.get("phones"), "borrower.phones"))],
                "addresses": [r.text(a, f"borrower.addresses[{i}]", required=True, max_len=300)
                              for i, a in enumerate(r.items(raw.get("addresses"),
                                                            "borrower.addresses"))]}
    alias = payload.get("borrower_name")
    if alias is not None and str(alias).strip() not in ("", borrower["name"]):
        r.error("borrower_name", N_("Differs from the borrower's name."))
    return borrower


def _contacts(r, payload):
    out = []
    for i, raw in enumerate(r.items(payload.get("contacts"), "contacts")):
        p = f"contacts[{i}]"
        if r.obj(raw, p) is None:
            continue
        r.unknown(raw, CONTACT_KEYS, p + ".")
        out.append({"name": r.text(raw.get("name"), p + ".name", required=True, max_len=120),
                    "relationship": r.text(raw.get("relationship"), p + ".relationship",
                                           max_len=40),
                    "phone": r.phone(raw.get("phone"), p + ".phone"),
                    "address": r.text(raw.get("address"), p + ".address", max_len=300),
                    "knows_about_loan": r.flag(raw.get("knows_about_loan"),
                                               p + ".knows_about_loan")})
    return out


def _guarantors(r, payload):
    out = []
    for i, raw in enumerate(r.items(payload.get("guarantors"), "guarantors")):
        p = f"guarantors[{i}]"
        if r.obj(raw, p) is None:
            continue
        r.unknown(raw, GUARANTOR_KEYS, p + ".")
        kind = r.choice(raw.get("kind"), p + ".kind", PARTY_KINDS, default="person")
        out.append({"kind": kind,
                    "name": r.text(raw.get("name"), p + ".name", required=True),
                    "id_number": r.id_number(raw.get("id_number"), p + ".id_number", kind),
                    "phone": r.phone(raw.get("phone"), p + ".phone"),
                    "address": r.text(raw.get("address"), p + ".address", max_len=300)})
    return out


def _collateral(r, payload):
    out = []
    for i, raw in enumerate(r.items(payload.get("collateral"), "collateral")):
        p = f"collateral[{i}]"
        if r.obj(raw, p) is None:
            continue
        r.unknown(raw, COLLATERAL_KEYS, p + ".")
        out.append({"kind": r.choice(raw.get("kind"), p + ".kind", COLLATERAL_KINDS),
                    "description": r.text(raw.get("description"), p + ".description",
                                          required=True, max_len=300),
                    "location": r.text(raw.get("location"), p + ".location", max_len=300),
                    "area": _money(r.number(raw.get("area"), p + ".area", required=False,
                                            digits=12)),
                    "valuation": _money(r.number(raw.get("valuation"), p + ".valuation",
                                                 required=False)),
                    "registration_no": r.text(raw.get("registration_no"),
                                              p + ".registration_no", max_len=80,
                                              identifier=True)})
        out[-1].update(_collateral_records(r, raw, p))
    return out


def _collateral_records(r, raw, p):
    """The asset type, registration and insurance of one item (issue 16), only those given."""
    from guarantees.models import ASSET_TYPES
    out = {}
    if raw.get("asset_type") not in (None, ""):
        out["asset_type"] = r.choice(raw.get("asset_type"), p + ".asset_type", ASSET_TYPES)
    for name, max_len, identifier in (("registration_office", 120, False),
                                      ("insurance_policy", 80, True), ("insurer", 120, False)):
        if raw.get(name) not in (None, ""):
            out[name] = r.text(raw.get(name), f"{p}.{name}", max_len=max_len,
                               identifier=identifier)
    days = {}
    for name in COLLATERAL_DATES:
        if raw.get(name) not in (None, ""):
            days[name] = r.date(raw.get(name), f"{p}.{name}")
            out[name] = days[name].isoformat() if days[name] else None
    registered, expires = days.get("registered_on"), days.get("registration_expires_on")
    if registered and expires and expires <= registered:
        r.error(p + ".registration_expires_on", N_("Must be after the registration date."))
    if expires and not (raw.get("registration_no") or "").strip():
        r.error(p + ".registration_no", N_("Enter the registration number with its expiry."))
    if days.get("insurance_expires_on") and not out.get("insurance_policy"):
        r.error(p + ".insurance_policy", N_("Enter the policy number with its expiry."))
    return out


def _schedule(r, payload, principal, rate, disbursed_on, maturity_on):
    raw = payload.get("schedule")
    complete = None not in (principal, rate, disbursed_on, maturity_on) and \
        maturity_on > disbursed_on
    if raw is None:
        return default_schedule(principal, rate, disbursed_on, maturity_on) if complete else []
    rows = r.items(raw, "schedule")
    if isinstance(raw, list) and not rows:
        r.error("schedule", N_("At least one installment, or leave the schedule out."))
    out, previous = [], None
    for i, item in enumerate(rows):
        p = f"schedule[{i}]"
        if r.obj(item, p) is None:
            continue
        r.unknown(item, INSTALLMENT_KEYS, p + ".")
        due = r.date(item.get("due_on"), p + ".due_on")
        part = r.number(item.get("principal"), p + ".principal", zero_ok=True)
        interest = r.number(item.get("interest"), p + ".interest", required=False,
                            zero_ok=True)
        interest = Decimal("0.00") if interest is None else interest
        if due is not None:
            if previous is not None and due <= previous:
                r.error(p + ".due_on", N_("Must be after the previous due date."))
            if disbursed_on is not None and due <= disbursed_on:
                r.error(p + ".due_on", N_("Must be after the disbursement date."))
            if maturity_on is not None and due > maturity_on:
                r.error(p + ".due_on", N_("Must not be after the maturity date."))
            elif maturity_on is not None and i == len(rows) - 1 and due != maturity_on:
                r.error(p + ".due_on", N_("The last installment must be due on the maturity "
                                          "date."))
            previous = due
        if part is not None and part == 0 and interest == 0:
            r.error(p + ".principal", N_("An installment must have principal or interest."))
        out.append({"due_on": due.isoformat() if due else None, "principal": _money(part),
                    "interest": str(interest)})
    if principal is not None and out and len(out) == len(rows) and \
            all(i["principal"] is not None for i in out):
        if sum(Decimal(i["principal"]) for i in out) != principal:
            r.error("schedule", N_("The installment principals must add up to the principal."))
    return out


# Built once, so SQLAlchemy computes its cache key once per process, not per loan.
_MANAGER = (select(User).where(User.username == bindparam("username"))
            .options(joinedload(User.role_rows)))


def find_manager(username, managers=None):
    """The user named, with their roles, in one query; `managers` (a dict) remembers the
    users already looked up, so a batch reads each account manager once."""
    if managers is not None and username in managers:
        return managers[username]
    user = db.session.scalars(_MANAGER, {"username": username}).unique().first()
    if managers is not None:
        managers[username] = user
    return user


def parse_intake(payload, managers=None):
    """Check a loan payload and return its LoanIntake; InvalidData lists every bad field.
    `managers`: a dict shared by the rows of a batch (see find_manager)."""
    r = _Reader()
    if not isinstance(payload, dict):
        raise InvalidData("the loan must be an object", code="invalid")
    r.unknown(payload, LOAN_KEYS)
    loan_no = r.text(payload.get("loan_no"), "loan_no", required=True, max_len=40,
                     identifier=True)
    product = r.choice(payload.get("product"), "product", PRODUCTS, default="term")
    principal = r.number(payload.get("principal"), "principal")
    rate = r.number(payload.get("interest_rate"), "interest_rate", places=RATE_PLACES,
                    digits=9, below=Decimal(1),
                    too_large=N_("Write the annual rate as a fraction, e.g. 0.0435."))
    disbursed_on = r.date(payload.get("disbursed_on"), "disbursed_on")
    maturity_on = r.date(payload.get("maturity_on"), "maturity_on")
    if disbursed_on and maturity_on and maturity_on <= disbursed_on:
        r.error("maturity_on", N_("Must be after the disbursement date."))
    username = r.text(payload.get("account_manager"), "account_manager", required=True,
                      max_len=80, identifier=True)
    manager = None
    if username:
        manager = find_manager(username, managers)
        if manager is None or "account_manager" not in manager.roles:
            r.error("account_manager", N_("No account manager with this user name."))
    canonical = {
        "loan_no": loan_no, "product": product, "principal": _money(principal),
        "interest_rate": _money(rate),
        "disbursed_on": disbursed_on.isoformat() if disbursed_on else None,
        "maturity_on": maturity_on.isoformat() if maturity_on else None,
        "account_manager": username,
        "purpose": r.text(payload.get("purpose"), "purpose", max_len=2000),
        "repayment_account": r.text(payload.get("repayment_account"), "repayment_account",
                                    max_len=40, identifier=True),
        "borrower": _borrower(r, payload),
        "contacts": _contacts(r, payload),
        "guarantors": _guarantors(r, payload),
        "collateral": _collateral(r, payload),
        "schedule": _schedule(r, payload, principal, rate, disbursed_on, maturity_on),
    }
    if r.errors:
        raise InvalidData("the loan has errors", field_errors=r.errors, code="invalid")
    return LoanIntake(canonical, manager)


def differences(old, new, path=""):
    """Paths where two canonical payloads differ: into objects, and into lists of objects of
    the same length; a list of plain values, or one that changed length, differs as a whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(new) + [k for k in old if k not in new]
        return [d for k in keys
                for d in differences(old.get(k), new.get(k), f"{path}.{k}" if path else k)]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and \
            all(isinstance(x, dict) for x in old + new):
        return [d for i, (a, b) in enumerate(zip(old, new))
                for d in differences(a, b, f"{path}[{i}]")]
    return [] if old == new else [path]


# The flat form of a loan: the CSV import's columns and the staff form's fields.
FLAT_COLUMNS = ("loan_no", "product", "borrower_kind", "borrower_name", "borrower_id_number",
                "borrower_phone", "borrower_address", "principal", "interest_rate",
                "disbursed_on", "maturity_on", "account_manager", "purpose",
                "repayment_account", "schedule")
FLAT_REQUIRED = ("loan_no", "borrower_name", "principal", "interest_rate", "disbursed_on",
                 "maturity_on", "account_manager")
_SEPARATOR = re.compile(r"[;；]")
_BORROWER_FLAT = {"borrower.kind": "borrower_kind", "borrower.name": "borrower_name",
                  "borrower.id_number": "borrower_id_number", "borrower.phones": "borrower_phone",
                  "borrower.addresses": "borrower_address"}


def flat_field(path):
    """The flat column or form field an intake path belongs to ("borrower.phones[1]" →
    "borrower_phone"); other paths are returned as they are."""
    for prefix, column in _BORROWER_FLAT.items():
        if path == prefix or path.startswith(prefix + "["):
            return column
    return path


def _split(value):
    return [part.strip() for part in _SEPARATOR.split(value or "") if part.strip()]


def payload_from_flat(row):
    """Turn flat text values (a CSV row, a submitted form) into an intake payload. Several
    phones or addresses are separated by ";". The schedule is written
    "due_on:principal:interest;…" (interest may be left out). Returns (payload, errors)."""
    values = {k: (row.get(k) or "").strip() for k in FLAT_COLUMNS}
    payload = {k: values[k] for k in ("loan_no", "product", "principal", "interest_rate",
                                      "disbursed_on", "maturity_on", "account_manager",
                                      "purpose", "repayment_account") if values[k]}
    payload["borrower"] = {"kind": values["borrower_kind"] or "person",
                           "name": values["borrower_name"],
                           "id_number": values["borrower_id_number"],
                           "phones": _split(values["borrower_phone"]),
                           "addresses": _split(values["borrower_address"])}
    errors = {}
    if values["schedule"]:
        payload["schedule"] = []
        for i, part in enumerate(_split(values["schedule"])):
            pieces = [p.strip() for p in part.split(":")]
            if len(pieces) not in (2, 3):
                # Kept in place so the items after it keep their numbers.
                errors[f"schedule[{i}]"] = [N_("Write each installment as "
                                               "due date:principal:interest.")]
                payload["schedule"].append(part)
            else:
                payload["schedule"].append(dict(zip(INSTALLMENT_KEYS, pieces)))
    return payload, errors


def parse_flat(row, managers=None):
    """parse_intake for flat values; errors are keyed by flat column names."""
    if None in row:
        raise InvalidData("the row has more cells than the header has columns", code="invalid",
                          field_errors={"row": [N_("More cells than the header has columns.")]})
    payload, errors = payload_from_flat(row)
    try:
        intake = parse_intake(payload, managers)
    except InvalidData as exc:
        for path, messages in exc.field_errors.items():
            if path not in errors:  # a malformed schedule item is already explained
                errors.setdefault(flat_field(path), []).extend(messages)
    if errors:
        raise InvalidData("the loan has errors", field_errors=errors, code="invalid")
    return intake


class CsvError(ValueError):
    """A loan CSV that cannot be read at all (encoding, header)."""


def read_loan_csv(data):
    """The rows of a loan CSV (bytes; UTF-8, with or without BOM, or GB18030 as Excel saves
    it in China) as [(line number, {column: text})]; blank rows are left out. The header row
    names the columns of FLAT_COLUMNS, in any order; the required ones must be there."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise CsvError("line 1: the file is neither UTF-8 nor GB18030 text")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise CsvError("line 1: the file is empty; it needs a header row") from None
    problems = [f"unknown column {name!r}" for name in header if name not in FLAT_COLUMNS]
    problems += [f"column {name!r} appears twice" for name in sorted(set(header))
                 if header.count(name) > 1]
    problems += [f"missing column {name!r}" for name in FLAT_REQUIRED if name not in header]
    if problems:
        raise CsvError("line 1: " + "; ".join(problems))
    rows, line = [], reader.line_num
    try:
        for cells in reader:
            first, line = line + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            row = dict(zip(header, cells))
            if len(cells) > len(header):
                row[None] = cells[len(header):]  # as csv.DictReader's restkey
            rows.append((first, row))
    except csv.Error as exc:
        raise CsvError(f"line {line + 1}: {exc}") from None
    return rows
