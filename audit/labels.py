"""Human-readable names of audit actions, in both languages."""
from flask_babel import lazy_gettext as _l

ACTION_LABELS = {
    "case.created": _l("Case opened"),
    "case.monitoring_plan": _l("Monitoring plan set"),
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
}


def action_label(action):
    return ACTION_LABELS.get(action, action)
