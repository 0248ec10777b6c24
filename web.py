"""Web-wide helpers: error pages, template globals and filters."""
import datetime as dt

from flask import flash, redirect, render_template, request
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from accounts.auth import record_denial
from accounts.models import utc
from accounts.roles import ROLES
from audit.labels import action_label
from cases.models import FREQUENCY_LABELS, RISK_GROUP_LABELS, STATUS_LABELS
from extensions import login_manager
from forms.builder import localized
from i18n import current_language
from workflows.inbox import is_overdue, task_title
from workflows.errors import NotAllowed, WorkflowError


# No inline script or style anywhere: scripts and style sheets are files under /static (and
# the studio's bpmn-js from node_modules); JSON for scripts sits in <script type=
# "application/json">, which is data, not script. Override with CONTENT_SECURITY_POLICY.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; font-src 'self' data:; object-src 'none'; "
                           "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def register_web_helpers(app):
    login_manager.login_view = "accounts.login"
    login_manager.login_message = None

    @app.after_request
    def security_headers(response):
        # Not headers.setdefault: werkzeug builds an HTTP exception for each missing header.
        present = {name.lower() for name, _value in response.headers}
        wanted = [("Content-Security-Policy",
                   app.config.get("CONTENT_SECURITY_POLICY", CONTENT_SECURITY_POLICY)),
                  ("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
                  ("Referrer-Policy", "same-origin")]
        if app.config.get("SESSION_COOKIE_SECURE"):
            wanted.append(("Strict-Transport-Security", "max-age=31536000"))
        for name, value in wanted:
            if name.lower() not in present:
                response.headers[name] = value
        return response

    @app.template_filter("when")
    def when(value):
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            return format_datetime(utc(value), "yyyy-MM-dd HH:mm")
        return str(value)

    @app.context_processor
    def globals_():
        return {"ROLES": ROLES, "STATUS_LABELS": STATUS_LABELS,
                "RISK_GROUP_LABELS": RISK_GROUP_LABELS, "FREQUENCY_LABELS": FREQUENCY_LABELS, "localized": localized,
                "action_label": action_label, "task_title": task_title, "is_overdue": is_overdue, "current_locale": current_language()}

    @app.errorhandler(WorkflowError)
    def workflow_error(exc):
        if request.path.startswith("/api/"):
            raise exc
        if isinstance(exc, NotAllowed):
            # A refusal is a 403 page saying why, not a redirect that hides the status.
            record_denial(current_user, exc.message)
            return render_template("error.html", code=403, message=translate_error(exc)), 403
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

    # "/" is the home page of each role: home.views.


ERROR_MESSAGES = {
    "four_eyes": _l("Four eyes: you completed an earlier step of this case and may not "
                    "complete this one."),
    "wrong_role": _l("This task is for another role."),
    "assigned_other": _l("This task is assigned to another user."),
    "not_holder": _l("Only the user who claimed a task can release it."),
    "not_open": _l("This task is no longer open: someone else has completed it."),
    "claimed_other": _l("This task has been claimed by someone else."),
    "stale": _l("Someone else changed this case at the same moment; please reload."),
    "process_stopped": _l("The process of this task has stopped; contact an administrator."),
    "process_failed": _l("The process could not continue with these values."),
    "invalid": _l("Please correct the errors below."),
    "loan_exists": _l("A loan with this number already exists."),
    "loan_missing": _l("No loan with this number."),
    "case_read_only": _l("This case is closed: its records can no longer be changed."),
    "task_missing": _l("This task does not exist."),
    "process_missing": _l("This process is not deployed."),
    "duplicate_repayment": _l("This repayment was already posted; nothing was changed."),
    "case_closed": _l("This loan is fully repaid or closed; nothing was changed."),
    "extension_pending": _l("An extension of this loan is already being decided."),
}


def translate_error(exc):
    """User-facing message for a facade error, in the user's language."""
    return str(ERROR_MESSAGES.get(exc.code, _l("The request could not be completed.")))
