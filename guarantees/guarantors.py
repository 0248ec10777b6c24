"""Guarantor status checks (issue 16): on each inspection and by staff.

DOMAIN.md §5.6: before an inspection the account manager checks court enforcement records
(被执行人) and, for a company, the business licence status [003 §一]; checklist item 7 covers
guarantees. §5.7 category 8: a weakened guarantee (the guarantor weaker) is a warning signal.

`record_check` stores one check (guarantees.models.GuarantorCheck), writes the guarantor's
status now on the Guarantor row and, when the check finds the guarantor weaker than the
status before it, raises ONE risk signal of category 8 (source "guarantor"). An unchanged bad
status is not raised again at the next inspection.

The inspection report (form inspection_report) is refused until every guarantor of the loan
has a check made during this inspection (since the first report task of the cycle was
created): `check_inspection_report`, a BEFORE_COMPLETE hook.
"""
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from audit.operations import record
from cases.intake import BAD_CHARACTERS, bad_character
from cases.models import Guarantor, Loan
from cases.records import ensure_open
from extensions import db
from guarantees.models import GUARANTOR_CAPACITY, LICENCE_STATUSES, GuarantorCheck
from i18n import N_
from workflows import clock
from workflows.errors import InvalidData
from workflows.locks import lock_case
from workflows.models import HumanTask
from workflows.tasks import BEFORE_COMPLETE

SOURCES = ("staff", "inspection")
NOTE_MAX = 2000
INSPECTION_FORM = "inspection_report"
# The field of the inspection report the "check each guarantor first" refusal is tied to.
REPORT_FIELD = "guarantor_note"

# Words, never codes, wherever a person reads them.
CAPACITY_LABELS = {"adequate": _l("Adequate"), "weakened": _l("Weakened"),
                   "insufficient": _l("Insufficient")}
LICENCE_LABELS = {"normal": _l("Normal (in existence)"),
                  "abnormal": _l("Listed for abnormal operation"),
                  "revoked": _l("Revoked"), "cancelled": _l("Cancelled")}
SOURCE_LABELS = {"staff": _l("Case page"), "inspection": _l("Inspection")}
# How bad each value is: a check is "weaker" when one of them goes up.
CAPACITY_RANK = {None: 0, "adequate": 0, "weakened": 1, "insufficient": 2}
LICENCE_RANK = {None: 0, "normal": 0, "abnormal": 1, "revoked": 2, "cancelled": 2}
# What a check can find weaker than before: its code (kept in the audit event, read through
# WEAKER_LABELS) and the Chinese words of the risk signal's description.
WEAKER_LABELS = {
    "unreachable": _l("Unreachable"),
    "capacity_weakened": _l("Capacity to pay weakened"),
    "capacity_insufficient": _l("Capacity to pay insufficient"),
    "court_enforcement": _l("Listed as subject to court enforcement"),
    "licence_abnormal": _l("Business licence listed as abnormal"),
    "licence_revoked": _l("Business licence revoked"),
    "licence_cancelled": _l("Business licence cancelled")}
WEAKER_ZH = {"unreachable": "无法联系", "capacity_weakened": "代偿能力减弱",
             "capacity_insufficient": "代偿能力不足", "court_enforcement": "被列为被执行人",
             "licence_abnormal": "营业执照列入经营异常名录",
             "licence_revoked": "营业执照被吊销", "licence_cancelled": "营业执照已注销"}


# ---------------------------------------------------------------- validation

def _yes_no(value):
    """True/False from a form or JSON value; None when missing or not a yes/no."""
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    return {"yes": True, "true": True, "1": True, "y": True,
            "no": False, "false": False, "0": False, "n": False}.get(text)


def _text(values, name, errors):
    text = str(values.get(name) or "").strip()
    if len(text) > NOTE_MAX:
        errors[name] = [N_("At most 2000 characters.")]
    elif bad_character(text) is not None:
        errors[name] = [BAD_CHARACTERS]
    return text


def clean(guarantor, values):
    """The check's values from a form or JSON, or InvalidData with a message per field."""
    errors = {}
    reachable = _yes_no(values.get("reachable"))
    if reachable is None:
        errors["reachable"] = [N_("Say whether the guarantor could be reached.")]
    capacity = values.get("capacity") or None
    if capacity not in GUARANTOR_CAPACITY:
        errors["capacity"] = [N_("Choose the guarantor's capacity to pay.")]
    capacity_note = _text(values, "capacity_note", errors)
    if capacity in ("weakened", "insufficient") and not capacity_note \
            and "capacity_note" not in errors:
        errors["capacity_note"] = [N_("Say what weakened the guarantor's capacity to pay.")]
    enforcement = _yes_no(values.get("court_enforcement"))
    if enforcement is None:
        errors["court_enforcement"] = [N_(
            "Say whether the guarantor is listed as subject to court enforcement.")]
    enforcement_note = _text(values, "enforcement_note", errors)
    if enforcement and not enforcement_note and "enforcement_note" not in errors:
        errors["enforcement_note"] = [N_(
            "Give the court, case number and amount of the enforcement.")]
    licence = values.get("licence_status") or None
    if guarantor.kind == "company":
        if licence not in LICENCE_STATUSES:
            errors["licence_status"] = [N_("Choose the company's business licence status.")]
    elif licence is not None:
        errors["licence_status"] = [N_("Only a company guarantor has a business licence.")]
    if errors:
        raise InvalidData("the guarantor check has errors", code="invalid",
                          field_errors=errors)
    return {"reachable": reachable, "capacity": capacity, "capacity_note": capacity_note,
            "court_enforcement": enforcement, "enforcement_note": enforcement_note,
            "licence_status": licence}


# ---------------------------------------------------------------- weaker than before?

def findings(previous, now):
    """The codes (WEAKER_LABELS) of what got worse from `previous` (the guarantor's status
    before the check; None values: never checked) to `now`."""
    found = []
    if now["reachable"] is False and previous["reachable"] is not False:
        found.append("unreachable")
    if CAPACITY_RANK[now["capacity"]] > CAPACITY_RANK[previous["capacity"]]:
        found.append(f"capacity_{now['capacity']}")
    if now["court_enforcement"] and previous["court_enforcement"] is not True:
        found.append("court_enforcement")
    if LICENCE_RANK[now["licence_status"]] > LICENCE_RANK[previous["licence_status"]]:
        found.append(f"licence_{now['licence_status']}")
    return found


def signal_description(guarantor, found, values):
    """The signal's text, in Chinese as the staff's own signals are written."""
    lines = [f"保证人{guarantor.name}状况变差：{'；'.join(WEAKER_ZH[code] for code in found)}"]
    lines += [note for note in (values["capacity_note"], values["enforcement_note"]) if note]
    return "\n".join(lines)


def status_of(guarantor):
    return {"reachable": guarantor.reachable, "capacity": guarantor.capacity,
            "court_enforcement": guarantor.court_enforcement,
            "licence_status": guarantor.licence_status}


# ---------------------------------------------------------------- the operation

def record_check(guarantor, values, actor, source, task=None, commit=True):
    """Store one check of `guarantor` and its status now; a check finding the guarantor
    weaker than before raises one risk signal of category 8. One transaction: commits
    (`commit=False`: flushes only, inside a caller's transaction). `task`: the inspection
    task (HumanTask) the check was made for, if any."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    loan = db.session.get(Loan, guarantor.loan_id)
    ensure_open(loan)
    cleaned = clean(guarantor, values)
    lock_case(loan.id)
    db.session.refresh(guarantor)  # the status as the last committed check left it
    previous = status_of(guarantor)
    moment = clock.now()
    check = GuarantorCheck(
        guarantor_id=guarantor.id, loan_id=loan.id, source=source,
        instance_id=getattr(task, "instance_id", None), task_id=getattr(task, "id", None),
        checked_by_id=getattr(actor, "id", None), checked_at=moment, **cleaned)
    db.session.add(check)
    guarantor.reachable, guarantor.capacity = cleaned["reachable"], cleaned["capacity"]
    guarantor.capacity_note = cleaned["capacity_note"]
    guarantor.court_enforcement = cleaned["court_enforcement"]
    guarantor.licence_status = cleaned["licence_status"]
    guarantor.checked_at = moment
    db.session.flush()
    found = findings(previous, cleaned)
    if found:
        from monitoring.risk import _raise
        signal = _raise(loan, actor, 8, signal_description(guarantor, found, cleaned),
                        "guarantor")
        check.signal_id = signal.id
    record("guarantor.checked", actor=actor, case_id=loan.id,
           instance_id=check.instance_id, task_id=check.task_id, data={
               "check_id": check.id, "guarantor_id": guarantor.id,
               "guarantor": guarantor.name, "source": source, **cleaned,
               "previous": previous, "weaker": found,
               "signal_id": check.signal_id})
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return check


# ---------------------------------------------------------------- reading

def checks_of(loan_id, guarantor_id=None, since=None):
    """Checks of a loan (of one guarantor), newest first."""
    query = select(GuarantorCheck).where(GuarantorCheck.loan_id == loan_id)
    if guarantor_id is not None:
        query = query.where(GuarantorCheck.guarantor_id == guarantor_id)
    if since is not None:
        query = query.where(GuarantorCheck.checked_at >= since)
    return list(db.session.scalars(query.order_by(GuarantorCheck.checked_at.desc(),
                                                  GuarantorCheck.id.desc())))


def guarantors_of(loan_id):
    return list(db.session.scalars(select(Guarantor).where(Guarantor.loan_id == loan_id)
                                   .order_by(Guarantor.id)))


def cycle_start(task):
    """When the inspection cycle of an inspection task began: the creation of the first
    report task ("inspect") since the cycle's last approval, so a report returned by the
    reviewer or the leader keeps the checks already made in the cycle."""
    rows = list(db.session.scalars(select(HumanTask).where(
        HumanTask.instance_id == task.instance_id,
        HumanTask.bpmn_id.in_(("inspect", "approve"))).order_by(HumanTask.id)))
    approved = [r.id for r in rows if r.bpmn_id == "approve" and r.id < task.id
                and r.state == "completed"
                and (r.data or {}).get("approval_result") == "approved"]
    after = max(approved) if approved else 0
    starts = [r.created_at for r in rows if r.bpmn_id == "inspect" and after < r.id <= task.id]
    return min(starts) if starts else task.created_at


def inspection_checks(task):
    """{guarantor id: the latest check of this inspection cycle} for an inspection task."""
    since = cycle_start(task)
    found = {}
    for check in checks_of(task.case_id, since=since):
        found.setdefault(check.guarantor_id, check)
    return found


def unchecked(task):
    """The guarantors of the task's loan without a check in this inspection cycle."""
    done = inspection_checks(task)
    return [g for g in guarantors_of(task.case_id) if g.id not in done]


# ---------------------------------------------------------------- the inspection report

def check_inspection_report(row, values):
    """BEFORE_COMPLETE hook of the inspection report: every guarantor of the loan is checked
    during this inspection first; the report keeps the ids of those checks."""
    if row.form_key != INSPECTION_FORM or row.case_id is None:
        return
    missing = unchecked(row)
    if missing:
        raise InvalidData("check each guarantor first", code="invalid", field_errors={
            REPORT_FIELD: [_("Check each guarantor first (above the form): %(names)s.",
                             names="、".join(g.name for g in missing))]})
    values["guarantor_checks"] = sorted(c.id for c in inspection_checks(row).values())


if check_inspection_report not in BEFORE_COMPLETE:
    BEFORE_COMPLETE.append(check_inspection_report)


# ---------------------------------------------------------------- who may check

CHECKER_ROLES = frozenset({"post_loan_officer", "risk_manager"})


def may_check(user, loan, task=None):
    """The loan's account manager, post-loan officers and risk managers record checks on an
    open loan; on an inspection, whoever may do the report task of this loan."""
    if not getattr(user, "is_authenticated", False) or loan.is_closed:
        return False
    if user.roles & CHECKER_ROLES:
        return True
    if "account_manager" in user.roles and loan.account_manager_id == user.id:
        return True
    if task is not None and task.case_id == loan.id and task.form_key == INSPECTION_FORM:
        from workflows.tasks import may_take
        return may_take(task, user)
    return False
