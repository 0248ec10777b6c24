"""Call windows and contact rules of phone collection [001] (issue 11 rule 7).

- Call windows, Beijing time, and how many calls to the borrower each allows:
  9:30–11:00 (3), 12:30–13:30 (2), 14:30–15:30 (2), 19:00–21:00 (2, home phone). A call
  logged outside the windows, or a call to the borrower beyond its window's maximum, is
  accepted and flagged for the leader (contact-log entry `flag`, audited, a notice to every
  dept_head): the call was made, and refusing the record would lose the trace (客户痕迹化管理)
  or push the collector to log it later at a false time — the system stamps the time itself.
- DPD 1–3 (golden period): a contact or a guarantor may be called only when the borrower and
  the direct family are unreachable: every phone number on file for the borrower and for
  each direct-family contact was called in this overdue episode and the latest call to it did
  not get through (no answer, switched off, wrong number). The episode starts on the earliest
  unpaid due date (today − DPD, Beijing time). Calling direct family is allowed.
- Disclosure: up to DPD 7 the debt is never revealed to a person not known to know of the
  loan. The borrower and the guarantors know; a contact knows when its `knows_about_loan`
  says so; anyone else (an unknown number, a relative answering the borrower's phone) is
  taken not to know. From DPD 8 the debt may be revealed [001].

Who was called is found by the number called, matched against the borrower's phones, the
contacts' and the guarantors' phones (the form's selects are static; the case's contacts and
whether each knows of the loan are shown on the task). An unknown number falls back on the
form's "who answered".
"""
import dataclasses
import datetime as dt
import re

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from audit.operations import record
from cases.models import ContactLogEntry, Loan
from collection.windows import (CALL_WINDOWS, beijing_time, next_call_window,
                                window_range)
from extensions import db
from workflows import clock
from workflows.clock import BEIJING
from workflows.errors import InvalidData
from workflows.tasks import BEFORE_COMPLETE

# The most calls to the borrower each window allows [001], by the window's start.
WINDOW_MAX_CALLS = {dt.time(9, 30): 3, dt.time(12, 30): 2, dt.time(14, 30): 2,
                    dt.time(19, 0): 2}
# Outcomes of a call that did not get through to the person called.
UNREACHABLE = frozenset({"no_answer", "switched_off", "wrong_number"})
# Stages in which the debt is never revealed to someone who does not know of the loan.
NO_DISCLOSURE_STAGES = frozenset({"current", "dpd_1_3", "dpd_4_7"})
# Stages in which contacts wait until the borrower and direct family are unreachable.
BORROWER_FIRST_STAGES = frozenset({"dpd_1_3"})
# 直系亲属: spouse, parents, children, grandparents, grandchildren (siblings are not).
DIRECT_FAMILY = frozenset({
    "spouse", "wife", "husband", "father", "mother", "parent", "parents", "son", "daughter",
    "child", "children", "grandfather", "grandmother", "grandparent", "grandson",
    "granddaughter", "grandchild",
    "配偶", "妻子", "丈夫", "老婆", "老公", "爱人", "夫妻", "父亲", "母亲", "父母", "爸爸", "妈妈",
    "儿子", "女儿", "子女", "祖父", "祖母", "外祖父", "外祖母", "爷爷", "奶奶", "外公", "外婆",
    "姥姥", "姥爷", "孙子", "孙女", "外孙", "外孙女"})
FLAG_OUTSIDE_WINDOW = "outside_call_window"
FLAG_OVER_LIMIT = "over_window_limit"
LEADER_ROLE = "dept_head"
KINDS = ("borrower", "family", "contact", "guarantor")


@dataclasses.dataclass(frozen=True)
class Party:
    """Someone on the phone: kind borrower | family | contact | guarantor | unknown."""
    kind: str
    name: str = ""
    knows_about_loan: bool = False
    number: str = ""


# ---------------------------------------------------------------- who is who

def digits(number):
    """A phone number as its digits, without China's country code (+86 / 0086)."""
    found = re.sub(r"\D", "", str(number or ""))
    for prefix in ("0086", "86"):
        if found.startswith(prefix) and len(found) - len(prefix) == 11:
            return found[len(prefix):]
    return found


def _phone(item):
    """A borrower's phone as stored: a string or a mapping such as {"type", "value"}."""
    if isinstance(item, dict):
        return str(item.get("value") or item.get("number") or item.get("phone") or "")
    return str(item or "")


def borrower_phones(loan):
    phones = (loan.borrower.phones or []) if loan.borrower is not None else []
    return [p for p in map(_phone, phones) if digits(p)]


def is_direct_family(relationship):
    words = re.split(r"[\s/(),，（）、;；:：]+", (relationship or "").strip().lower())
    return any(word in DIRECT_FAMILY for word in words)


def directory(loan):
    """digits of a number → the Party it belongs to; the borrower wins a shared number."""
    book = {}
    for g in loan.guarantors:
        if digits(g.phone):
            book[digits(g.phone)] = Party("guarantor", g.name, True, g.phone)
    for c in loan.contacts:
        if digits(c.phone):
            kind = "family" if is_direct_family(c.relationship) else "contact"
            book[digits(c.phone)] = Party(kind, c.name, bool(c.knows_about_loan), c.phone)
    name = loan.borrower.name if loan.borrower is not None else loan.borrower_name
    for phone in borrower_phones(loan):
        book[digits(phone)] = Party("borrower", name, True, phone)
    return book


def party_called(book, number, answered_by=""):
    """Whose number was called; an unknown number is who the form says answered."""
    found = book.get(digits(number))
    if found is not None:
        return found
    return Party(answered_by if answered_by in KINDS else "unknown", number=number or "")


def listener(book, number, answered_by):
    """Who heard what was said, and whether they are known to know of the loan."""
    found = book.get(digits(number))
    if answered_by == "borrower":
        return found if found is not None and found.kind == "borrower" else Party(
            "borrower", knows_about_loan=True)
    if answered_by == "guarantor":
        return found if found is not None and found.kind == "guarantor" else Party(
            "guarantor", knows_about_loan=True)
    if answered_by in ("family", "contact") and found is not None \
            and found.kind in ("family", "contact"):
        return found
    return Party(answered_by if answered_by in KINDS else "unknown", number=number or "")


# ---------------------------------------------------------------- windows

def _utc(moment):
    return moment.astimezone(dt.timezone.utc)


def _stored_utc(at):
    """A logged time as UTC: SQLite hands back the UTC wall time it stored, naive (its SQL
    comparisons with `_utc` bounds compare those wall times)."""
    return at.replace(tzinfo=dt.timezone.utc) if at.tzinfo is None else _utc(at)


def window_at(moment):
    """(opens, closes, max calls) of the call window open at `moment`, or None."""
    local = moment.astimezone(BEIJING)
    for start, end in CALL_WINDOWS:
        if start <= local.time() < end:
            return (dt.datetime.combine(local.date(), start, BEIJING),
                    dt.datetime.combine(local.date(), end, BEIJING), WINDOW_MAX_CALLS[start])
    return None


def _calls(loan, since, until=None):
    query = select(ContactLogEntry).where(ContactLogEntry.loan_id == loan.id,
                                          ContactLogEntry.kind == "call",
                                          ContactLogEntry.at >= _utc(since))
    if until is not None:
        query = query.where(ContactLogEntry.at < _utc(until))
    return db.session.scalars(query.order_by(ContactLogEntry.at, ContactLogEntry.id)).all()


def borrower_calls(loan, book, since, until):
    """How many calls to the borrower are logged in [since, until)."""
    return sum(1 for e in _calls(loan, since, until)
               if party_called(book, e.number, e.answered_by).kind == "borrower")


def call_flag(loan, number, answered_by, moment):
    """Why a call made at `moment` is flagged for the leader (a dict), or None."""
    window = window_at(moment)
    if window is None:
        opens, closes = next_call_window(moment)
        return {"flag": FLAG_OUTSIDE_WINDOW, "next_window": window_range(opens, closes)}
    opens, closes, most = window
    book = directory(loan)
    if party_called(book, number, answered_by).kind != "borrower":
        return None
    before = borrower_calls(loan, book, opens, moment + dt.timedelta(microseconds=1))
    if before >= most:
        return {"flag": FLAG_OVER_LIMIT, "window": window_range(opens, closes),
                "call": before + 1, "max": most}
    return None


def _leaders():
    from accounts.models import User, UserRole
    return db.session.scalars(
        select(User).join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == LEADER_ROLE, User.active.is_(True)).order_by(User.id)).all()


def _flag_message(flag, loan, entry, actor):
    values = {"loan": loan.loan_no, "number": entry.number or "-",
              "who": actor.label if actor is not None else "-",
              "at": _utc(entry.at).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")}
    if flag["flag"] == FLAG_OUTSIDE_WINDOW:
        return _("Call outside the call windows: loan %(loan)s, %(number)s called at %(at)s "
                 "(Beijing time) by %(who)s.", **values)
    return _("Too many calls in one window: loan %(loan)s, call %(call)s of at most %(max)s "
             "to the borrower in %(window)s, by %(who)s.", call=flag["call"], max=flag["max"],
             window=beijing_time(flag["window"]), **values)


def flag_for_leader(loan, entry, actor, flag, task_id=None):
    """Mark the logged call, audit it and tell every leader (inside the caller's transaction)."""
    from notifications.outbox import enqueue
    entry.flag = flag["flag"]
    notified = []
    for leader in _leaders():
        with force_locale(leader.locale or "zh_CN"):
            enqueue(loan.id, leader.username, _flag_message(flag, loan, entry, actor),
                    channel="inbox")
        notified.append(leader.username)
    record("collection.call_flagged", actor=actor, case_id=loan.id, task_id=task_id,
           data=dict(flag, entry_id=entry.id, number=entry.number, notified=notified))


# ---------------------------------------------------------------- contact rules

def episode_start(loan, moment):
    """When this overdue episode began: the earliest unpaid due date, Beijing midnight."""
    day = moment.astimezone(BEIJING).date() - dt.timedelta(days=max(loan.dpd or 0, 0))
    return dt.datetime.combine(day, dt.time(0), BEIJING)


def still_reachable(loan, book, moment):
    """The borrower's and direct family's numbers whose latest call in this episode got
    through or that were not called yet: [(Party, number)]."""
    latest = {}
    for entry in _calls(loan, episode_start(loan, moment)):
        latest[digits(entry.number)] = entry.outcome
    return [(party, party.number) for key, party in book.items()
            if party.kind in ("borrower", "family") and latest.get(key) not in UNREACHABLE]


def _who(party):
    return party.name or party.number or _("an unknown person")


def rule_errors(loan, number, answered_by, disclosed, moment):
    """The contact rules a call breaks, as field errors in the user's language."""
    errors = {}
    book = directory(loan)
    called = party_called(book, number, answered_by)
    field = "number_called" if digits(number) in book else "answered_by"
    if loan.stage in BORROWER_FIRST_STAGES and called.kind in ("contact", "guarantor"):
        waiting = still_reachable(loan, book, moment)
        if waiting:
            errors[field] = [_(
                "At DPD 1–3 a contact or guarantor may be called only after the borrower and "
                "the direct family could not be reached: call these numbers first (no answer, "
                "switched off or wrong number in this overdue period): %(numbers)s.",
                numbers="; ".join(f"{_who(p)} {n}" for p, n in waiting))]
    heard = listener(book, number, answered_by)
    if disclosed and loan.stage in NO_DISCLOSURE_STAGES and not heard.knows_about_loan:
        errors["debt_disclosed"] = [_(
            "%(who)s is not known to know of the loan: up to DPD 7 the debt must never be "
            "revealed to them.", who=_who(heard) if heard.kind != "unknown"
            else _("The person who answered"))]
    return errors


def check_phone_call(row, values):
    """BEFORE_COMPLETE hook of the phone collection task: refuse a call that breaks the
    DPD 1–3 contact order or reveals the debt to someone who does not know of the loan."""
    if row.form_key != "collection_call" or row.case_id is None:
        return
    loan = db.session.get(Loan, row.case_id)
    errors = rule_errors(loan, values.get("number_called"), values.get("answered_by"),
                         bool(values.get("debt_disclosed")), clock.now())
    if errors:
        raise InvalidData("the call breaks the contact rules", code="invalid",
                          field_errors=errors)


if check_phone_call not in BEFORE_COMPLETE:
    BEFORE_COMPLETE.append(check_phone_call)


# ---------------------------------------------------------------- shown on the task

def _call_day(moment):
    """[first window opens, last window closes] of `moment`'s Beijing day."""
    local = moment.astimezone(BEIJING)
    return [dt.datetime.combine(local.date(), t, BEIJING)
            for t in (CALL_WINDOWS[0][0], CALL_WINDOWS[-1][1])]


def calls_on_day(loan_ids, moment):
    """The calls `calls_today` counts, of many loans in one read: {loan id: [entries]}."""
    since, until = _call_day(moment)
    found = {loan_id: [] for loan_id in loan_ids}
    for entry in db.session.scalars(
            select(ContactLogEntry).where(ContactLogEntry.loan_id.in_(found),
                                          ContactLogEntry.kind == "call",
                                          ContactLogEntry.at >= _utc(since),
                                          ContactLogEntry.at < _utc(until))
            .order_by(ContactLogEntry.at, ContactLogEntry.id)):
        found[entry.loan_id].append(entry)
    return found


def calls_today(loan, moment, calls=None):
    """'2026-05-08: 09:30–11:00 1/3 · 12:30–13:30 0/2 · …' — calls to the borrower per window.
    `calls`: the day's calls of the loan already read (calls_on_day)."""
    local = moment.astimezone(BEIJING)
    book = directory(loan)
    # One read of the day's calls to the borrower, counted per window (as borrower_calls would).
    calls = _calls(loan, *_call_day(moment)) if calls is None else calls
    called = [_stored_utc(e.at) for e in calls
              if party_called(book, e.number, e.answered_by).kind == "borrower"]
    parts = []
    for start, end in CALL_WINDOWS:
        opens, closes = (_utc(dt.datetime.combine(local.date(), t, BEIJING)) for t in (start, end))
        count = sum(1 for at in called if opens <= at < closes)
        parts.append(f"{start:%H:%M}–{end:%H:%M} {count}/{WINDOW_MAX_CALLS[start]}")
    return f"{local.date().isoformat()}: " + " · ".join(parts)


def contacts_on_file(loan):
    """The contacts and guarantors, their numbers and whether each knows of the loan, in
    Chinese and in English."""
    zh, en = [], []
    for c in loan.contacts:
        family = is_direct_family(c.relationship)
        zh.append(f"{c.name}（{c.relationship}{'，直系亲属' if family else ''}）{c.phone}："
                  + ("知道贷款" if c.knows_about_loan else "不知道贷款，不得透露"))
        en.append(f"{c.name} ({c.relationship}{', direct family' if family else ''}) {c.phone}: "
                  + ("knows of the loan" if c.knows_about_loan
                     else "does not know of the loan, do not reveal it"))
    for g in loan.guarantors:
        zh.append(f"{g.name}（保证人）{g.phone}：知道贷款")
        en.append(f"{g.name} (guarantor) {g.phone}: knows of the loan")
    return "；".join(zh) or "无", "; ".join(en) or "none"


def call_context(loan, moment=None, calls=None):
    """What the phone collection task shows about calls and contacts (its show_data).
    `calls`: as calls_today's."""
    zh, en = contacts_on_file(loan)
    return {"calls_today": calls_today(loan, moment or clock.now(), calls),
            "contacts_on_file_zh": zh, "contacts_on_file_en": en}
