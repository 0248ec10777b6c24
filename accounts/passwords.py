"""The password policy: long enough, not a common password, not containing the user name.

Applied when a user is created, changes their password and when an administrator resets one.
"""
import functools
from pathlib import Path

from flask import current_app, has_app_context

MIN_LENGTH = 10
MAX_LENGTH = 256
# A user name shorter than this is not looked for inside the password ("am" in "I am…").
USERNAME_MIN_MATCH = 3
COMMON_FILE = Path(__file__).with_name("common_passwords.txt")


@functools.cache
def common_passwords():
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines
                     if line.strip() and not line.startswith("#"))


def min_length():
    if has_app_context():
        return int(current_app.config.get("PASSWORD_MIN_LENGTH", MIN_LENGTH))
    return MIN_LENGTH


def policy_problem(password, username=""):
    """None when `password` is acceptable for `username`, else (code, params)."""
    password = password or ""
    minimum = min_length()
    if len(password) < minimum:
        return "password_too_short", {"min": minimum}
    if len(password) > MAX_LENGTH:
        return "password_too_long", {"max": MAX_LENGTH}
    folded = password.casefold()
    if folded in common_passwords() or len(set(folded)) == 1:
        return "password_common", {}
    name = (username or "").strip().casefold()
    if len(name) >= USERNAME_MIN_MATCH and name in folded:
        return "password_has_username", {}
    return None
