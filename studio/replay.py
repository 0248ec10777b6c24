"""Process studio: replay a draft against the recorded history of past cases before it is
deployed (routes on studio.bp)."""
from studio import bp  # noqa: F401
