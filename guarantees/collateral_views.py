"""Routes on guarantees.views.bp (issue 16): an item's registration and insurance records,
starting a revaluation, and the case page's collateral section (collateral_section)."""
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, validators

from accounts.auth import deny
from cases.access import can_view_case
from cases.models import Collateral
from cases.operations import get_loan
from guarantees import collateral as ops
from guarantees.views import bp
from workflows.errors import InvalidData, WorkflowError

OPTIONAL = validators.Optional()
MAX_LENGTHS = {"registration_no": 80, "registration_office": 120, "insurance_policy": 80,
               "insurer": 120}


class RecordsForm(FlaskForm):
    asset_type = SelectField(_l("Asset type"), choices=[])
    registration_no = StringField(_l("Registration number"), [OPTIONAL, validators.Length(
        max=80, message=_l("At most %(max)d characters."))])
    registration_office = StringField(_l("Registration office"), [OPTIONAL, validators.Length(
        max=120, message=_l("At most %(max)d characters."))])
    registered_on = DateField(_l("Registered on"), [OPTIONAL])
    registration_expires_on = DateField(_l("Registration expires on"), [OPTIONAL])
    insurance_policy = StringField(_l("Insurance policy"), [OPTIONAL, validators.Length(
        max=80, message=_l("At most %(max)d characters."))])
    insurer = StringField(_l("Insurer"), [OPTIONAL, validators.Length(
        max=120, message=_l("At most %(max)d characters."))])
    insurance_expires_on = DateField(_l("Insurance expires on"), [OPTIONAL])


class ActionForm(FlaskForm):
    """A button that only needs the CSRF token."""


def _editable(loan_no, collateral_id):
    loan = get_loan(loan_no)
    if not can_view_case(current_user, loan) or not ops.may_edit(current_user, loan):
        deny(current_user, "collateral_change")
    item = Collateral.query.filter_by(id=collateral_id, loan_id=loan.id).first()
    if item is None:
        deny(current_user, "collateral_change")
    return loan, item


def _records_form(item=None):
    form = RecordsForm(obj=item) if item is not None else RecordsForm()
    form.asset_type.choices = [(k, str(v)) for k, v in ops.ASSET_TYPE_LABELS.items()]
    return form


@bp.route("/cases/<loan_no>/collateral/<int:collateral_id>/records",
          methods=["GET", "POST"])
@login_required
def collateral_records(loan_no, collateral_id):
    loan, item = _editable(loan_no, collateral_id)
    form = _records_form() if request.method == "POST" else _records_form(item)
    status = 200
    if form.is_submitted():
        status = 400
        if form.validate():
            try:
                changed = ops.update_records(loan, item.id, current_user, form.data)
            except InvalidData as exc:
                for name, messages in (exc.field_errors or {}).items():
                    target = getattr(form, name, None)
                    if target is not None:
                        target.errors = list(target.errors) + [
                            _(m, max=MAX_LENGTHS.get(name, 0)) for m in messages]
                flash(_("Please correct the errors below."), "error")
            else:
                flash(_("Collateral records saved.") if changed
                      else _("Nothing was changed."), "success")
                return redirect(url_for("cases.show", loan_no=loan.loan_no,
                                        _anchor=f"collateral-{item.id}"))
        else:
            flash(_("Please correct the errors below."), "error")
    return render_template("guarantees/collateral_records.html", loan=loan, item=item,
                           form=form), status


@bp.route("/cases/<loan_no>/collateral/<int:collateral_id>/revaluation", methods=["POST"])
@login_required
def collateral_revaluation(loan_no, collateral_id):
    loan, item = _editable(loan_no, collateral_id)
    back = url_for("cases.show", loan_no=loan.loan_no, _anchor=f"collateral-{item.id}")
    if not ActionForm().validate_on_submit():
        flash(_("The form has expired; please try again."), "error")
        return redirect(back)
    try:
        ops.start_revaluation(loan, item.id, current_user, reason="staff")
    except WorkflowError as exc:
        flash({"revaluation_running": _("A revaluation of this item is already under way."),
               "collateral_released": _("This item has been released."),
               "process_missing": _("The revaluation process is not deployed.")}
              .get(exc.code, _("The request could not be completed.")), "error")
    else:
        flash(_("Revaluation started: a post-loan officer enters the new valuation, a risk "
                "manager reviews it."), "success")
    return redirect(back)


@bp.app_context_processor
def collateral_helpers():
    def collateral_section(loan):
        view = ops.case_view(loan)
        view["may_edit"] = ops.may_edit(current_user, loan)
        view["action_form"] = ActionForm(formdata=None) if view["may_edit"] else None
        return view
    return {"collateral_section": collateral_section,
            "asset_type_label": lambda code: ops.ASSET_TYPE_LABELS.get(code, code),
            "valuation_method_label": lambda code: ops.METHOD_LABELS.get(code, code),
            "valuation_source_label": lambda code: ops.SOURCE_LABELS.get(code, code),
            "collateral_reason_label": lambda code: ops.REASON_LABELS.get(code, code)}
