"""Problems found in a BPMN diagram, in both languages.

A check writes its message and hint as English templates marked with N_ and %(name)s
placeholders, and passes the values separately:

    checker.add(nid, pid, "too_long", N_("task id is longer than %(limit)s characters"),
                N_("Use a shorter id"), el=el, limit=MAX_KEY)

`Problem.message` / `Problem.hint` are the English texts (the command line, the API, logs);
`Problem.localized()` gives them in the request's language, for the studio. A value that is
itself words (not an id, a number or a quoted expression) is passed as `Text(N_("…"), …)`
so it is translated too.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from i18n import N_  # noqa: F401 — re-exported for the checks

DRAFT_FILENAME = "diagram.bpmn"


class Text:
    """A translatable fragment used as a placeholder value (e.g. "condition", "script")."""

    def __init__(self, template, **params):
        self.template, self.params = template, params

    def render(self, translate):
        return render(self.template, self.params, translate)

    def __str__(self):
        return self.render(_identity)

    def __repr__(self):
        return f"Text({self.template!r})"

    def __eq__(self, other):
        return str(self) == str(other)

    def __hash__(self):
        return hash(str(self))


def _identity(text):
    return text


def render(template, params, translate=_identity):
    """`template` translated, with `params` filled in (Text values translated too)."""
    text = translate(template)
    if not params:
        return text
    values = {k: v.render(translate) if isinstance(v, Text) else v for k, v in params.items()}
    try:
        return text % values
    except (KeyError, ValueError, TypeError):
        # A translation with a broken placeholder must not hide the problem: use English.
        return template % values


@dataclass
class Problem:
    element_id: str | None
    process_id: str | None
    code: str
    message: str
    hint: str
    line: int | None = None
    filename: str | None = None
    # The English templates and their values; None when message/hint are plain texts.
    message_template: str | None = field(default=None, repr=False, compare=False)
    hint_template: str | None = field(default=None, repr=False, compare=False)
    params: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, element_id, process_id, code, message, hint, line=None, filename=None,
           **params):
        """A problem from English templates and their values (see the module docstring)."""
        return cls(element_id, process_id, code, render(message, params),
                   render(hint, params) if hint else hint, line, filename,
                   message, hint, params)

    def localized(self):
        """(message, hint) in the request's language."""
        if self.message_template is None:
            return self.message, self.hint
        from flask_babel import gettext
        return (render(self.message_template, self.params, gettext),
                render(self.hint_template, self.params, gettext) if self.hint_template
                else self.hint)

    def __str__(self):
        where = self.element_id or self.process_id or self.filename or DRAFT_FILENAME
        text = f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text

    def to_dict(self):
        data = asdict(self)
        for key in ("message_template", "hint_template", "params"):
            data.pop(key)
        return data
