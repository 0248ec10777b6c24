"""Due-date reminders (DOMAIN.md §5.2): one `reminders` instance per unpaid installment.

The reminder day is N working days before the due date (per product: the final maturity and
the other installments have their own lead). A due date in a year whose working-day calendar
nobody has entered cannot be planned: the case gets an open problem naming the year, and the
reminder is scheduled when an administrator enters that year (retry_calendar_problems).
"""

from audit.operations import record
from calendars.workdays import CalendarUnknown, subtract_working_days
from cases.models import CaseProblem, Loan, Product
from ledger.models import Installment
from extensions import db
from workflows import clock
from workflows.service import cancel_instance, running_instances, start_process
from workflows.services import service
from workflows.tasks import AFTER_COMPLETE
from workflows.models import ProcessInstance

PROCESS = "reminders"


def installment_key(installment):
    return f"installment:{installment.seq}"


def _lead_days(loan, installment):
    product = db.session.get(Product, loan.product) or Product(maturity_lead_days=5,
                                                               installment_lead_days=1)
    final = installment.due_on >= loan.maturity_on
    return product.maturity_lead_days if final else product.installment_lead_days


def _has_reminder(loan, installment):
    # A cancelled reminder (e.g. its due date moved by an extension) does not count.
    return db.session.query(ProcessInstance.id).filter(
        ProcessInstance.case_id == loan.id,
        ProcessInstance.business_key == installment_key(installment),
        ProcessInstance.status != "cancelled").first() is not None


def _open_problem(loan, year, installment):
    exists = CaseProblem.query.filter_by(loan_id=loan.id, kind="calendar_year_missing",
                                         year=year, resolved_at=None).all()
    seqs = {p.detail.get("installment_seq") for p in exists}
    if installment.seq in seqs:
        return
    db.session.add(CaseProblem(loan_id=loan.id, kind="calendar_year_missing", year=year,
                               detail={"installment_seq": installment.seq,
                                       "due_on": installment.due_on.isoformat()},
                               opened_at=clock.now()))
    record("case.problem_opened", case_id=loan.id,
           data={"kind": "calendar_year_missing", "year": year,
                 "installment_seq": installment.seq, "due_on": installment.due_on.isoformat()})


def _schedule_one(loan, installment, actor):
    """Start the reminder of one installment; False when its calendar year is unknown."""
    lead = _lead_days(loan, installment)
    try:
        # Checked here so a missing year becomes a visible problem, not a failed instance.
        subtract_working_days(installment.due_on, lead)
        subtract_working_days(installment.due_on, 1)
    except CalendarUnknown as exc:
        _open_problem(loan, exc.year, installment)
        return False
    borrower = loan.borrower
    start_process(PROCESS, case_id=loan.id, actor=actor, business_key=installment_key(installment),
                  data={"loan_no": loan.loan_no, "borrower_name": loan.borrower_name,
                        "installment_seq": installment.seq,
                        "due_on": installment.due_on.isoformat(), "lead_days": lead,
                        "amount": str(installment.outstanding),
                        "final": installment.due_on >= loan.maturity_on,
                        "repayment_account": loan.repayment_account,
                        "borrower_phone": (borrower.phones[0] if borrower and borrower.phones
                                           else "")})
    return True


def schedule_reminders(loan, actor=None):
    """Start reminders for every unpaid installment not yet due that has none. Flushes."""
    today = clock.today()
    started = 0
    for installment in loan.installments:
        if installment.paid_off_on or installment.due_on < today:
            continue
        if not _has_reminder(loan, installment) and _schedule_one(loan, installment, actor):
            started += 1
    return started


def retry_calendar_problems(years, actor=None):
    """After a calendar year is entered: schedule what it blocked and close the problems."""
    resolved = 0
    for problem in (CaseProblem.query.filter(CaseProblem.kind == "calendar_year_missing",
                                             CaseProblem.year.in_(list(years)),
                                             CaseProblem.resolved_at.is_(None))
                    .order_by(CaseProblem.id).all()):
        loan = problem.loan
        installment = Installment.query.filter_by(
            loan_id=loan.id, seq=problem.detail.get("installment_seq")).first()
        if installment is None or installment.paid_off_on or loan.is_closed \
                or _has_reminder(loan, installment) or _schedule_one(loan, installment, actor):
            problem.resolved_at = clock.now()
            record("case.problem_resolved", actor=actor, case_id=loan.id,
                   data={"kind": problem.kind, "year": problem.year})
            resolved += 1
    db.session.flush()
    return resolved


def cancel_reminder(loan, installment, reason, actor=None):
    for instance in running_instances(loan.id, PROCESS):
        if instance.business_key == installment_key(installment):
            cancel_instance(instance, reason, actor)


@service("send_due_sms")
def send_due_sms(data, template):
    """The reminder SMS, written to the notification outbox in the instance's transaction."""
    from notices.operations import send
    loan = Loan.query.filter_by(loan_no=data["loan_no"]).one()
    phone = data.get("borrower_phone")
    if not phone:
        record("notification.skipped", case_id=loan.id, data={"reason": "no phone"})
        return {"queued": False, "reason": "no phone"}
    # The reminder confirms the date, the account and the amount (DOMAIN.md §5.2).
    notice = send(template, loan, {"due_date": data["due_on"], "amount": data["amount"],
                                   "installment_seq": data.get("installment_seq"),
                                   "repayment_account": data.get("repayment_account")
                                   or loan.repayment_account}, phone)
    return {"queued": True, "notification_id": notice.notification_id, "template": template,
            "notice_id": notice.id, "version": notice.template_version.version}


def apply_new_phone(row, user):
    """complete_task hook: a new phone number learned in a reminder (or follow-up) call goes to the
    borrower's phones, first, so the next call uses it (DOMAIN.md §5.2), audited."""
    if row.form_key not in ("reminder_call", "reminder_follow_up") \
            or not (row.data or {}).get("new_phone"):
        return
    loan = db.session.get(Loan, row.case_id)
    phone = str(row.data["new_phone"]).strip()
    if loan is None or loan.borrower is None or not phone or phone in loan.borrower.phones:
        return
    loan.borrower.phones = [phone] + list(loan.borrower.phones or [])
    record("borrower.phone_added", actor=user, case_id=loan.id, task_id=row.id,
           data={"phone": phone, "source": "reminder call"})


AFTER_COMPLETE.append(apply_new_phone)
