"""Routes on guarantees.views.bp (issue 16)."""
from guarantees.views import bp  # noqa: F401
