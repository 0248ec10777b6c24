"""Web-wide helpers: error pages, template globals and filters."""
import datetime as dt

from flask import flash, redirect, render_template, request
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user

from accounts.auth import record_denial
from accounts.models import utc
from accounts.roles import ROLES
from audit.labels import action_label
from cases.models import STATUS_LABELS
from extensions import login_manager
from forms.builder import localized
from i18n import current_language
from workflows.inbox import task_title
from workflows.errors import Conflict, InvalidData, NotAllowed, NotFound, WorkflowError


def register_web_helpers(app):
    login_manager.login_view = "accounts.login"
    login_manager.login_message = None

    @app.template_filter("when")
    def when(value):
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            return format_datetime(utc(value), "yyyy-MM-dd HH:mm")
        return str(value)

    @app.context_processor
    def globals_():
        return {"ROLES": ROLES, "STATUS_LABELS": STATUS_LABELS, "localized": localized,
                "action_label": action_label, "task_title": task_title, "current_locale": current_language()}

    @app.errorhandler(WorkflowError)
    def workflow_error(exc):
        if request.path.startswith("/api/"):
            raise exc
        if isinstance(exc, NotAllowed):
            record_denial(current_user, exc.message)
        flash(translate_error(exc), "error")
        return redirect(request.referrer or "/inbox")

    @app.errorhandler(403)
    def forbidden(exc):
        return render_template("error.html", code=403,
                               message=_("You do not have permission to do this.")), 403

    @app.errorhandler(404)
    def not_found(exc):
        return render_template("error.html", code=404,
                               message=_("This page does not exist.")), 404

    @app.route("/")
    def index():
        return redirect("/inbox")


def translate_error(exc):
    """User-facing message for a facade error, in the user's language."""
    text = exc.message
    if isinstance(exc, NotAllowed):
        if text.startswith("four eyes"):
            return _("Four eyes: you completed an earlier step of this case and may not "
                     "complete this one.")
        return _("You may not take this task: %(reason)s", reason=text)
    if isinstance(exc, Conflict):
        if "completed by" in text:
            return _("This task was already completed by someone else.")
        if "claimed by" in text or "taken by" in text:
            return _("This task has been claimed by someone else.")
        if "same moment" in text:
            return _("Someone else changed this case at the same moment; please reload.")
        return _("This task is no longer open.")
    if isinstance(exc, NotFound):
        return _("Not found.")
    if isinstance(exc, InvalidData):
        return _("Please correct the errors below.")
    return text
