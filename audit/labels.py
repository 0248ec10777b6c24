"""Human-readable names of audit actions, in both languages."""
from flask_babel import lazy_gettext as _l

ACTION_LABELS = {
    "case.created": _l("Case opened"),
    "case.intake_repeated": _l("Loan sent again unchanged"),
    "case.monitoring_plan": _l("Monitoring plan set"),
    "contact.added": _l("Contact added"),
    "contact.logged": _l("Contact logged"),
    "document.uploaded": _l("Document uploaded"),
    "process.started": _l("Process started"),
    "process.completed": _l("Process completed"),
    "process.error": _l("Process error"),
    "process.deployed": _l("Process deployed"),
    "task.created": _l("Task created"),
    "task.claimed": _l("Task claimed"),
    "task.unclaimed": _l("Task released"),
    "task.completed": _l("Task completed"),
    "timer.fired": _l("Timer fired"),
    "login": _l("Logged in"),
    "login.failed": _l("Failed login"),
    "permission.denied": _l("Permission denied"),
    "user.created": _l("User created"),
    "token.created": _l("API token created"),
    "calendar.days_entered": _l("Calendar days entered"),
    "calendar.day_removed": _l("Calendar day removed"),
    "notification.failed": _l("Notification failed"),
    "notification.retried": _l("Notification retried"),
}


def action_label(action):
    return ACTION_LABELS.get(action, action)
