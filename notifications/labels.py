"""Words of a notification, made in the reader's language when shown or sent."""
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from forms.builder import localized
from workflows.inbox import task_title
from workflows.labels import process_label as _process_label
from workflows.labels import step_label as _step_label

# Process names come from the BPMN (workflows/labels.py).

KIND_LABELS = {
    "assigned": _l("Assigned to you"),
    "returned": _l("Returned to you"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected"),
    "overdue": _l("Overdue"),
    "reassigned_to_you": _l("Reassigned to you"),
    "reassigned_away": _l("Reassigned to someone else"),
}

# One sentence per kind; %(step)s is the step's title, %(loan)s the loan number.
KIND_SENTENCES = {
    "assigned": _l("“%(step)s” of loan %(loan)s is waiting for you."),
    "returned": _l("“%(step)s” of loan %(loan)s was sent back to you."),
    "approved": _l("%(actor)s approved “%(step)s” of loan %(loan)s."),
    "rejected": _l("%(actor)s rejected “%(step)s” of loan %(loan)s."),
    "overdue": _l("“%(step)s” of loan %(loan)s is past its due date."),
    "reassigned_to_you": _l("%(actor)s gave you “%(step)s” of loan %(loan)s."),
    "reassigned_away": _l("%(actor)s gave “%(step)s” of loan %(loan)s to someone else."),
}


def process_label(key, fallback=None):
    return _process_label(key) if key else (fallback or "")


def step_label(task=None, context=None, locale=None):
    """The step's title in `locale` (default: the reader's), as the inbox gives it: the
    task's form title, else the step's name from the BPMN (workflows/labels.py), kept in
    the notification's context for a task that is gone."""
    if task is not None:
        return task_title(task, locale)
    context = context or {}
    return _step_label(context.get("process"), context.get("step"), context.get("name"),
                       locale)


def sentence(kind, step, loan_no, actor=None):
    template = KIND_SENTENCES.get(kind)
    if template is None:
        return kind
    return str(template) % {"step": step, "loan": loan_no or "-",
                            "actor": actor or _l("Someone")}


def message_in(locale, kind, step_title, loan_no, actor=None, process=None):
    """The outbox text of one notification in `locale` (the recipient's language).
    `step_title` is a form title dict or a plain name."""
    with force_locale(locale or "zh_CN"):
        text = sentence(kind, localized(step_title), loan_no, actor)
        if process:
            text = f"[{process_label(process)}] {text}"
        return text
