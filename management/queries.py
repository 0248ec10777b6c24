"""Read side of the managers' view: approvals, the team's open tasks, counts, late follow-ups.
Every count is one GROUP BY query."""
import datetime as dt

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import selectinload

from accounts.models import User, UserRole
from cases.models import STAGES, LateFollowUp, Loan
from extensions import db
from management.sla import REPEAT_COUNT, REPEAT_DAYS
from workflows import clock
from workflows.models import HumanTask, HumanTaskExclusion

# Roles that see /manage; a ready task in one of these lanes is an approval.
MANAGER_ROLES = ("dept_head", "general_manager", "risk_manager")
APPROVAL_LANES = MANAGER_ROLES


def _ordered(query):
    return (query.options(selectinload(HumanTask.form_definition))
            .order_by(HumanTask.due_at.asc().nulls_last(), HumanTask.priority, HumanTask.id))


def approvals_for(user):
    """Ready tasks of my approval lanes that I may take: open to all or held by me."""
    lanes = sorted(set(APPROVAL_LANES) & user.roles)
    if not lanes:
        return []
    excluded = exists().where(HumanTaskExclusion.task_id == HumanTask.id,
                              HumanTaskExclusion.user_id == user.id)
    query = (select(HumanTask, Loan.loan_no).outerjoin(Loan, Loan.id == HumanTask.case_id)
             .where(HumanTask.state == "ready", HumanTask.lane.in_(lanes),
                    or_(HumanTask.claimed_by_id.is_(None), HumanTask.claimed_by_id == user.id),
                    or_(HumanTask.candidate_user_id.is_(None),
                        HumanTask.candidate_user_id == user.id),
                    ~excluded))
    return db.session.execute(_ordered(query)).all()


def team_tasks(role=None, user_id=None, page=1, per_page=50, user_ids=None):
    """(rows, total): every ready task, optionally of one lane and/or held by one user (its
    claimant, or for an unclaimed task its candidate user). With `user_ids` (a team leader's
    people, accounts.teams.managed_user_ids) only the tasks they hold and the tasks nobody
    holds on loans one of them manages."""
    query = (select(HumanTask, Loan.loan_no).outerjoin(Loan, Loan.id == HumanTask.case_id)
             .where(HumanTask.state == "ready"))
    if user_ids is not None:
        unheld = and_(HumanTask.claimed_by_id.is_(None), HumanTask.candidate_user_id.is_(None))
        query = query.where(or_(
            HumanTask.claimed_by_id.in_(user_ids),
            and_(HumanTask.claimed_by_id.is_(None), HumanTask.candidate_user_id.in_(user_ids)),
            and_(unheld, Loan.account_manager_id.in_(user_ids))))
    if role:
        query = query.where(HumanTask.lane == role)
    if user_id:
        query = query.where(or_(HumanTask.claimed_by_id == user_id,
                                and_(HumanTask.claimed_by_id.is_(None),
                                     HumanTask.candidate_user_id == user_id)))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    query = _ordered(query).options(selectinload(HumanTask.claimed_by),
                                    selectinload(HumanTask.candidate_user))
    rows = db.session.execute(query.limit(per_page).offset((page - 1) * per_page)).all()
    return rows, total


def active_users(role=None, user_ids=None):
    """Active users, of one role and/or among `user_ids` (None: everyone)."""
    query = select(User).where(User.active.is_(True)).order_by(User.username)
    if user_ids is not None:
        query = query.where(User.id.in_(user_ids))
    if role:
        query = query.join(UserRole, UserRole.user_id == User.id).where(UserRole.role == role)
    return db.session.scalars(query).all()


def stage_counts():
    """[(stage, count)] of the loans not closed, every stage of STAGES in order, zeros too."""
    counts = dict(db.session.execute(
        select(Loan.stage, func.count(Loan.id)).where(Loan.status != "closed")
        .group_by(Loan.stage)).all())
    rows = [(stage, counts.pop(stage, 0)) for stage in STAGES]
    return rows + sorted(counts.items())


def open_task_counts():
    """[(process_key, bpmn_id, name, open, overdue)] of the ready tasks."""
    overdue = func.sum(case((HumanTask.due_at < clock.now(), 1), else_=0))
    return db.session.execute(
        select(HumanTask.process_key, HumanTask.bpmn_id, HumanTask.name,
               func.count(HumanTask.id), overdue)
        .where(HumanTask.state == "ready")
        .group_by(HumanTask.process_key, HumanTask.bpmn_id, HumanTask.name)
        .order_by(HumanTask.process_key, HumanTask.bpmn_id, HumanTask.name)).all()


def late_followup_totals(user_ids=None):
    """[(user, count, fines, waived, outstanding fines, repeated)] per user, most outstanding
    first; `repeated`: REPEAT_COUNT or more late follow-ups, not waived, within REPEAT_DAYS.
    With `user_ids`, only theirs."""
    not_waived = LateFollowUp.waived_at.is_(None)
    outstanding = func.coalesce(func.sum(case((not_waived, LateFollowUp.fine), else_=0)), 0)
    since = clock.now() - dt.timedelta(days=REPEAT_DAYS)
    recent = func.sum(case((and_(not_waived, LateFollowUp.recorded_at >= since), 1), else_=0))
    query = (select(LateFollowUp.user_id, func.count(LateFollowUp.id),
                    func.coalesce(func.sum(LateFollowUp.fine), 0),
                    func.sum(case((not_waived, 0), else_=1)), outstanding, recent)
             .group_by(LateFollowUp.user_id).order_by(outstanding.desc(), LateFollowUp.user_id))
    if user_ids is not None:
        query = query.where(LateFollowUp.user_id.in_(user_ids))
    rows = db.session.execute(query).all()
    users = {u.id: u for u in db.session.scalars(
        select(User).where(User.id.in_([r[0] for r in rows if r[0] is not None])))}
    return [(users.get(user_id), count, fines, int(waived or 0), left,
             int(recent or 0) >= REPEAT_COUNT)
            for user_id, count, fines, waived, left, recent in rows]


def late_followups(user_id=None, outstanding_only=False, limit=200, user_ids=None):
    """[(LateFollowUp, HumanTask, loan_no, user)] newest first; with `user_ids`, only theirs."""
    query = (select(LateFollowUp, HumanTask, Loan.loan_no, User)
             .join(HumanTask, HumanTask.id == LateFollowUp.task_id)
             .outerjoin(Loan, Loan.id == LateFollowUp.loan_id)
             .outerjoin(User, User.id == LateFollowUp.user_id))
    if user_id:
        query = query.where(LateFollowUp.user_id == user_id)
    if outstanding_only:
        query = query.where(LateFollowUp.waived_at.is_(None))
    if user_ids is not None:
        query = query.where(LateFollowUp.user_id.in_(user_ids))
    return db.session.execute(query.order_by(LateFollowUp.recorded_at.desc(),
                                             LateFollowUp.id.desc()).limit(limit)).all()
