"""The classification pages: the rules and provision rates (risk manager), a loan's category
and its overrides (the case page's include templates/portfolio/_case_category.html).

Who: the rules are read by the risk manager, the department head, the general manager,
compliance and administrators, and changed by a risk manager only (credit-risk policy, not
system administration). Overrides: portfolio.overrides says who asks, decides and lifts.
"""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField, validators

import portfolio.snapshots  # noqa: F401  (registers the month-end hook on the daily run)
from accounts.auth import deny, roles_required
from cases.access import can_view_case
from cases.operations import get_loan
from extensions import db
from portfolio import classification, overrides
from portfolio.labels import CATEGORY_LABELS, category_label
from portfolio.models import CATEGORIES, CategoryChange, LoanCategory
from portfolio.rules import THRESHOLD_CATEGORIES, current_rules, update_rules
from web import translate_error
from workflows.errors import WorkflowError

bp = Blueprint("classification", __name__, url_prefix="/portfolio/classification")

RULE_READERS = ("risk_manager", "dept_head", "general_manager", "compliance", "admin")
RULE_EDITORS = ("risk_manager",)
HISTORY_LIMIT = 10

MESSAGES = {
    "override_pending": _l("A change of this loan's category is already waiting for a "
                           "decision."),
    "no_override": _l("This loan has no manual category in force."),
    "case_closed": _l("This loan is closed: its category no longer changes."),
}


class OverrideForm(FlaskForm):
    category = SelectField(_l("New category"), [validators.InputRequired()])
    reason = TextAreaField(_l("Reason for the change"),
                           [validators.InputRequired(), validators.Length(max=2000)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="override", **kwargs)
        self.category.choices = [(c, CATEGORY_LABELS[c]) for c in CATEGORIES]


class LiftForm(FlaskForm):
    reason = TextAreaField(_l("Reason for returning to the rules"),
                           [validators.InputRequired(), validators.Length(max=2000)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="lift", **kwargs)


class RulesForm(FlaskForm):
    """Only the CSRF token: the rule fields are read by name and checked by portfolio.rules."""


def case_category(loan):
    """What the case page's category section shows, for the current user."""
    row = db.session.get(LoanCategory, loan.id)
    category = row.category if row else classification.category_of(loan.id)
    balance, rate, provision = classification.loan_provision(loan.id, category)
    changes = (CategoryChange.query.filter_by(loan_id=loan.id)
               .order_by(CategoryChange.changed_on.desc(), CategoryChange.id.desc())
               .limit(HISTORY_LIMIT).all())
    active = overrides.active_override(loan.id)
    pending = overrides.pending_override(loan.id)
    return {"row": row, "category": category, "balance": balance, "rate": rate,
            "provision": provision, "changes": changes, "active": active, "pending": pending,
            "request_form": (OverrideForm(formdata=None)
                             if overrides.may_request(current_user, loan) and not pending
                             else None),
            "lift_form": (LiftForm(formdata=None)
                          if active and overrides.may_lift(current_user, loan) else None)}


@bp.app_context_processor
def classification_helpers():
    return {"case_category": case_category, "category_label": category_label}


def _flash_failure(exc):
    message = MESSAGES.get(exc.code)
    if message:
        flash(str(message), "error")
        return
    details = [_(m) for msgs in exc.field_errors.values() for m in msgs]
    flash(" ".join([translate_error(exc)] + details), "error")


def _flash_form(form):
    for name, errors in form.errors.items():
        flash(f"{form[name].label.text}: {'; '.join(errors)}", "error")


# ---------------------------------------------------------------- rules

def _rules_values(rules):
    """The rules as the form shows them: days, percents (25 for 0.25)."""
    return {"min_dpd": {c: rules.min_dpd[c] for c in THRESHOLD_CATEGORIES},
            "rates": {c: f"{rules.rates[c] * 100:.2f}".rstrip("0").rstrip(".")
                      for c in CATEGORIES},
            "extended_floor": rules.extended_floor}


@bp.route("/rules")
@login_required
@roles_required(*RULE_READERS)
def rules_page():
    return render_template("portfolio/rules.html", values=_rules_values(current_rules()),
                           errors={}, form=RulesForm(), may_edit=current_user.has_role(
                               *RULE_EDITORS), categories=CATEGORIES,
                           thresholds=THRESHOLD_CATEGORIES)


@bp.route("/rules", methods=["POST"])
@login_required
@roles_required(*RULE_EDITORS)
def rules_save():
    form = RulesForm()
    sent = {"min_dpd": {c: request.form.get(f"min_dpd-{c}", "") for c in THRESHOLD_CATEGORIES},
            "rates": {c: request.form.get(f"rate-{c}", "") for c in CATEGORIES},
            "extended_floor": request.form.get("extended_floor", "")}
    errors = {}
    if not form.validate_on_submit():
        errors["form"] = [_("The form expired; send it again.")]
    else:
        try:
            changed = update_rules(current_user, sent["min_dpd"], sent["rates"],
                                   sent["extended_floor"])
        except WorkflowError as exc:
            errors = {key: [_(m) for m in msgs] for key, msgs in exc.field_errors.items()}
        else:
            flash(_("Classification rules saved: they apply from the next daily run.")
                  if changed else _("Nothing changed."), "success")
            return redirect(url_for("classification.rules_page"))
    return render_template("portfolio/rules.html", values=sent, errors=errors, form=form,
                           may_edit=True, categories=CATEGORIES,
                           thresholds=THRESHOLD_CATEGORIES), 400


@bp.route("/reclassify", methods=["POST"])
@login_required
@roles_required(*RULE_EDITORS)
def reclassify():
    form = RulesForm()
    if form.validate_on_submit():
        counts = classification.reclassify_now(current_user)
        flash(_("Every open loan reclassified: %(changes)s change(s) of category.",
                changes=counts["category_changes"] + counts["classified_first"]), "success")
    return redirect(url_for("classification.rules_page"))


# ---------------------------------------------------------------- overrides

def _case(loan_no, allowed):
    loan = get_loan(loan_no)
    if not can_view_case(current_user, loan) or not allowed(current_user, loan):
        deny(current_user, "category_override")
    return loan, url_for("cases.show", loan_no=loan.loan_no, _anchor="category")


@bp.route("/cases/<loan_no>/override", methods=["POST"])
@login_required
def request_override(loan_no):
    loan, back = _case(loan_no, overrides.may_request)
    form = OverrideForm()
    if not form.validate_on_submit():
        _flash_form(form)
        return redirect(back)
    try:
        override = overrides.request_override(loan, current_user, form.category.data,
                                              form.reason.data)
    except WorkflowError as exc:
        _flash_failure(exc)
    else:
        flash(_("Change to %(category)s asked: another person decides.",
                category=category_label(override.to_category)), "success")
    return redirect(back)


@bp.route("/cases/<loan_no>/override/lift", methods=["POST"])
@login_required
def lift_override(loan_no):
    loan, back = _case(loan_no, overrides.may_lift)
    form = LiftForm()
    if not form.validate_on_submit():
        _flash_form(form)
        return redirect(back)
    try:
        row = overrides.lift_override(loan, current_user, form.reason.data)
    except WorkflowError as exc:
        _flash_failure(exc)
    else:
        flash(_("Manual category lifted: the loan is %(category)s by the rules.",
                category=category_label(row.category)), "success")
    return redirect(back)
