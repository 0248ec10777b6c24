"""The demo's collateral story (issue 16): `load` is called by demo.load_demo before the daily
run, `after_daily_run` after it.

Every demo mortgage gets its real-estate registration (office, dates), insurance and an intake
valuation of about twice the principal. Three of them tell the story the daily run's watch
then raises, each a category-8 risk signal for the leader and the risk manager:
DH2026-0019's registration expires next month; DH2026-0022 was last valued 13 months ago (its
revaluation starts for the post-loan officers); DH2026-0011's valuation has fallen close to
its principal (loan-to-value over 70%). The leader gives an opinion on DH2026-0019's warning,
so that the risk manager's decision on it waits in the risk manager's inbox."""
import calendar
import datetime as dt
from decimal import Decimal

from audit.operations import record
from cases.models import Collateral, Loan, RiskSignal
from extensions import db
from guarantees.models import CollateralValuation, CollateralWarning
from workflows import clock
from workflows.models import HumanTask
from workflows.tasks import claim_task, complete_task

OFFICES = {"余杭": "杭州市余杭区不动产登记中心"}
INSURERS = ("中国人民财产保险股份有限公司杭州市分公司", "中国平安财产保险股份有限公司浙江分公司")


def _next_month(today, day):
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _years(day, years):
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def load(today, admin):
    """Returns how many demo loans it changed."""
    changed = 0
    rows = (db.session.query(Collateral, Loan).join(Loan, Loan.id == Collateral.loan_id)
            .filter(Loan.loan_no.like("DH2026-%"), Collateral.kind == "mortgage")
            .order_by(Loan.loan_no).all())
    for n, (item, loan) in enumerate(rows):
        if item.registration_office:  # loaded before
            continue
        registered = loan.disbursed_on - dt.timedelta(days=7)
        item.asset_type = "real_estate"
        item.registration_office = OFFICES["余杭"]
        item.registered_on = registered
        item.registration_expires_on = _years(registered, 3)
        item.insurance_policy = f"PQYC2026330100{loan.id:06d}"
        item.insurer = INSURERS[n % 2]
        item.insurance_expires_on = _years(registered, 1)
        value, valued_on = (loan.principal * 2).quantize(Decimal("0.01")), loan.disbursed_on
        if loan.loan_no == "DH2026-0019":
            item.registration_expires_on = _next_month(today, 11)
        elif loan.loan_no == "DH2026-0022":
            valued_on = today - dt.timedelta(days=396)
        elif loan.loan_no == "DH2026-0011":
            value = (loan.principal * Decimal("1.2")).quantize(Decimal("0.01"))
        item.valuation = item.valuation or value
        db.session.add(CollateralValuation(
            collateral_id=item.id, loan_id=loan.id, value=value, valued_on=valued_on,
            method="appraisal", valuer="浙江中联资产评估有限公司", source="intake",
            note="贷前评估报告", entered_by_id=admin.id, created_at=clock.now()))
        record("collateral.records_changed", actor=admin, case_id=loan.id, data={
            "collateral_id": item.id, "demo": True,
            "registration_expires_on": item.registration_expires_on.isoformat()})
        changed += 1
    db.session.commit()
    return changed


def after_daily_run():
    """The department head's opinion on DH2026-0019's registration warning: the risk
    manager's "Decide the counter-measure" is then open. Returns how many loans it changed."""
    from accounts.models import User
    warning = (db.session.query(CollateralWarning).join(Loan, Loan.id == CollateralWarning.loan_id)
               .filter(Loan.loan_no == "DH2026-0019",
                       CollateralWarning.reason == "registration_expiring").first())
    head = User.query.filter_by(username="dept_head").first()
    signal = db.session.get(RiskSignal, warning.signal_id) if warning is not None else None
    if signal is None or head is None:
        return 0
    task = HumanTask.query.filter_by(instance_id=signal.instance_id, bpmn_id="opinion",
                                     state="ready").first()
    if task is None:
        return 0
    claim_task(task.id, head)
    complete_task(task.id, head, data={
        "assessment": "抵押登记下月到期，须在到期前办妥续登记，否则抵押权存在落空风险。"
                      "建议督促借款人配合办理，并加强监测。",
        "recommended": "closer_monitoring"})
    return 1
