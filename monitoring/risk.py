"""Periodic inspection (DOMAIN.md §5.6) and risk warning (§5.7).

One long-running `inspection` instance per loan longer than a month, started when the handover
registers the loan: each cycle waits for the next inspection day (frequency read from the loan
every cycle, so a risk decision changing it counts from the next cycle), the account manager
inspects, a post-loan officer reviews (never the inspector), the leader approves, and the
signals found become RiskSignal rows with a `risk_warning` instance each. The leader gives an
opinion, the risk manager decides; the decision takes effect through `apply_risk_decision`.
"""
import calendar
import datetime as dt

from audit.operations import record
from calendars.workdays import CalendarUnknown, add_working_days, is_working_day
from cases.models import CaseProblem, Loan, RiskSignal
from extensions import db
from i18n import N_
from ledger.book import overdue_amount
from ledger.schedule import recall_loan
from forms.builder import localized
from workflows import clock
from workflows.clock import BEIJING
from workflows.definitions import latest_definition
from workflows.errors import InvalidData, NotFound
from workflows.service import running_instances, start_process
from workflows.services import service
from workflows.tasks import BEFORE_COMPLETE

INSPECTION = "inspection"
RISK_WARNING = "risk_warning"
INSPECTION_HOUR = 9
MONTHS = {"monthly": 1, "bimonthly": 2, "quarterly": 3}

# DOMAIN.md §5.7: the ten categories of warning signal, bilingual like the form specs.
RISK_CATEGORIES = {
    1: {"en": "Lack of cooperation", "zh_CN": "不配合（失联、拒绝提供报表、回避检查）"},
    2: {"en": "Abnormal cash flow", "zh_CN": "现金流异常"},
    3: {"en": "Poor external reputation", "zh_CN": "外部声誉不佳"},
    4: {"en": "Instability (staff, family or partner disputes)", "zh_CN": "不稳定（人员流失、家庭或合伙人纠纷）"},
    5: {"en": "Disputes and lawsuits", "zh_CN": "纠纷与诉讼"},
    6: {"en": "False financial information, abnormal ratios", "zh_CN": "财务信息虚假、比率异常"},
    7: {"en": "Tight funding chain", "zh_CN": "资金链紧张（倒贷、申请展期、高成本借款）"},
    8: {"en": "Weakened guarantee", "zh_CN": "担保弱化（抵押物高估或保管不善、保证人能力下降）"},
    9: {"en": "Main business shrinking", "zh_CN": "主营业务萎缩"},
    10: {"en": "Management chaos", "zh_CN": "管理混乱"},
}
DECISIONS = {
    "closer_monitoring": {"en": "Closer monitoring", "zh_CN": "加强监控"},
    "early_recall": {"en": "Early recall", "zh_CN": "提前收回"},
    "preservation": {"en": "Preservation measures", "zh_CN": "保全措施"},
    "collection": {"en": "Start collection", "zh_CN": "启动催收"},
}
# Who may raise a signal on a case they may change (cases.access.can_change_case); compliance
# and process owners never may.
NEVER_RAISE = frozenset({"compliance", "process_owner"})


def category_label(category, locale=None):
    return localized(RISK_CATEGORIES.get(int(category), {"en": str(category)}), locale)


def decision_label(decision, locale=None):
    return localized(DECISIONS.get(decision, {"en": decision or ""}), locale) if decision else ""


def _both(category):
    names = RISK_CATEGORIES[category]
    return f"{category}. {names['zh_CN']} / {names['en']}"


# ---------------------------------------------------------------- inspection schedule

def add_months(day, months):
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def needs_inspection(loan):
    """DOMAIN.md §5.6: loans longer than one month are inspected periodically."""
    return loan.maturity_on > add_months(loan.disbursed_on, 1)


def _working_day_on_or_after(day):
    """The first working day on or after `day`; None when its calendar year is unknown."""
    try:
        if is_working_day(day):
            return day
        return add_working_days(day, 1)
    except CalendarUnknown:
        return None


def next_inspection(loan, anchor=None, months=None):
    """(anchor, day, at): the next inspection after `anchor` (the previous planned date, or
    the disbursement date) every `months` (by default the loan's current frequency), strictly
    after today, moved to a working day, at 09:00 Beijing as an aware UTC ISO string."""
    months = months or MONTHS.get(loan.inspection_frequency or "monthly", 1)
    base = dt.date.fromisoformat(anchor) if anchor else loan.disbursed_on
    today = clock.today()
    nxt = add_months(base, months)
    while nxt <= today:
        nxt = add_months(nxt, months)
    day = _working_day_on_or_after(nxt)
    if day is None:
        # The year's calendar is unknown: the inspection stays on the plain date and the case
        # shows the problem (DOMAIN.md §4: never silently count weekends only).
        _calendar_problem(loan, nxt)
        day = nxt
    at = dt.datetime.combine(day, dt.time(INSPECTION_HOUR), BEIJING).astimezone(dt.timezone.utc)
    return nxt, day, at.isoformat()


def _calendar_problem(loan, day):
    open_ = CaseProblem.query.filter_by(loan_id=loan.id, kind="calendar_year_missing",
                                        year=day.year, resolved_at=None).all()
    if any(p.detail.get("process") == INSPECTION for p in open_):
        return
    db.session.add(CaseProblem(loan_id=loan.id, kind="calendar_year_missing", year=day.year,
                               detail={"process": INSPECTION, "planned_on": day.isoformat()},
                               opened_at=clock.now()))
    record("case.problem_opened", case_id=loan.id,
           data={"kind": "calendar_year_missing", "year": day.year, "process": INSPECTION,
                 "planned_on": day.isoformat()})


def start_inspections(loan, actor=None):
    """Start the loan's inspection cycle (once); called when the handover registers it.
    Returns the instance, or None (short loan, already running, or not deployed). Flushes."""
    if not needs_inspection(loan) or latest_definition(INSPECTION) is None \
            or cycle_instance(loan) is not None:
        return None
    return start_process(INSPECTION, case_id=loan.id, actor=actor, business_key=INSPECTION,
                         data={"loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
                               "account_manager": loan.account_manager.username,
                               "emergency": False,
                               "inspection": {"cycle": 0, "anchor": ""}})


def cycle_instance(loan):
    """The loan's running periodic inspection (an emergency revisit is an instance of the
    same process under another business key)."""
    return next((i for i in running_instances(loan.id, INSPECTION)
                 if i.business_key == INSPECTION), None)


def _loan(data):
    loan = Loan.query.filter_by(loan_no=data["loan_no"]).first()
    if loan is None:
        raise NotFound(f"no loan {data['loan_no']}", code="loan_missing")
    return loan


@service("plan_inspection")
def plan_inspection(data, anchor, months_by_frequency=None, high_risk_months=None):
    """Each cycle: whether the loan is still inspected, and when next (frequency read now).
    The diagram passes the months per frequency and the high-risk ceiling (issue 11 rule 14:
    thresholds on the diagram); versions before it use MONTHS."""
    loan = _loan(data)
    active = loan.status not in ("closing", "closed")
    frequency = loan.inspection_frequency or "monthly"
    months = int((months_by_frequency or MONTHS).get(frequency, 1))
    if loan.risk_group == "high" and high_risk_months:
        months = min(months, int(high_risk_months))
    result = {"active": active, "frequency": frequency, "months": months,
              "account_manager": loan.account_manager.username,
              "cycle": int(data.get("inspection", {}).get("cycle", 0)) + 1,
              # Kept so an approved change of frequency can re-plan this cycle from it.
              "previous_anchor": anchor or ""}
    if active:
        nxt, day, at = next_inspection(loan, anchor or None, months)
        result.update(anchor=nxt.isoformat(), inspection_on=day.isoformat(), next_at=at)
        record("inspection.scheduled", case_id=loan.id,
               data={"cycle": result["cycle"], "on": day.isoformat(),
                     "frequency": result["frequency"]})
    return result


@service("record_inspection")
def record_inspection(data, risk_signals, signal_categories, signal_description):
    """The leader approved the inspection: audit it; each signal found becomes a RiskSignal
    (source "inspection") with its own risk warning."""
    loan = _loan(data)
    completed_by = data.get("completed_by", {})
    inspector = _user(completed_by.get("inspect"))
    if "inspection_signals" in data:
        # Raised when the report was submitted (raise_inspection_signals), not again here.
        signals = [db.session.get(RiskSignal, i) for i in data["inspection_signals"]["signals"]]
    else:  # an instance of a version before issue 11 rule 9
        categories = sorted({int(c) for c in (signal_categories or [])}) \
            if risk_signals == "found" else []
        signals = [_raise(loan, inspector, c, signal_description or "", "inspection")
                   for c in categories]
    cycle = data.get("inspection", {}).get("cycle")
    record("inspection.approved", case_id=loan.id, data={
        "cycle": cycle, "inspection_on": data.get("inspection", {}).get("inspection_on"),
        "inspector": completed_by.get("inspect"), "reviewer": completed_by.get("review"),
        "approver": completed_by.get("approve"), "methods": data.get("methods"),
        "documents_collected": data.get("documents_collected"),
        "risk_report": data.get("risk_report"), "emergency": bool(data.get("emergency")),
        "signals": [s.id for s in signals if s is not None]})
    return {"signals": [s.id for s in signals if s is not None]}


# Findings on the inspection report that are warning signals by themselves (000 §五(3),
# 003 §一): (field, value, category, what was found in Chinese and English, note field).
FINDINGS = (
    ("funds_use", "misused", 2, "贷款资金被挪用", "loan funds misused", "funds_use_note"),
    ("enforcement_company", "found", 5, "企业有被执行记录", "court enforcement: company",
     "pre_visit_note"),
    ("enforcement_legal_rep", "found", 5, "法定代表人有被执行记录",
     "court enforcement: legal representative", "pre_visit_note"),
    ("enforcement_shareholders", "found", 5, "股东有被执行记录",
     "court enforcement: shareholders", "pre_visit_note"),
    ("licence_status", "revoked", 9, "营业执照被吊销或注销", "business licence revoked",
     "pre_visit_note"),
    ("licence_status", "abnormal", 3, "列入经营异常名录", "listed for abnormal operation",
     "pre_visit_note"),
)


def findings_of(data):
    """{category: description} of the warning signals on a submitted inspection report."""
    found = {}
    for field, value, category, zh, en, note in FINDINGS:
        if data.get(field) == value:
            lines = found.setdefault(category, [])
            lines.append(f"贷后检查发现：{zh}（{en}）")
            if data.get(note) and data[note] not in lines:
                lines.append(data[note])
    if data.get("risk_signals") == "found":
        for category in {int(c) for c in (data.get("signal_categories") or [])}:
            found.setdefault(category, []).insert(0, data.get("signal_description") or "")
    return {c: "\n".join(line for line in lines if line) for c, lines in found.items()}


def _undecided(loan, category):
    return RiskSignal.query.filter(RiskSignal.loan_id == loan.id,
                                   RiskSignal.category == category,
                                   RiskSignal.source == "inspection",
                                   RiskSignal.decided_at.is_(None)).first()


@service("raise_inspection_signals")
def raise_inspection_signals(data):
    """Issue 11 rule 9: the warning signals on a submitted inspection report start their risk
    warnings at once, without waiting for the review and approval. A category already under
    an undecided warning from an inspection of this loan (e.g. the report was returned and
    submitted again) is not raised twice."""
    loan = _loan(data)
    inspector = _user(data.get("completed_by", {}).get("inspect"))
    raised = list(data.get("inspection_signals", {}).get("signals", []))
    for category, text in sorted(findings_of(data).items()):
        if _undecided(loan, category) is None:
            raised.append(_raise(loan, inspector, category, text, "inspection").id)
    return {"signals": raised}


def raise_extension_signal(loan, actor, reason):
    """Issue 11 rule 9: an extension request is itself a warning signal of category 7 (tight
    funding chain: 贷款到期后要求展期), with its risk warning started at once; flushes."""
    return _raise(loan, actor, 7, f"客户申请展期：{reason}", "extension")


def _user(username):
    from accounts.models import User
    return User.query.filter_by(username=username).first() if username else None


# ---------------------------------------------------------------- risk signals

def _raise(loan, actor, category, description, source):
    """Store a signal and start its risk warning; flushes."""
    signal = RiskSignal(loan_id=loan.id, category=category, description=description,
                        source=source, raised_by_id=getattr(actor, "id", None),
                        raised_at=clock.now())
    db.session.add(signal)
    db.session.flush()
    record("risk.signal_raised", actor=actor, case_id=loan.id, data={
        "signal_id": signal.id, "category": category, "category_name": _both(category),
        "description": description, "source": source})
    if latest_definition(RISK_WARNING) is not None:
        instance = start_process(RISK_WARNING, case_id=loan.id, actor=actor,
                                 business_key=f"risk_signal:{signal.id}", data={
                                     "loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
                                     "signal_id": signal.id, "category": category,
                                     "category_name": _both(category),
                                     "signal_description": description, "source": source,
                                     "raised_by": getattr(actor, "label", None) or ""})
        signal.instance_id = instance.id
        db.session.flush()
    return signal


def raise_signal(loan, actor, category, description):
    """Staff raise a risk signal on a case (DOMAIN.md §5.7); commits."""
    from cases.records import ensure_open
    ensure_open(loan)
    errors = {}
    try:
        category = int(category)
    except (TypeError, ValueError):
        category = None
    if category not in RISK_CATEGORIES:
        errors["category"] = [N_("Choose one of the ten categories.")]
    description = (description or "").strip()
    if not description:
        errors["description"] = [N_("This field is required.")]
    if errors:
        raise InvalidData("the signal has errors", field_errors=errors, code="invalid")
    signal = _raise(loan, actor, category, description, "staff")
    db.session.commit()
    return signal


def signals_of(loan):
    return (RiskSignal.query.filter_by(loan_id=loan.id)
            .order_by(RiskSignal.raised_at.desc(), RiskSignal.id.desc()).all())


@service("apply_risk_decision")
def apply_risk_decision(data, decision, decision_note):
    """The risk manager's decision takes effect and is stored on the signal."""
    if decision not in DECISIONS:
        raise ValueError(f"unknown risk decision {decision}")
    loan = _loan(data)
    signal = db.session.get(RiskSignal, data["signal_id"])
    decider = _user(data.get("completed_by", {}).get("decide"))
    effect = {}
    if decision == "closer_monitoring":
        old = loan.inspection_frequency
        loan.inspection_frequency = "monthly"
        effect = {"old_frequency": old, "new_frequency": "monthly"}
        record("case.monitoring_plan", actor=decider, case_id=loan.id, data={
            "risk_group": loan.risk_group, "inspection_frequency": "monthly",
            "reason": f"risk signal {signal.id}"})
    elif decision == "early_recall":
        effect = _recall(loan, signal, decider)
    elif decision == "preservation":
        # Issue 11 rule 10: preservation starts collection's legal preservation step.
        from collection.preservation import order_preservation
        effect = {"preservation": True, "preservation_step": order_preservation(
            loan, decider, f"risk signal {signal.id}: {decision_note or ''}")}
    elif decision == "collection":
        effect = {"collection_started": _start_collection(loan, decider)}
    signal.decision, signal.decision_note, signal.decided_at = (
        decision, decision_note or "", clock.now())
    record("risk.decided", actor=decider, case_id=loan.id, data={
        "signal_id": signal.id, "category": signal.category, "decision": decision,
        "decision_note": decision_note or "", "opinion_by": data.get("completed_by", {})
        .get("opinion"), **effect})
    db.session.flush()
    return {"decision": decision, **effect}


def _recall(loan, signal, actor):
    """The whole balance falls due today (ledger), the borrower and account manager are told,
    and collection starts."""
    row = recall_loan(loan.id, clock.today(), f"risk signal {signal.id}", actor,
                      signal_id=signal.id)
    if row is None:
        return {"early_recall": False, "already_recalled": True}
    return {"early_recall": True, "recalled_on": row.recalled_on.isoformat(),
            "outstanding": str(loan.outstanding), "notified": _notify_recall(loan, signal),
            "collection_started": _start_collection(loan, actor)}


def _notify_recall(loan, signal):
    """Early recall: the account manager is told through the outbox (when a phone is known
    for the borrower, the recall notice is queued to the borrower as well)."""
    from notices.operations import send
    from notifications.outbox import enqueue
    sent = []
    phones = loan.borrower.phones if loan.borrower and loan.borrower.phones else []
    if phones:
        send("early_recall", loan, {}, phones[0])
        sent.append("borrower")
    enqueue(loan.id, loan.account_manager.username, (
        f"贷款{loan.loan_no}（{loan.borrower_name}）已决定提前收回（风险信号{signal.id}）。"),
        channel="internal")
    sent.append("account_manager")
    return sent


def _start_collection(loan, actor):
    if latest_definition("collection") is None or running_instances(loan.id, "collection"):
        return False
    today = clock.today()
    start_process("collection", case_id=loan.id, actor=actor, data={
        "loan_no": loan.loan_no, "dpd": loan.dpd, "stage": loan.stage,
        "overdue_amount": str(overdue_amount(loan.id, today))})
    return True


def check_monitoring_plan(row, values):
    """The handover's monitoring plan: a high-risk loan is inspected at least monthly
    (DOMAIN.md §5.6, [003]: more often for high-risk clients)."""
    if row.form_key != "handover_register":
        return
    if values.get("risk_group") == "high" and values.get("inspection_frequency") != "monthly":
        raise InvalidData("a high-risk loan is inspected monthly", code="invalid",
                          field_errors={"inspection_frequency": [N_(
                              "A high-risk loan is inspected every month.")]})


BEFORE_COMPLETE.append(check_monitoring_plan)
