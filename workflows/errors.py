"""Errors the facade raises; views map them to HTTP status codes and messages."""


class WorkflowError(Exception):
    status = 400

    def __init__(self, message, field_errors=None, code=None, details=None):
        super().__init__(message)
        self.message = message  # English, for the API and the logs
        self.field_errors = field_errors or {}
        self.code = code  # stable key the web pages translate (web.translate_error)
        # Further JSON-safe members of the API's error body, e.g. {"differences": [...]}.
        self.details = details or {}


class InvalidData(WorkflowError):
    status = 400


class NotAllowed(WorkflowError):
    status = 403


class NotFound(WorkflowError):
    status = 404


class Conflict(WorkflowError):
    status = 409


class DeployError(WorkflowError):
    """A definition that cannot be deployed; `problems` lists every reason."""

    def __init__(self, problems):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems
