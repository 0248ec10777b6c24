"""BPMN scripts and conditions run sandboxed."""
import pytest

from workflows.scripting import RestrictedEnvironment, ScriptError


@pytest.mark.parametrize("source", [
    "import os",
    "__import__('os').getpid()",
    "().__class__.__mro__[1].__subclasses__()",
    "open('/etc/passwd').read()",
    "x = (lambda: 1).__globals__",
    "exec('1')",
    "eval('1')",
])
def test_escapes_are_refused(source):
    env = RestrictedEnvironment()
    with pytest.raises((ScriptError, NameError, SyntaxError)):
        env.execute(source, {})


def test_scripts_and_helpers_work():
    env = RestrictedEnvironment()
    data = {"due_on": "2026-10-12", "amounts": [1, 2, 3]}
    env.execute("remind_on = subtract_working_days(due_on, 5)\n"
                "total = 0\nfor a in amounts:\n    total += a\n", data)
    assert data["remind_on"] == "2026-09-29"
    assert data["total"] == 6
    assert "subtract_working_days" not in data and "__builtins__" not in data
    assert env.evaluate('check_result == "complete"', {"check_result": "complete"}) is True


def test_runaway_loops_are_stopped():
    env = RestrictedEnvironment()
    with pytest.raises(ScriptError, match="loop iterations"):
        env.execute("n = 0\nfor i in range(10**9):\n    n += 1\n", {})
