"""The staff's work in the demo history (demo_history.World): each step is a task of the
running processes, claimed and completed with its form's data as the people would fill it in,
at the hours the day loop calls them. Tasks of loans outside the history are left alone."""
import datetime as dt
from decimal import Decimal

from demo_history import HANDOVER, _money, do, ready
from guarantees.guarantor_demo import check_before_report
from workflows.inbox import open_tasks_of_case

# The share of a stage's open phone tasks worked on a given day: the early days get most calls.
CALL_SHARE = {"dpd_1_3": 0.8, "dpd_4_7": 0.5, "dpd_8_30": 0.3, "M2": 0.2, "M3": 0.15,
              "M3+": 0.1}
# What a defaulter's phone does, with weights.
DEFAULT_OUTCOMES = (("no_answer", 30), ("switched_off", 15), ("reached", 20), ("refused", 15),
                    ("promised_to_pay", 20))
NOTES = {"reached": ("客户称近期资金紧张，下周回款后处理", "客户表示知悉，正在筹款",
                     "客户称货款未到账，会尽快安排"),
         "refused": ("客户情绪激动，拒绝沟通还款安排", "客户称经营困难，暂无还款能力"),
         "no_answer": ("响铃无人接听", "多次拨打无人接听"),
         "switched_off": ("提示关机", "电话关机，稍后再拨"),
         "promised_to_pay": ("客户承诺按期还款", "客户同意先还部分欠款")}


class Work:
    def __init__(self, world):
        self.world, self.rng = world, world.rng

    def story(self, task):
        return self.world.by_loan.get(task.case_id)

    # --- handover: filed, checked and registered on the day of disbursement
    def handovers(self, day):
        for story in self.world.by_day.get(day, ()):
            manager = self.world.staff(story, "account_manager")
            officer = self.world.staff(story, "post_loan_officer")
            for user, data in (
                    (manager, HANDOVER),
                    (officer, {"check_result": "complete"}),
                    (officer, {"ledger_no": f"TZ-{story.payload['loan_no']}",
                               "risk_group": "normal", "inspection_frequency": "quarterly"})):
                (task,) = open_tasks_of_case(story.loan_id)
                do(task, user, data)

    # --- collection: one call a working day (or fewer as the debt ages)
    def calls(self, day):
        for task in ready(["phone_collection"]):
            story = self.story(task)
            context = task.context or {}
            if story is None or self.rng.random() > CALL_SHARE.get(context.get("stage"), 0.5):
                continue
            do(task, self.world.staff(story, "collector"), self._call(story, context, day))

    def _call(self, story, context, day):
        phone = story.payload["borrower"]["phones"][0]
        overdue = Decimal(context.get("overdue_amount") or "0")
        upcoming = self.world.next_payment(story, day)
        if story.kind == "default" and (upcoming is None or (upcoming - day).days > 10):
            outcome = self.rng.choices([o for o, _w in DEFAULT_OUTCOMES],
                                       [w for _o, w in DEFAULT_OUTCOMES])[0]
            promised = day + dt.timedelta(days=self.rng.randint(2, 6))
            share = Decimal("0.5")
        elif upcoming is not None and (upcoming - day).days <= 25 and upcoming > day:
            outcome, promised = "promised_to_pay", upcoming
            share = Decimal("0.25") if story.kind == "default" else Decimal(1)
        else:
            outcome, promised, share = "reached", None, None
        data = {"number_called": phone, "collection_result": outcome,
                "answered_by": "nobody" if outcome in ("no_answer", "switched_off")
                else "borrower", "next_step": "continue",
                "collection_note": self.rng.choice(NOTES[outcome])}
        if outcome == "promised_to_pay":
            data.update(promised_on=promised.isoformat(),
                        promised_amount=str(max(_money(overdue * share), Decimal("100.00"))))
        if story.kind == "default" and outcome != "no_answer":
            data["client_type"] = self.rng.choice(("able_unwilling", "willing_unable"))
        return data

    def notices(self, day):
        for task in ready(["written_notice"]):
            story = self.story(task)
            if story is None:
                continue
            signed = self.rng.random() < 0.7
            data = {"notice_sent_on": day.isoformat(), "notice_channel": "registered_mail",
                    "notice_address": story.payload["borrower"]["addresses"][0],
                    "receipt_status": "signed" if signed else "pending"}
            if signed:
                data.update(receipt_signed_by=story.payload["borrower_name"],
                            receipt_signed_on=day.isoformat())
            do(task, self.world.staff(story, "collector"), data)

    def leaders(self, day):
        """Litigation over 90 days: approved for every other loan, else held back a month."""
        for task in ready(["approve_litigation"]):
            story = self.story(task)
            if story is None:
                continue
            approve = story.loan_id % 2 == 0
            do(task, self.world.staff(story, "leader"), {
                "litigation_decision": "approve" if approve else "reject",
                "litigation_comment": "逾期超过90天且多次违约，同意起诉" if approve
                else "客户仍有还款意愿，继续电话催收一个月"})

    def late_followups(self, day):
        """Friday: each leader decides on the week's late follow-ups of their team's loans,
        waiving most (the debtor would not pick up; followed up the next morning)."""
        from sqlalchemy import select
        from cases.models import LateFollowUp
        from extensions import db
        from management.sla import impose_fine, waive_late_followup
        undecided = db.session.scalars(select(LateFollowUp).where(
            LateFollowUp.waived_at.is_(None), LateFollowUp.fined_at.is_(None))
            .order_by(LateFollowUp.id)).all()
        for late in undecided:
            story = self.world.by_loan.get(late.loan_id)
            if story is None:
                continue
            leader = self.world.staff(story, "leader")
            if self.rng.random() < 0.05:
                impose_fine(late.id, "经提醒后仍未及时跟进", leader)
            else:
                waive_late_followup(late.id, "客户长期不接电话，已于次日跟进", leader)

    # --- servicing: the back office's reminders, the account managers' inspections
    def reminders(self, day):
        """The back office's calls before the due dates of the borrowers who had trouble
        paying (the others' reminders are cancelled by their payment on the due date)."""
        for task in ready(["remind_borrower", "follow_up_call"]):
            story = self.story(task)
            if story is None or story.kind == "good":
                continue
            context = task.context or {}
            if task.bpmn_id == "follow_up_call":
                data = {"reached": "yes", "promised_on": day.isoformat(),
                        "promised_amount": context.get("amount") or "0.01",
                        "follow_up_note": "已提醒客户尽快存入足额款项"}
            else:
                data = {"channel": "phone", "reached": "yes",
                        "confirmed_due_on": context.get("due_on"),
                        "confirmed_account": story.payload["repayment_account"],
                        "confirmed_amount": context.get("amount"),
                        "enough_balance": "yes" if self._on_time(story, context) else "unknown"}
            do(task, self.world.users["back_office"], data)

    def tracking(self, day):
        for task in ready(["track_repayment"]):
            story = self.story(task)
            if story is None:
                continue
            on_time = self._on_time(story, task.context or {})
            do(task, self.world.users["back_office"], {
                "debit_result": "not_yet" if on_time else "insufficient",
                "tracking_note": "" if on_time else "还款账户余额不足"})

    def _on_time(self, story, context):
        due = dt.date.fromisoformat(context["due_on"]) if context.get("due_on") else None
        return any(day == due and fraction == 1 for day, _upto, fraction in story.payments)

    def inspections(self, day):
        report = {"licence_status": "normal", "enforcement_company": "none",
                  "enforcement_legal_rep": "none", "enforcement_shareholders": "none",
                  "business_changed": "no", "staff_premises": "经营场所正常，员工稳定",
                  "cash_receivables": "账户流水正常，应收账款账期约60天",
                  "suppliers_customers": "主要上下游客户未发生变化",
                  "revenue_margin": "营业收入与去年同期基本持平", "funds_use": "as_stated",
                  "funds_use_note": "贷款资金按约定用途使用", "other_debts": "无新增对外负债",
                  "collateral_check": "抵押物状态正常", "repayment_source": "经营收入稳定",
                  "client_needs": "暂无", "methods": ["ask", "observe"],
                  "risk_report": "未发现重大风险", "risk_signals": "none"}
        for bpmn_id, role, data in (
                ("inspect", "account_manager", report),
                ("review", "post_loan_officer", {"review_result": "approved"}),
                ("approve", "leader", {"approval_result": "approved"})):
            for task in ready([bpmn_id]):
                story = self.story(task)
                if story is None or task.process_key != "inspection":
                    continue
                if bpmn_id == "inspect" and self.rng.random() < 0.2:
                    continue  # done another day (now and then after its due date)
                if story.payload["borrower"]["kind"] == "person":
                    data = dict(data, licence_status="not_applicable",
                                enforcement_company="not_applicable") \
                        if bpmn_id == "inspect" else data
                actor = self.world.staff(story, role)
                if bpmn_id == "inspect":  # the report needs each guarantor checked first
                    check_before_report(task, actor)
                do(task, actor, data)
