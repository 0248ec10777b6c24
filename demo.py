"""Demo users and loans at every point of their life: in handover, in servicing with
reminders, overdue in collection, and fully repaid in closure."""
import contextlib
import datetime as dt
import os

from flask import current_app

from accounts.models import User
from accounts.operations import create_user
from accounts.roles import ROLES
from cases.models import Loan
from cases.operations import register_loan
from ledger.repayments import post_repayment
from cases.staging import run_daily
from workflows import clock
from workflows.inbox import open_tasks_of_case
from workflows.tasks import claim_task, complete_task

DEMO_PASSWORD = "daihou-demo"
EXTRA_USERS = {"account_manager2": ["account_manager"],
               "post_loan_officer2": ["post_loan_officer"],
               "dual": ["account_manager", "post_loan_officer"]}
# People's names, shown wherever a person is meant (the user name is only for logging in).
DISPLAY_NAMES = {"account_manager": "王敏", "back_office": "孙丽", "post_loan_officer": "李强",
                 "collector": "赵刚", "risk_manager": "周洁", "dept_head": "陈建国",
                 "general_manager": "刘振华", "legal": "郑文博", "compliance": "吴芳",
                 "process_owner": "钱磊", "admin": "系统管理员", "account_manager2": "林晓",
                 "post_loan_officer2": "何平", "dual": "许诺"}
BORROWERS = ["杭州明远贸易有限公司", "张伟", "宁波海丰机械有限公司", "李娜", "苏州恒信纺织有限公司",
             "王强", "温州瑞达电器有限公司", "刘洋", "嘉兴华创包装有限公司", "陈静",
             "绍兴金诚建材有限公司", "杨磊", "湖州绿源农业合作社", "赵敏", "台州东升汽配有限公司",
             "黄涛", "金华万通物流有限公司", "周婷", "丽水山泉食品有限公司", "吴斌"]

HANDOVER = {"documents": ["contract", "iou", "guarantee", "due_diligence", "approval_minutes"],
            "purpose": "采购原材料",
            "repayment_source": "销售回款",
            "risk_points": "应收账款集中"}


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
            "check_note": "缺抵押登记证明"})
    if step >= 4:
        complete_task(_open_task(loan).id, officer, data={"check_result": "complete"})
    if step >= 5:
        complete_task(_open_task(loan).id, officer, data={
            "ledger_no": f"TZ-{loan.loan_no}", "risk_group": "normal",
            "inspection_frequency": "monthly"})


def _payload(i, borrower, disbursed, maturity, schedule=None):
    company = borrower.endswith(("公司", "合作社"))
    body = {"loan_no": f"DH2026-{i:04d}", "borrower_name": borrower,
            "product": "installment" if schedule else "term",
            "principal": str(100000 * (1 + i % 7)),
            # DH2026-0022 bears 9%: its penalty rate (13.5%) is held at the legal ceiling.
            "interest_rate": "0.09" if i == 22 else "0.0435",
            "disbursed_on": disbursed.isoformat(), "maturity_on": maturity.isoformat(),
            "account_manager": "account_manager" if i % 2 else "account_manager2",
            "purpose": "采购原材料",
            "repayment_account": f"6222 0202 0011 {i:04d}",
            "borrower": {"kind": "company" if company else "person", "name": borrower,
                         "phones": [f"1380013{i:04d}"],
                         "addresses": [f"浙江省杭州市西湖区文三路{i}号"]},
            "contacts": [] if company else [
                {"name": "王丽", "relationship": "配偶", "phone": f"1390013{i:04d}",
                 "knows_about_loan": True},
                {"name": "陈刚", "relationship": "同事",
                 "phone": f"1370013{i:04d}", "knows_about_loan": False}],
            "collateral": [{"kind": "mortgage", "description": "厂房",
                            "location": "杭州市余杭区", "registration_no": f"浙(2026)余杭不动产第{i:05d}号"}]
            if company else [],
            "guarantors": _guarantors(i, company)}
    if schedule:
        body["schedule"] = schedule
    return body


# The legal representatives who guarantee their companies' loans, and the guarantors of two
# of the people's loans (issue 16: the guarantor watch and the guarantor demand).
GUARANTOR_NAMES = {1: "陈明远", 3: "徐海丰", 5: "沈恒信", 7: "林瑞达", 9: "褚华创", 11: "金诚",
                   13: "邵绿源", 15: "潘东升", 17: "葛万通", 19: "蒋山泉", 21: "钱多多",
                   22: "蔡宏达"}


def resident_id(i, born="19750315"):
    """A resident ID number of Hangzhou with its GB 11643 check digit (demo people only)."""
    body = f"330106{born}{i:03d}"
    total = sum(int(d) * w for d, w in zip(body, (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5,
                                                   8, 4, 2)))
    return body + "10X98765432"[total % 11]


def _guarantors(i, company):
    """A company's legal representative guarantees its loan; DH2026-0022 also has a guarantee
    company, DH2026-0021 (a person's loan, overdue) a guarantor."""
    if i not in GUARANTOR_NAMES:
        return []
    people = [{"kind": "person", "name": GUARANTOR_NAMES[i], "id_number": resident_id(i),
               "phone": f"1350013{i:04d}", "address": f"浙江省杭州市拱墅区湖墅南路{i}号"}]
    if i == 22:
        people.append({"kind": "company", "name": "衢州信诚融资担保有限公司",
                       "phone": "0570-3088022", "address": "浙江省衢州市柯城区荷花中路22号"})
    return people


def _schedule(principal, dates):
    """Equal principal on each date (the last takes the rounding), a round interest figure."""
    share = round(principal / len(dates), 2)
    amounts = [share] * (len(dates) - 1) + [round(principal - share * (len(dates) - 1), 2)]
    return [{"due_on": d.isoformat(), "principal": f"{a:.2f}", "interest": "1200.00"}
            for d, a in zip(dates, amounts)]


def history_size():
    """How many loans of history (demo_history) `demo load` writes: DEMO_HISTORY_LOANS from
    the configuration or the environment, 200 by default (a load of about 90 s of CPU; 300
    take 150 s); none in the test suite unless it asks (its demo tests count the 23 loans
    below)."""
    value = current_app.config.get("DEMO_HISTORY_LOANS", os.environ.get("DEMO_HISTORY_LOANS"))
    if value is None:
        return 0 if current_app.testing else 200
    return int(value)


def load_demo(if_empty=False):
    if User.query.first() is not None:
        if if_empty:
            return "database already has users; demo data not loaded"
    from demo_history import before_history, load_history
    from demo_people import new_users, set_up_teams
    history = history_size()
    # With a history the people exist before it starts (the clock goes forward from there).
    with before_history() if history else contextlib.nullcontext():
        for role in ROLES:
            if not User.query.filter_by(username=role).first():
                create_user(role, DEMO_PASSWORD, [role],
                            display_name=DISPLAY_NAMES.get(role, role))
        for name, roles in EXTRA_USERS.items():
            if not User.query.filter_by(username=name).first():
                create_user(name, DEMO_PASSWORD, roles,
                            display_name=DISPLAY_NAMES.get(name, name))
        new_users(DEMO_PASSWORD)
        set_up_teams(_user("admin"))
    admin = _user("admin")
    kinds = load_history(history, admin=admin) if history else {}
    today = clock.today()
    # Stages: 0 new, 1 claimed, 2 handed over, 3 returned incomplete, 4 checked, 5 registered.
    stages = [0] * 6 + [1] * 3 + [2] * 4 + [3] * 2 + [4] * 2 + [5] * 3
    created = 0
    for i, (borrower, stage) in enumerate(zip(BORROWERS, stages), start=1):
        if Loan.query.filter_by(loan_no=f"DH2026-{i:04d}").first():
            continue
        disbursed = today - dt.timedelta(days=25 - i)
        maturity = disbursed + dt.timedelta(days=180 + 30 * (i % 6))
        schedule = None
        if stage == 5:  # registered loans: installments soon, so reminders are near
            dates = [today + dt.timedelta(days=14), today + dt.timedelta(days=45), maturity]
            schedule = _schedule(100000 * (1 + i % 7), dates)
        elif i % 3 == 0:  # every third other loan repays in three installments
            dates = [disbursed + dt.timedelta(days=60), disbursed + dt.timedelta(days=120),
                     maturity]
            schedule = _schedule(100000 * (1 + i % 7), dates)
        loan = register_loan(_payload(i, borrower, disbursed, maturity, schedule), admin)
        _walk(loan, stage)
        created += 1
    created += _servicing_stories(admin, today)
    from guarantees import collateral_demo, guarantor_demo
    collateral_demo.load(today, admin)
    run_daily(today)
    collateral_demo.after_daily_run()
    guarantor_demo.load(today, admin)
    overdue = Loan.query.filter(Loan.dpd > 0).count()
    return f"demo data loaded: {User.query.count()} users, {created} loans, " \
           f"{sum(kinds.values())} loans of history, {overdue} overdue " \
           f"(password for every demo user: {DEMO_PASSWORD})"


def _servicing_stories(admin, today):
    """Two loans overdue since nine days ago and one repaid in full, relative to today."""
    stories = [(21, "钱坤"), (22, "衢州宏达五金有限公司"), (23, "孙悦")]
    created = 0
    for i, borrower in stories:
        if Loan.query.filter_by(loan_no=f"DH2026-{i:04d}").first():
            continue
        disbursed = today - dt.timedelta(days=180)
        if i < 23:
            dates = [today - dt.timedelta(days=70), today - dt.timedelta(days=9),
                     today + dt.timedelta(days=90)]
            payload = _payload(i, borrower, disbursed, dates[-1],
                               _schedule(100000 * (1 + i % 7), dates))
        else:
            payload = _payload(i, borrower, disbursed, today + dt.timedelta(days=120))
        loan = register_loan(payload, admin)
        _walk(loan, 5)
        first = loan.installments[0]
        amount = first.outstanding if i < 23 else loan.outstanding
        post_repayment(loan, {"amount": str(amount), "paid_at": first.due_on.isoformat()
                              if i < 23 else today.isoformat(),
                              "external_ref": f"DEMO-{i}"}, admin)
        created += 1
    return created
