"""Placeholders of the template library: the tiny `{name}` syntax, what each template may and
must carry, and the values of a case in the reader's language.

Syntax: `{name}` (a lower-case identifier) is replaced by its value; `{{` and `}}` write a
literal brace. Nothing else: no attribute access, no format specs, no expressions. `parse`
reports every problem (unknown name, unbalanced brace) instead of raising, and `fill` never
raises on text that parsed cleanly.
"""
import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from flask import current_app, has_app_context

from formatting import money, rate
from i18n import N_

NAME = re.compile(r"[a-z_][a-z0-9_]{0,39}")

# kind -> how a raw value is written: text | money | date | rate | int
# name: (kind, English label, Chinese label, sample value)
PLACEHOLDERS = {
    "loan_no": ("text", "Loan number", "贷款编号", "DH-2026-0001"),
    "borrower_name": ("text", "Borrower", "借款人", "张三"),
    "principal": ("money", "Principal", "贷款本金", "500000"),
    "outstanding": ("money", "Outstanding balance", "贷款余额", "350000"),
    "overdue_amount": ("money", "Overdue amount", "逾期金额", "12345.6"),
    "dpd": ("int", "Days past due", "逾期天数", "35"),
    "maturity_date": ("date", "Maturity date", "到期日", "2026-12-01"),
    "interest_rate": ("rate", "Interest rate", "贷款利率", "0.0435"),
    "repayment_account": ("text", "Repayment account", "还款账户", "6222 0210 0100 1234"),
    "today": ("date", "Date of the notice", "通知日期", "2026-06-15"),
    "lender_name": ("text", "Lender", "贷款人名称", "示范小额贷款有限公司"),
    "lender_phone": ("text", "Lender's phone", "贷款人电话", "0571-88886666"),
    "lender_address": ("text", "Lender's address", "贷款人地址", "杭州市西湖区文三路100号"),
    # Values the process passes.
    "due_date": ("date", "Due date", "到期日期", "2026-07-20"),
    "amount": ("money", "Amount", "金额", "8650"),
    "installment_seq": ("int", "Installment number", "期次", "3"),
    "deadline": ("date", "Deadline", "截止日期", "2026-06-30"),
    "guarantor_name": ("text", "Guarantor", "保证人", "李四"),
    "old_maturity_date": ("date", "Former maturity date", "原到期日", "2026-08-01"),
    "new_maturity_date": ("date", "New maturity date", "展期后到期日", "2027-02-01"),
    "new_rate": ("rate", "Rate of the extension", "展期利率", "0.05"),
    "decision_comment": ("text", "Reason given", "审批意见", "经营未见改善"),
    "appointment_date": ("date", "Appointment date", "约定日期", "2026-06-20"),
    "appointment_time": ("text", "Appointment time", "约定时间", "10:00"),
    "appointment_place": ("text", "Appointment place", "约定地点", "公司二楼贷后管理部"),
}

COMMON = ("loan_no", "borrower_name", "today", "lender_name", "lender_phone",
          "lender_address")
CASE = COMMON + ("principal", "outstanding", "overdue_amount", "dpd", "maturity_date",
                 "interest_rate", "repayment_account")

# key -> (allowed placeholders, required placeholders)
TEMPLATE_PLACEHOLDERS = {
    "due_reminder": (CASE + ("due_date", "amount", "installment_seq"),
                     ("due_date", "amount", "repayment_account")),
    "early_recall": (CASE, ("loan_no", "outstanding")),
    "collection_notice": (CASE, ("loan_no", "overdue_amount", "dpd")),
    "guarantor_demand": (CASE + ("guarantor_name", "amount", "deadline"),
                         ("guarantor_name", "amount", "deadline")),
    "lawyers_letter": (CASE + ("deadline",), ("loan_no", "overdue_amount", "deadline")),
    "extension_approved": (CASE + ("old_maturity_date", "new_maturity_date", "new_rate"),
                           ("new_maturity_date", "new_rate")),
    "extension_rejected": (CASE + ("decision_comment",), ("loan_no", "maturity_date")),
    "closure_invitation": (CASE + ("appointment_date", "appointment_time",
                                   "appointment_place"),
                           ("appointment_date", "appointment_time", "appointment_place")),
}


def allowed(key):
    return TEMPLATE_PLACEHOLDERS.get(key, (CASE, ()))[0]


def required(key):
    return TEMPLATE_PLACEHOLDERS.get(key, (CASE, ()))[1]


def label(name, language):
    spec = PLACEHOLDERS.get(name)
    if spec is None:
        return name
    return spec[2] if language == "zh_CN" else spec[1]


# ---------------------------------------------------------------- the syntax

def parse(text):
    """(parts, problems): parts are literal strings and ("name",) tuples; problems are
    (English N_ template, {values}) pairs. Never raises."""
    parts, problems, literal = [], [], []
    i, n = 0, len(text or "")
    text = text or ""
    while i < n:
        ch = text[i]
        if ch == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            close = text.find("}", i + 1)
            inner = text[i + 1:close] if close != -1 else None
            nested = inner is not None and "{" in inner
            if close == -1 or nested:
                problems.append((N_("A “{” at character %(position)s is not closed. Write "
                                    "{{ for a brace of its own."), {"position": i + 1}))
                i += 1
                continue
            if not NAME.fullmatch(inner):
                problems.append((N_("“{%(inner)s}” is not a placeholder: write a name such as "
                                    "{loan_no}, without spaces, dots or formats."),
                                 {"inner": inner[:40]}))
                i = close + 1
                continue
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append((inner,))
            i = close + 1
        elif ch == "}":
            if text.startswith("}}", i):
                literal.append("}")
                i += 2
                continue
            problems.append((N_("A “}” at character %(position)s has no “{”. Write }} for a "
                                "brace of its own."), {"position": i + 1}))
            i += 1
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    return parts, problems


def names(text):
    return [p[0] for p in parse(text)[0] if isinstance(p, tuple)]


def check(key, text, need_required=True):
    """Problems of one text of template `key`: syntax, unknown names, missing required ones."""
    parts, problems = parse(text)
    used = {p[0] for p in parts if isinstance(p, tuple)}
    ok = set(allowed(key))
    for name in sorted(used - ok):
        problems.append((N_("{%(name)s} is not a placeholder of this template."),
                         {"name": name}))
    if need_required:
        for name in required(key):
            if name not in used:
                problems.append((N_("{%(name)s} is required in this template."),
                                 {"name": name}))
    return problems


def fill(text, values):
    """`text` with each placeholder replaced by values[name] ('' when absent). A malformed
    piece is kept as it is written; never raises."""
    parts, _problems = parse(text)
    out = []
    for part in parts:
        if isinstance(part, tuple):
            value = values.get(part[0])
            out.append("" if value is None else str(value))
        else:
            out.append(part)
    return "".join(out)


# ---------------------------------------------------------------- values

def format_date(value, language):
    day = _date(value)
    if day is None:
        return "" if value in (None, "") else str(value)
    if language == "zh_CN":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {day:%B} {day.year}"


def _date(value):
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        return None


def format_value(name, value, language):
    """A raw value (Decimal, date, ISO string …) as the letter writes it."""
    if value is None:
        return ""
    kind = PLACEHOLDERS.get(name, ("text",))[0]
    if kind == "money":
        return money(value)
    if kind == "date":
        return format_date(value, language)
    if kind == "rate":
        return rate(value)
    if kind == "int":
        try:
            return str(int(Decimal(str(value))))
        except (InvalidOperation, ValueError, TypeError):
            return str(value)
    return str(value)


def lender(language):
    """The lender's name, phone and address from the configuration (LENDER_*)."""
    config = current_app.config if has_app_context() else {}
    suffix = "" if language == "zh_CN" else "_EN"
    return {"lender_name": config.get("LENDER_NAME" + suffix) or config.get("LENDER_NAME", ""),
            "lender_phone": config.get("LENDER_PHONE", ""),
            "lender_address": config.get("LENDER_ADDRESS" + suffix)
            or config.get("LENDER_ADDRESS", "")}


def case_values(loan, today):
    """Raw values read from a loan (formatted later, per language)."""
    from ledger.book import overdue_amount
    return {"loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
            "principal": loan.principal, "outstanding": loan.outstanding,
            "overdue_amount": overdue_amount(loan.id, today), "dpd": loan.dpd,
            "maturity_date": loan.maturity_on, "interest_rate": loan.interest_rate,
            "repayment_account": loan.repayment_account, "today": today}


def sample_values():
    return {name: spec[3] for name, spec in PLACEHOLDERS.items()}


def formatted(key, raw, language):
    """The values of template `key` written for `language` (lender's from the config)."""
    out = {}
    for name in allowed(key):
        if name.startswith("lender_"):
            continue
        out[name] = format_value(name, raw.get(name), language)
    out.update(lender(language))
    return out
