"""The notification page, marking read, outbox preferences, and the header badge's count.
Thin: parse, call notifications.inapp, render."""
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

import notifications.events  # noqa: F401  (registers the engine hooks)
from notifications.inapp import (mark_all_read, mark_read, page_of, preferences_of,
                                 save_preferences, target, unread_count)
from notifications.labels import KIND_LABELS, process_label, sentence, step_label
from notifications.user_models import CHANNELS, KINDS
from cases.models import Loan
from extensions import db
from sqlalchemy import select
from workflows.errors import InvalidData, NotFound

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

@bp.app_context_processor
def badge():
    """unread_notifications(): (count, more) for the header badge, counted once per request
    and only when a page asks (the badge partial) for a logged-in user."""
    def unread_notifications():
        if not current_user.is_authenticated:
            return 0, False
        if "unread_notifications" not in g:
            g.unread_notifications = unread_count(current_user.id)
        return g.unread_notifications
    return {"unread_notifications": unread_notifications}


def _channel_labels():
    return {"email": _("E-mail"), "sms": _("SMS"), "webhook": _("Webhook")}


def _render(errors=None, form=None, status=200):
    page = page_of(current_user.id, request.args.get("page", 1, type=int))
    items = [{"note": note, "loan_no": loan_no, "target": target(note, loan_no),
              "kind": KIND_LABELS.get(note.kind, note.kind),
              "process": process_label(note.context.get("process")),
              "text": sentence(note.kind, step_label(note.task, note.context), loan_no,
                               note.actor.label if note.actor else None)}
             for note, loan_no in page.rows]
    pref = preferences_of(current_user.id)
    form = form or {"kinds": set(pref.kinds) if pref else set(),
                    "channel": pref.channel if pref else "email",
                    "address": pref.address if pref else ""}
    return render_template("notifications/index.html", items=items, page=page,
                           kinds=[(k, KIND_LABELS[k]) for k in KINDS],
                           channels=[(c, _channel_labels()[c]) for c in CHANNELS],
                           form=form, errors=errors or {}), status


@bp.route("")
@login_required
def index():
    return _render()


@bp.route("/<int:notification_id>/read", methods=["POST"])
@login_required
def read(notification_id):
    try:
        note = mark_read(notification_id, current_user)
    except NotFound:
        return render_template("error.html", code=404,
                               message=_("This notification does not exist.")), 404
    if request.form.get("open"):
        destination = target(note, None) or _case_url(note)
        if destination:
            return redirect(destination)
    return redirect(url_for("notifications.index", page=request.form.get("page", 1, type=int)))


def _case_url(note):
    loan_no = db.session.scalar(select(Loan.loan_no).where(Loan.id == note.case_id)) \
        if note.case_id else None
    return target(note, loan_no)


@bp.route("/read-all", methods=["POST"])
@login_required
def read_all():
    count = mark_all_read(current_user)
    flash(_("%(count)d notifications marked read.", count=count), "info")
    return redirect(url_for("notifications.index"))


@bp.route("/preferences", methods=["POST"])
@login_required
def preferences():
    kinds = request.form.getlist("kinds")
    channel = request.form.get("channel", "email")
    address = request.form.get("address", "")
    try:
        save_preferences(current_user, kinds, channel, address)
    except InvalidData as exc:
        messages = {"kinds": _("Choose among the kinds listed."),
                    "channel": _("Choose one of the channels listed."),
                    "address": _("Give an e-mail address for e-mail, a phone number for SMS "
                                 "(at most 120 characters).")}
        errors = {name: messages[name] for name in exc.field_errors}
        flash(_("Please correct the errors below."), "error")
        return _render(errors, {"kinds": set(kinds), "channel": channel, "address": address},
                       400)
    flash(_("Your notification preferences are saved."), "info")
    return redirect(url_for("notifications.index"))
