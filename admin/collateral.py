"""Administrators' page of the collateral policies (issue 16): per asset type, the months
between revaluations, the working days of warning before a registration or insurance expires,
and the loan-to-value threshold (entered and shown as a percentage).

Administrators, not risk managers: these are system settings like the calendar and the penalty
terms (DOMAIN.md §2: the administrator keeps the settings); the risk manager acts on the
warnings they produce and sees the thresholds on each case, so nobody sets the bar for the
warnings they themselves must answer."""
from decimal import Decimal

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField, validators

from accounts.auth import roles_required
from accounts.models import User
from guarantees.collateral import ASSET_TYPE_LABELS
from guarantees.models import ASSET_TYPES, CollateralPolicy
from guarantees.watch import POLICY_LIMITS, policies, set_policy
from workflows.errors import InvalidData

bp = Blueprint("admin_collateral", __name__, url_prefix="/admin/collateral")
REQUIRED = validators.InputRequired(_l("This field is required."))


class PolicyForm(FlaskForm):
    revaluation_months = StringField(_l("Revalue every (months)"), [REQUIRED], description=_l(
        "0: never revalued (e.g. deposits)."))
    expiry_warning_days = StringField(_l("Warn before expiry (working days)"), [REQUIRED],
                                      description=_l("Statutory working days before a "
                                                     "registration or insurance expires."))
    ltv_threshold = StringField(_l("Loan-to-value threshold (%)"), [REQUIRED], description=_l(
        "A warning when principal outstanding / latest valuations goes above it."))


def _plain(number):
    return f"{Decimal(number).normalize():f}"


def _form(policy, asset_type):
    return PolicyForm(formdata=None, prefix=asset_type, data={
        "revaluation_months": str(policy.revaluation_months),
        "expiry_warning_days": str(policy.expiry_warning_days),
        "ltv_threshold": _plain(policy.ltv_threshold * 100)})


def _render(failed=None, status=200):
    rules = policies()
    stored = {row.asset_type: row for row in CollateralPolicy.query.all()}
    ids = {r.updated_by_id for r in stored.values() if r.updated_by_id}
    users = {u.id: u for u in User.query.filter(User.id.in_(ids))} if ids else {}
    rows = []
    for asset_type in ASSET_TYPES:
        policy, row = rules[asset_type], stored.get(asset_type)
        rows.append({"asset_type": asset_type, "label": ASSET_TYPE_LABELS[asset_type],
                     "policy": policy, "threshold": f"{_plain(policy.ltv_threshold * 100)}%",
                     "default": row is None, "row": row,
                     "updated_by": users.get(row.updated_by_id) if row else None,
                     "form": failed[1] if failed and failed[0] == asset_type
                     else _form(policy, asset_type),
                     "failed": bool(failed and failed[0] == asset_type)})
    return render_template("admin/collateral.html", rows=rows), status


@bp.route("")
@login_required
@roles_required("admin")
def index():
    return _render()


@bp.route("/<asset_type>", methods=["POST"])
@login_required
@roles_required("admin")
def update(asset_type):
    if asset_type not in ASSET_TYPES:
        return _render(status=404)
    form = PolicyForm(prefix=asset_type)
    if form.validate_on_submit():
        try:
            set_policy(current_user, asset_type, form.revaluation_months.data,
                       form.expiry_warning_days.data, form.ltv_threshold.data)
        except InvalidData as exc:
            for name, messages in (exc.field_errors or {}).items():
                target = getattr(form, name, None)
                if target is None:
                    continue
                low, high = POLICY_LIMITS.get(name, (0, 0))
                target.errors = list(target.errors) + [_(m, min=low, max=high)
                                                       for m in messages]
        else:
            flash(_("Policy for %(type)s saved.", type=ASSET_TYPE_LABELS[asset_type]), "success")
            return redirect(url_for("admin_collateral.index", _anchor=f"policy-{asset_type}"))
    flash(_("Please correct the errors below."), "error")
    return _render((asset_type, form), 400)


