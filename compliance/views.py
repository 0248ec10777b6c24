"""Compliance pages of a case: its timeline (optionally as of a date) and its dossier
(printable HTML and PDF); every dossier export is audited."""
import datetime as dt

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import _
from flask_login import current_user, login_required

from audit.labels import action_label
from audit.operations import record, verify_chain
from cases.access import can_view_case
from cases.models import STAGE_LABELS
from cases.operations import get_loan
from accounts.auth import deny
from compliance.timeline import KIND_LABELS, people, state_as_of, timeline
from extensions import db

bp = Blueprint("compliance", __name__)


def _case_or_403(loan_no):
    loan = get_loan(loan_no)
    if not can_view_case(current_user, loan):
        deny(current_user, "case")
    return loan


def _filters():
    kinds = {k for k in request.args.getlist("kind") if k in KIND_LABELS} or None
    user = request.args.get("user") or None
    as_of = None
    if request.args.get("as_of"):
        try:
            as_of = dt.date.fromisoformat(request.args["as_of"])
        except ValueError:
            abort(400, description=_("The date must be YYYY-MM-DD."))
    return kinds, user, as_of


@bp.route("/cases/<loan_no>/timeline")
@login_required
def case_timeline(loan_no):
    loan = _case_or_403(loan_no)
    kinds, user, as_of = _filters()
    return render_template(
        "compliance/timeline.html", loan=loan, entries=timeline(loan, kinds, user, as_of),
        kinds=kinds or set(), user=user, as_of=as_of, people=people(loan),
        state=state_as_of(loan, as_of) if as_of else None, KIND_LABELS=KIND_LABELS,
        STAGE_LABELS=STAGE_LABELS, action_label=action_label)


def _audit_export(loan, fmt):
    record("export.dossier", actor=current_user, case_id=loan.id,
           data={"loan_no": loan.loan_no, "format": fmt})
    db.session.commit()


def _chain():
    checked, bad = verify_chain()
    return {"checked": checked, "ok": bad is None, "bad_id": bad.id if bad else None}


@bp.route("/cases/<loan_no>/dossier")
@login_required
def dossier(loan_no):
    loan = _case_or_403(loan_no)
    entries, chain = timeline(loan), _chain()
    _audit_export(loan, "html")
    return render_template(
        "compliance/dossier.html", loan=loan, entries=entries, chain=chain,
        KIND_LABELS=KIND_LABELS, STAGE_LABELS=STAGE_LABELS, action_label=action_label)


@bp.route("/cases/<loan_no>/dossier.pdf")
@login_required
def dossier_pdf(loan_no):
    from compliance.pdf import dossier_pdf as build
    loan = _case_or_403(loan_no)
    body = build(loan, timeline(loan), _chain())
    _audit_export(loan, "pdf")
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="dossier-{loan.loan_no}.pdf"'})
