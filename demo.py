"""Demo users and about twenty loans at different points of the handover."""
import datetime as dt

from accounts.models import User
from accounts.operations import create_user
from accounts.roles import ROLES
from cases.models import Loan
from cases.operations import register_loan
from workflows.inbox import open_tasks_of_case
from workflows.service import claim_task, complete_task

DEMO_PASSWORD = "daihou-demo"
EXTRA_USERS = {"account_manager2": ["account_manager"],
               "post_loan_officer2": ["post_loan_officer"],
               "dual": ["account_manager", "post_loan_officer"]}
BORROWERS = ["杭州明远贸易有限公司", "张伟", "宁波海丰机械有限公司", "李娜", "苏州恒信纺织有限公司",
             "王强", "温州瑞达电器有限公司", "刘洋", "嘉兴华创包装有限公司", "陈静",
             "绍兴金诚建材有限公司", "杨磊", "湖州绿源农业合作社", "赵敏", "台州东升汽配有限公司",
             "黄涛", "金华万通物流有限公司", "周婷", "丽水山泉食品有限公司", "吴斌"]

HANDOVER = {"documents": ["contract", "iou", "guarantee", "due_diligence", "approval_minutes"],
            "purpose": "采购原材料 / purchase of raw materials",
            "repayment_source": "销售回款 / sales receipts",
            "risk_points": "应收账款集中 / concentrated receivables"}


def _user(name):
    return User.query.filter_by(username=name).one()


def _open_task(loan):
    return open_tasks_of_case(loan.id)[0]


def _walk(loan, step):
    """Move a new loan's handover forward `step` stages."""
    manager = loan.account_manager
    officer = _user("post_loan_officer")
    if step >= 1:
        claim_task(_open_task(loan).id, manager)
    if step >= 2:
        complete_task(_open_task(loan).id, manager, data=HANDOVER)
    if step == 3:
        complete_task(_open_task(loan).id, officer, data={
            "check_result": "incomplete", "missing_items": ["collateral"],
            "check_note": "缺抵押登记证明 / collateral registration certificate missing"})
    if step >= 4:
        complete_task(_open_task(loan).id, officer, data={"check_result": "complete"})
    if step >= 5:
        complete_task(_open_task(loan).id, officer, data={
            "ledger_no": f"TZ-{loan.loan_no}", "risk_group": "normal",
            "inspection_frequency": "monthly"})


def load_demo(if_empty=False):
    if User.query.first() is not None:
        if if_empty:
            return "database already has users; demo data not loaded"
    for role in ROLES:
        if not User.query.filter_by(username=role).first():
            create_user(role, DEMO_PASSWORD, [role], display_name=f"demo {role}")
    for name, roles in EXTRA_USERS.items():
        if not User.query.filter_by(username=name).first():
            create_user(name, DEMO_PASSWORD, roles, display_name=f"demo {name}")
    admin = _user("admin")
    # Stages: 0 new, 1 claimed, 2 handed over, 3 returned incomplete, 4 checked, 5 registered.
    stages = [0] * 6 + [1] * 3 + [2] * 4 + [3] * 2 + [4] * 2 + [5] * 3
    created = 0
    for i, (borrower, stage) in enumerate(zip(BORROWERS, stages), start=1):
        loan_no = f"DH2026-{i:04d}"
        if Loan.query.filter_by(loan_no=loan_no).first():
            continue
        disbursed = dt.date(2026, 11, 2) + dt.timedelta(days=i)
        loan = register_loan({
            "loan_no": loan_no, "borrower_name": borrower,
            "principal": str(100000 * (1 + i % 7)), "interest_rate": "0.0435",
            "disbursed_on": disbursed.isoformat(),
            "maturity_on": (disbursed + dt.timedelta(days=180 + 30 * (i % 6))).isoformat(),
            "account_manager": "account_manager" if i % 2 else "account_manager2"}, admin)
        _walk(loan, stage)
        created += 1
    return f"demo data loaded: {len(ROLES) + len(EXTRA_USERS)} users, {created} loans " \
           f"(password for every demo user: {DEMO_PASSWORD})"
