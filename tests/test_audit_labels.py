"""Every audit action the application records has a readable name: compliance reading the
history in Chinese never meets a code such as `collection.tactic_ended`."""
import re
from pathlib import Path

from audit.labels import ACTION_LABELS

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [p for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()
            and p.name != "tests"]
LITERAL = re.compile(r"""\brecord\(\s*["']([a-z_]+\.[a-z_]+)["']""")
FORMATTED = re.compile(r"""\brecord\(\s*f["']([a-z_]+\.[a-z_]*)\{""")


def _sources():
    for package in PACKAGES:
        yield from package.rglob("*.py")
    yield from ROOT.glob("*.py")


def test_every_recorded_action_has_a_label():
    missing, families = set(), set()
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        missing |= {action for action in LITERAL.findall(text) if action not in ACTION_LABELS}
        families |= set(FORMATTED.findall(text))
    assert not missing, sorted(missing)
    # An action built at run time (e.g. collection.promise_{status}) has labels for its family.
    for prefix in families:
        assert any(key.startswith(prefix) for key in ACTION_LABELS), prefix


def test_repayment_plan_and_promise_outcomes_are_all_labelled():
    for state in ("kept", "completed", "broken"):
        assert f"collection.repayment_plan_{state}" in ACTION_LABELS
    for status in ("kept", "broken"):
        assert f"collection.promise_{status}" in ACTION_LABELS
