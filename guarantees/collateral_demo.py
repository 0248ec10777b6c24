"""The demo's collateral story (issue 16), called by demo.load_demo before the daily run."""


def load(today, admin):
    """Returns how many demo loans it changed."""
    return 0
