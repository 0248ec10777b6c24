"""The demo's guarantor story (issue 16), called by demo.load_demo after the daily run.

- DH2026-0022 (衢州宏达五金有限公司, 9 days overdue): the collector's call finds the borrower
  lost (phone switched off, premises empty) and chooses to demand payment from the guarantor:
  the written demand goes to the guarantee company; its answer is awaited (the collector's
  "Record the guarantor's response" task is open, the demand shows on the case page). Its
  guarantors were checked by the account manager the day before.
- DH2026-0019 (丽水山泉食品有限公司): the account manager's check finds its guarantor weaker
  (capacity weakened, a court enforcement): a risk signal of category 8 and its warning.
- DH2026-0021 (钱坤, overdue) keeps its phone task: the collector can try the demand live.
"""
from sqlalchemy import select

from accounts.models import User
from cases.models import Loan
from extensions import db
from guarantees.guarantors import record_check, unchecked
from workflows import clock
from workflows.models import HumanTask
from workflows.tasks import claim_task, complete_task

ADEQUATE = {"reachable": True, "capacity": "adequate", "court_enforcement": False}


def _user(name):
    return User.query.filter_by(username=name).one()


def _ready(loan, bpmn_id):
    return db.session.scalars(select(HumanTask).where(
        HumanTask.case_id == loan.id, HumanTask.bpmn_id == bpmn_id,
        HumanTask.state == "ready")).first()


def _do(task, user, data):
    if task.claimed_by_id is None:
        claim_task(task.id, user)
    return complete_task(task.id, user, data=data)


def load(today, admin):
    """Returns how many demo loans it changed."""
    changed = 0
    lost = Loan.query.filter_by(loan_no="DH2026-0022").first()
    if lost is not None and lost.guarantors and _ready(lost, "phone_collection") is not None:
        _lost_contact(lost, today)
        changed += 1
    weaker = Loan.query.filter_by(loan_no="DH2026-0019").first()
    if weaker is not None and weaker.guarantors and weaker.guarantors[0].checked_at is None:
        record_check(weaker.guarantors[0], {
            "reachable": True, "capacity": "weakened",
            "capacity_note": "其名下另一家公司经营亏损，个人房产已抵押给银行",
            "court_enforcement": True,
            "enforcement_note": "丽水市莲都区人民法院（2026）浙1102执1234号，执行标的¥380,000.00"},
            weaker.account_manager, "staff")
        changed += 1
    return changed


def _lost_contact(loan, today):
    manager, collector = loan.account_manager, _user("collector")
    person, company = loan.guarantors[0], loan.guarantors[-1]
    record_check(person, dict(ADEQUATE, capacity_note="名下有两处住房，无其他对外担保"),
                 manager, "staff")
    if company.kind == "company":
        record_check(company, dict(ADEQUATE, licence_status="normal"), manager, "staff")
    _do(_ready(loan, "phone_collection"), collector, {
        "number_called": f"1380013{loan.loan_no[-4:]}", "answered_by": "nobody",
        "collection_result": "switched_off", "client_type": "lost_contact",
        "next_step": "demand_guarantor",
        "collection_note": "借款人及法定代表人电话均关机，经营场所已人去楼空，借款人失联；"
                           "向保证人发出代偿催收函"})
    notice = _ready(loan, "send_demand_notice")
    number = loan.guarantors.index(company) + 1
    _do(notice, collector, {
        "demand_guarantor_no": number, "demand_sent_on": clock.today().isoformat(),
        "demand_channel": "registered_mail", "demand_receipt": "pending",
        "demand_receipt_note": "EMS 1100 2233 022"})


def check_before_report(task, actor):
    """The demo's account manager checks each guarantor of an inspection report task (all
    well: reachable, able to pay, no court enforcement, licence normal) before sending the
    report, as the report requires (guarantees.guarantors.check_inspection_report); the demo
    history's inspections (demo_work.Work.inspections) do the same."""
    for guarantor in unchecked(task):
        values = dict(ADEQUATE, licence_status="normal") \
            if guarantor.kind == "company" else ADEQUATE
        record_check(guarantor, values, actor, "inspection", task=task)
