"""Case pages: list, register a loan, the case with its open tasks and history."""
import math

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from accounts.auth import deny, roles_required
from accounts.models import User, UserRole
from accounts.roles import CASE_READERS, LOAN_REGISTRARS
from audit.queries import case_events
from cases.access import can_view_case
from cases.forms import LoanForm
from cases.models import Loan
from cases.operations import get_loan, register_loan
from cases.presenters import history_rows
from web import translate_error
from workflows.errors import InvalidData
from workflows.inbox import open_tasks_of_case

bp = Blueprint("cases", __name__)


@bp.route("/cases")
@login_required
def index():
    query = Loan.query
    if not current_user.roles & CASE_READERS:
        query = query.filter(Loan.account_manager_id == current_user.id)
    search = (request.args.get("q") or "").strip()
    if search:
        like = f"%{search}%"
        query = query.filter(Loan.loan_no.ilike(like) | Loan.borrower_name.ilike(like))
    page = max(1, request.args.get("page", 1, type=int))
    total = query.count()
    loans = query.order_by(Loan.id.desc()).limit(20).offset((page - 1) * 20).all()
    return render_template("cases/index.html", loans=loans, q=search, page=page,
                           pages=max(1, math.ceil(total / 20)), total=total)


@bp.route("/cases/new", methods=["GET", "POST"])
@login_required
@roles_required(*LOAN_REGISTRARS)
def new():
    form = LoanForm()
    managers = (User.query.join(UserRole).filter(UserRole.role == "account_manager")
                .order_by(User.username).all())
    form.account_manager.choices = [(u.username, u.label) for u in managers]
    if form.validate_on_submit():
        try:
            loan = register_loan({name: request.form.get(name) for name in form.data
                                  if name != "csrf_token"}, current_user)
        except InvalidData as exc:
            for name, errors in exc.field_errors.items():
                if name in form:
                    form[name].errors = list(form[name].errors) + [_(e) for e in errors]
            flash(translate_error(exc), "error")
        else:
            flash(_("Loan %(no)s registered; the handover has started.", no=loan.loan_no),
                  "success")
            return redirect(url_for("cases.show", loan_no=loan.loan_no))
    return render_template("cases/new.html", form=form)


@bp.route("/cases/<loan_no>")
@login_required
def show(loan_no):
    loan = get_loan(loan_no)
    if not can_view_case(current_user, loan):
        deny(current_user, "case")
    return render_template("cases/show.html", loan=loan, tasks=open_tasks_of_case(loan.id),
                           history=history_rows(case_events(loan.id)))
