"""Collection escalation (DOMAIN.md §5.3): the service operations of bpmn/collection.bpmn.

Phone collection staged by DPD → promise to pay (checked on the promised evening) → on-site
visit (after the leader's approval) → litigation (after the leader's approval) → asset
preservation → outcome → a monthly recovery follow-up while a balance is left; a written notice
every month while overdue; a repayment at any point is noted, and one that clears the overdue
amount ends collection. The thresholds (DPD stages, the 90 days of litigation, the pause after a
rejection) are gateway conditions in bpmn/collection.bpmn, not here (issue 11 rule 14): these
operations only provide the named data (`dpd`, `overdue_amount`, ...) the conditions read.

Each operation receives the task data (`data`). Task data is a snapshot, so the operations
re-read the loan (DPD, stage, overdue amount) and write the fresh values back into `data`
for the next user task's form (its `show_data`). They run inside the facade's transaction
(the caller commits); every change is audited.
"""
import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from accounts.models import User
from audit.operations import record
from cases.models import Loan, PromiseToPay
from collection import contact_rules
from collection.facts import (completed_step, decimal_or_none, loan_of, log_contact, overdue_amount,
                              read_at_start, settlement, snapshot)
from collection.windows import (NOTICE_TIME, PROMISE_CHECK_TIME, add_month, next_call_window,
                                utc_iso, window_range)
from extensions import db
from ledger.models import Repayment
from management.points import award_recovery
from workflows import clock
from workflows.models import HumanTask
from workflows.services import service


# The rules of each stage [001], shown on the phone collection task in both languages:
# who may be called and whether the debt may be revealed to a contact. Which stage a loan is in
# is decided by the diagram's `stage_by_dpd` gateway; this text is keyed by its result.
STAGE_RULES = {
    "dpd_1_3": (
        "黄金期（逾期1–3天）：态度友好。只联系借款人本人；借款人及直系亲属均联系不上时方可联系"
        "联系人。不得向联系人透露欠款。了解逾期的真实原因。",
        "Golden period (DPD 1–3): be friendly. Call the borrower only; contacts only if the "
        "borrower and direct family are unreachable. Do not reveal the debt to a contact. Find "
        "the real reason for the delay."),
    "dpd_4_7": (
        "关键期（逾期4–7天）：可联系联系人，但不得向不知情的联系人透露贷款。可发短信、微信。"
        "告知影响征信的后果。",
        "Key period (DPD 4–7): contacts may be called, but never reveal the loan to a contact "
        "who does not know of it. SMS / WeChat. Mention the credit-report consequences."),
    "dpd_8_30": (
        "拉锯期（逾期8–30天）：联系全部联系人，可以告知欠款，请直系亲属代为还款，邀请客户到公司"
        "面谈。",
        "Tug of war (DPD 8–30): call every contact; the debt may be revealed; ask direct "
        "relatives to pay on the borrower's behalf; invite the client to the branch."),
    "M2": (
        "逾期31–90天：联系全部联系人和保证人，可以告知欠款，要求保证人代偿；可向领导申请上门催收。",
        "DPD 31–90: call every contact and guarantor; the debt may be revealed; demand the "
        "guarantor pays; a visit may be proposed to the leader."),
    "M3+": (
        "逾期超过90天：须通过法律途径催收，诉讼须经领导批准。电话催收期间联系全部联系人和保证人，"
        "可以告知欠款。",
        "Over 90 days: must be collected by legal means; litigation needs the leader's "
        "approval. Meanwhile call every contact and guarantor; the debt may be revealed."),
}
STAGE_RULES["M3"] = STAGE_RULES["M2"]
STAGE_RULES["current"] = STAGE_RULES["dpd_1_3"]



# ---------------------------------------------------------------- operations

@service("collection_refresh")
def refresh(data):
    """Before each phone collection: the fresh DPD, overdue amount and call window. Whether
    litigation is proposed is the diagram's decision (`dpd > 90`); the names its conditions
    read exist from the first round on."""
    read = read_at_start(data["loan_no"])
    if read is None:
        # The borrower, contacts and guarantors the call context shows, with the loan: one query.
        loan = Loan.query.filter_by(loan_no=data["loan_no"]).options(
            joinedload(Loan.borrower), joinedload(Loan.contacts),
            joinedload(Loan.guarantors)).one()
        fresh, calls = snapshot(loan), None
    else:  # started with others (`starting`): read already
        loan, fresh, calls = read
        fresh = dict(fresh)
    # A code, shown through the approval form's choices in the reader's language; the days
    # past due are shown beside it.
    fresh["litigation_reason"] = "long_overdue"
    data.update(fresh)
    # Every phone task, the first of a case too, shows today's calls and the contacts.
    data.update(contact_rules.call_context(loan, calls=calls))
    data.setdefault("litigation_rejected_on", None)
    data.setdefault("preservation_ordered", False)
    return {"dpd": fresh["dpd"]}


@service("collection_stage_rules")
def stage_rules(data):
    """The call rules of the stage the diagram chose, in both languages, for the call form."""
    data["stage_rules_zh"], data["stage_rules_en"] = STAGE_RULES.get(data.get("stage"),
                                                                     STAGE_RULES["M3+"])
    return {"stage": data.get("stage")}


@service("collection_log_call")
def log_call(data):
    """The completed phone collection task: a contact-log entry, a promise to pay if made,
    and the next call window for a retry. A call outside the call windows or over its
    window's maximum is flagged for the leader (collection.contact_rules, issue 11 rule 7)."""
    loan, actor, task_id = completed_step(data, "phone_collection")
    outcome = data.get("collection_result") or "other"
    promised = outcome == "promised_to_pay"
    promised_on = dt.date.fromisoformat(str(data["promised_on"])[:10]) if promised else None
    promised_amount = decimal_or_none(data.get("promised_amount")) if promised else None
    flag = contact_rules.call_flag(loan, data.get("number_called"), data.get("answered_by"),
                                   clock.now())
    entry = log_contact(loan, actor, "call", task_id, number=data.get("number_called") or "",
                        answered_by=data.get("answered_by") or "", outcome=outcome,
                        note=data.get("collection_note") or "", promised_on=promised_on,
                        promised_amount=promised_amount)
    if flag:
        contact_rules.flag_for_leader(loan, entry, actor, flag, task_id)
    record("collection.call_logged", actor=actor, case_id=loan.id, task_id=task_id,
           data={"entry_id": entry.id, "number": entry.number, "answered_by": entry.answered_by,
                 "outcome": outcome, "client_type": data.get("client_type"),
                 "next_step": data.get("next_step"),
                 "debt_disclosed": bool(data.get("debt_disclosed")),
                 "flag": flag["flag"] if flag else None})
    result = {"entry_id": entry.id, "flag": flag["flag"] if flag else None}
    if promised:
        promise = PromiseToPay(loan_id=loan.id, promised_on=promised_on, amount=promised_amount,
                               made_at=clock.now(), user_id=getattr(actor, "id", None),
                               task_id=task_id, status="open")
        db.session.add(promise)
        db.session.flush()
        record("collection.promise_made", actor=actor, case_id=loan.id, task_id=task_id,
               data={"promise_id": promise.id, "promised_on": promised_on.isoformat(),
                     "amount": str(promised_amount)})
        data["promise_id"] = promise.id
        data["promise_check_at"] = utc_iso(promised_on, PROMISE_CHECK_TIME)
        result["promise_id"] = promise.id
    opens, closes = next_call_window(include_current=False)
    data["next_call_at"] = opens.astimezone(dt.timezone.utc).isoformat()
    data["next_call_window"] = window_range(opens, closes)
    # The next phone task shows today's calls per window and the contacts on file.
    data.update(contact_rules.call_context(loan))
    return result


def _settle_promise(promise, kept, actor=None, reason=""):
    promise.status, promise.checked_at = ("kept" if kept else "broken"), clock.now()
    record(f"collection.promise_{promise.status}", actor=actor, case_id=promise.loan_id,
           data={"promise_id": promise.id, "promised_on": promise.promised_on.isoformat(),
                 "amount": str(promise.amount), "reason": reason})


@service("collection_check_promise")
def check_promise(data):
    """The promised evening: kept if the overdue amount is cleared, or if repayments of at
    least the promised amount were posted since the promise; otherwise broken (counted)."""
    loan = loan_of(data)
    promise = db.session.get(PromiseToPay, data["promise_id"])
    if promise.status != "open":  # settled already (e.g. by a repayment that cleared it)
        return {"status": promise.status}
    paid = db.session.scalar(select(func.coalesce(func.sum(Repayment.amount), 0))
                             .where(Repayment.loan_id == loan.id,
                                    Repayment.created_at >= promise.made_at)) or 0
    cleared = overdue_amount(loan) <= 0
    kept = cleared or Decimal(str(paid)) >= promise.amount
    _settle_promise(promise, kept, reason="overdue cleared" if cleared else f"paid {paid}")
    data["promise_status"] = promise.status
    data.update(snapshot(loan))
    return {"status": promise.status, "paid_since": str(paid)}


def _completed_by(loan, bpmn_ids):
    """Who last completed one of these collection tasks of the loan (user name), or None."""
    return db.session.scalar(
        select(User.username).join(HumanTask, HumanTask.completed_by_id == User.id)
        .where(HumanTask.case_id == loan.id, HumanTask.process_key == "collection",
               HumanTask.state == "completed", HumanTask.bpmn_id.in_(bpmn_ids))
        .order_by(HumanTask.completed_at.desc(), HumanTask.id.desc()).limit(1))


def _dpd_collected_at(loan):
    """The DPD collection last worked with (the newest collection task's snapshot): after a
    clearing repayment the loan itself says 0."""
    contexts = db.session.scalars(
        select(HumanTask.context).where(HumanTask.case_id == loan.id,
                                        HumanTask.process_key == "collection")
        .order_by(HumanTask.id.desc()).limit(5))
    return next((int(c["dpd"]) for c in contexts if c and c.get("dpd") is not None), loan.dpd)


def _complete_plans(loan):
    """The overdue amount is cleared, so a repayment plan being tracked has done its work:
    collection ends (with the plan's call activity), and the plan is completed, not left
    running."""
    from collection.plans import RepaymentPlan
    for plan in RepaymentPlan.query.filter_by(loan_id=loan.id, status="active"):
        plan.status, plan.ended_at = "completed", clock.now()
        record("collection.repayment_plan_completed", case_id=loan.id,
               data={"plan_id": plan.id, "reason": "overdue cleared"})


@service("collection_note_repayment")
def note_repayment(data):
    """A repayment message reached collection (the non-interrupting event subprocess): noted in
    the contact log; the open collection task stays open. When it clears the overdue amount,
    open promises are kept and the diagram throws `overdue_cleared`, which ends collection.

    The event subprocess sees the data of the instance's start, not of the open task, so what
    happened since (approvals, who collected) is read from the database."""
    loan = loan_of(data)
    payment = data.get("repayment") or {}
    cleared = bool(payment.get("overdue_cleared"))
    if cleared:
        for promise in PromiseToPay.query.filter_by(loan_id=loan.id, status="open"):
            _settle_promise(promise, True, reason="overdue cleared")
        _complete_plans(loan)
        if _completed_by(loan, ("approve_visit", "approve_litigation")):
            # Collected after the leader's instruction: +3 to the collector [000 §七].
            award_recovery(loan.id, _completed_by(loan, ("visit_report", "phone_collection")),
                           _dpd_collected_at(loan), clock.today())
    note = (f"还款{payment.get('amount')}元，剩余本息{payment.get('outstanding')}元；"
            + ("逾期已结清，催收结束。" if cleared else "仍有逾期，继续催收。")
            + f" / Repayment of {payment.get('amount')}, "
            + f"outstanding {payment.get('outstanding')}; "
            + ("overdue cleared, collection ends." if cleared
               else "still overdue, collection goes on."))
    entry = log_contact(loan, None, "note", outcome="other", note=note)
    record("collection.repayment_noted", case_id=loan.id,
           data={"entry_id": entry.id, "amount": payment.get("amount"),
                 "outstanding": payment.get("outstanding"), "overdue_cleared": cleared})
    return {"overdue_cleared": cleared}


def _guarantor_repayment_id(data):
    """The repayment the guarantor demand just posted (its row keeps it), or None."""
    if data.get("guarantor_demand_result") not in ("paid", "partly_paid") \
            or not data.get("guarantor_demand_id"):
        return None
    from collection.guarantors import GuarantorDemand
    demand = db.session.get(GuarantorDemand, data["guarantor_demand_id"])
    return demand.repayment_id if demand is not None else None


@service("collection_tactic_refresh")
def tactic_refresh(data):
    """After the guarantor demand or the repayment plan (call activities): the overdue amount
    read again for the diagram's `tactic_cleared` gateway (`overdue_cleared`).

    A guarantor's payment was posted while collection itself was running, so the ledger's
    `repayment` message could not reach collection's event subprocess (an instance never
    receives its own messages mid-run): it is noted here the same way (contact log, open
    promises kept when cleared, the collector's recovery points)."""
    loan = loan_of(data)
    facts = settlement(loan)
    repayment_id = _guarantor_repayment_id(data)
    if repayment_id and repayment_id != data.get("tactic_noted_repayment_id"):
        repayment = db.session.get(Repayment, repayment_id)
        note_repayment(dict(data, repayment={
            "amount": str(repayment.amount), "outstanding": str(loan.outstanding),
            "overdue_cleared": facts["overdue_cleared"],
            "fully_repaid": loan.outstanding <= 0}))
        data["tactic_noted_repayment_id"] = repayment_id
    data.update(facts)
    data.update({k: v for k, v in snapshot(loan).items() if k in ("dpd", "broken_promises")})
    record("collection.tactic_ended", case_id=loan.id,
           data={"guarantor_demand_result": data.get("guarantor_demand_result"),
                 "repayment_plan_result": data.get("repayment_plan_result"),
                 "overdue_amount": facts["overdue_amount"],
                 "overdue_cleared": facts["overdue_cleared"]})
    return {"overdue_cleared": facts["overdue_cleared"]}


@service("collection_log_visit")
def log_visit(data):
    """The visit report: a contact-log entry of kind visit; bad situations propose litigation."""
    loan, actor, task_id = completed_step(data, "visit_report")
    situation = data.get("visit_situation") or ""
    note = "\n".join(part for part in (data.get("visit_findings") or "",
                                       data.get("visit_photos_note") or "") if part)
    entry = log_contact(loan, actor, "visit", task_id, address=data.get("visit_address") or "",
                        answered_by=data.get("visit_met") or "", outcome=situation, note=note)
    record("collection.visit_logged", actor=actor, case_id=loan.id, task_id=task_id,
           data={"entry_id": entry.id, "address": entry.address, "met": entry.answered_by,
                 "situation": situation})
    if situation in ("wilful_default", "deteriorating"):
        data["litigation_reason"] = situation  # a code, labelled by the forms' choices
    data.update({k: v for k, v in snapshot(loan).items() if k in ("dpd", "overdue_amount")})
    return {"entry_id": entry.id, "situation": situation}


@service("collection_plan_notice")
def plan_notice(data):
    """The next monthly written collection notice: one month on, 10:00 Beijing time."""
    due = add_month(clock.today())
    data["notice_at"] = utc_iso(due, NOTICE_TIME)
    data["notice_due_on"] = due.isoformat()
    return {"notice_at": data["notice_at"]}


@service("collection_notice_refresh")
def notice_refresh(data):
    """When the monthly notice is due: the loan's current DPD and overdue amount."""
    fresh = snapshot(loan_of(data))
    data.update({k: fresh[k] for k in ("dpd", "overdue_amount")})
    return {"dpd": fresh["dpd"]}


@service("collection_log_notice")
def log_notice(data):
    """The written notice sent and its signed receipt, in the contact log (the letter itself
    was issued from its template by the step before, `issue_notice`)."""
    loan, actor, task_id = completed_step(data, "written_notice")
    receipt = data.get("receipt_status") or ""
    note = (f"书面催收通知书 / Written collection notice: sent {data.get('notice_sent_on')} "
            f"by {data.get('notice_channel')}, receipt {receipt}"
            + (f" signed by {data.get('receipt_signed_by')} on {data.get('receipt_signed_on')}"
               if receipt == "signed" else "")
            + (f"\n{data['notice_note']}" if data.get("notice_note") else ""))
    entry = log_contact(loan, actor, "note", task_id, address=data.get("notice_address") or "",
                        outcome="other", note=note)
    record("collection.notice_sent", actor=actor, case_id=loan.id, task_id=task_id,
           data={"entry_id": entry.id, "sent_on": data.get("notice_sent_on"),
                 "channel": data.get("notice_channel"), "receipt": receipt,
                 "signed_by": data.get("receipt_signed_by"),
                 "signed_on": data.get("receipt_signed_on"),
                 "notice_id": (data.get("notices_sent") or {}).get("collection_notice")})
    return {"entry_id": entry.id}
