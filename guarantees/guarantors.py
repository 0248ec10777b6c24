"""Guarantor status checks (issue 16): on each inspection and by staff."""
