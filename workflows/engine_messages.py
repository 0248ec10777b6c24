"""The engine's own refusals (SpiffWorkflow parser and validator exceptions) in the product's
problem catalogue: a code, an English template with its values, a hint — never a Python repr."""
from workflows.problems import N_


def describe(exc):
    """(code, message template, hint template, params) for an exception the engine raised
    while parsing a diagram."""
    return ("bpmn_invalid", N_("the engine refuses the diagram: %(detail)s"),
            N_("Fix this element; the message says what is wrong"), {"detail": str(exc)})
