"""Plain conditions, and scripts of plain assignments, are evaluated in-process
(workflows.plain_eval) with the sandbox's results; everything else still goes to the sandbox
worker and its limits (workflows.limits)."""
import copy
import math
import re
import time
from pathlib import Path
from xml.sax.saxutils import unescape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_collection import overdue, staff  # noqa: F401 (fixtures)
from tests.test_servicing import serviced  # noqa: F401 (fixture)
from workflows import limits, plain_eval, sandbox_pool, scripting
from workflows.limits import ScriptError, ScriptLimitError
from workflows.scripting import HELPERS, RestrictedEnvironment

BPMN = Path(__file__).resolve().parent.parent / "bpmn"
NAMES = ("a", "b", "c", "d", "today")
# `x is 1` warns when compiled; such expressions are generated on purpose
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")


def sandbox(source, data):
    """("ok", value) or ("raise", type, str) from the sandbox worker alone."""
    try:
        return "ok", sandbox_pool.run("eval", source, copy.deepcopy(data), None, HELPERS)
    except Exception as exc:  # noqa: BLE001
        return "raise", type(exc), str(exc)


def _marked(value):
    """The value with each NaN replaced by a marker: NaN is not equal to itself, and a value
    back from the sandbox is a new object, where the fast path may hand back the same one
    (lists compare their items by identity first)."""
    if isinstance(value, float) and math.isnan(value):
        return "<NaN>"
    if isinstance(value, (list, tuple)):
        return type(value)(_marked(v) for v in value)
    if isinstance(value, dict):
        return {k: _marked(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------- random plain expressions

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                    st.floats(allow_infinity=False), st.text(max_size=4))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner, inner),
    st.dictionaries(st.text(max_size=2), inner, max_size=3)), max_leaves=6)
constants = st.one_of(st.none(), st.booleans(), st.integers(-10**19, 10**19),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4),
                      st.sampled_from(["1", "0", "''", "'a'"])).map(
    lambda v: v if isinstance(v, str) and v in ("1", "0", "''", "'a'") else repr(v))
operators = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"])


def _compound(inner):
    return st.one_of(
        st.tuples(st.sampled_from(["not ", "-", "+"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, operators, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, operators, inner, operators, inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]} {t[3]} {t[4]})"),
        st.tuples(inner, st.sampled_from(["in", "not in"]), st.lists(constants, max_size=3),
                  st.booleans()).map(
            lambda t: f"({t[0]} {t[1]} {'(' if t[3] else '['}{', '.join(t[2])}"
                      f"{',)' if t[3] and len(t[2]) == 1 else ')' if t[3] else ']'})"),
        st.tuples(inner, st.sampled_from(["is", "is not"]),
                  st.sampled_from(["None", "True", "False"])).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"))


expressions = st.recursive(st.one_of(st.sampled_from(NAMES), constants), _compound,
                           max_leaves=6)
task_data = st.dictionaries(st.sampled_from(NAMES[:4]), values, max_size=4)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(source=expressions, data=task_data)
def test_the_fast_path_answers_as_the_sandbox(app, source, data):
    env = RestrictedEnvironment()
    try:
        limits.compile_expression(source)
    except ScriptError:
        return  # refused before either path runs
    fast = plain_eval.evaluate(source, data)
    expected = sandbox(source, data)
    try:
        value = env.evaluate(source, copy.deepcopy(data))
        got = ("ok", value)
    except Exception as exc:  # noqa: BLE001
        got = ("raise", type(exc), str(exc))
    if fast is not plain_eval.MISS:
        assert expected[0] == "ok", (source, data, expected)
        assert type(fast) is type(expected[1]) and fast == expected[1], (source, data)
    # through the environment (fast or not), the same outcome as the sandbox alone
    if expected[0] == "ok" and isinstance(expected[1], float) and math.isnan(expected[1]):
        assert got[0] == "ok" and math.isnan(got[1])
    else:
        assert got == expected or got[0] == "ok" and type(got[1]) is type(expected[1]) \
            and got[1] == expected[1], (source, data, got, expected)


def sandbox_script(source, data):
    """("ok", task data) or ("raise", type, str) from the sandbox worker alone."""
    try:
        return "ok", sandbox_pool.run("exec", source, copy.deepcopy(data), None, HELPERS)
    except Exception as exc:  # noqa: BLE001
        return "raise", type(exc), str(exc)


# Assignments to task-data names, to a new name, and to a name the sandbox keeps (today).
scripts = st.lists(st.tuples(st.sampled_from(NAMES[:3] + ("e", "today")), expressions),
                   min_size=0, max_size=3).map(
    lambda lines: "\n".join(f"{target} = {source}" for target, source in lines))


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(source=scripts, data=task_data)
def test_a_plain_script_leaves_the_data_the_sandbox_leaves(app, source, data):
    try:
        limits.compile_script(source)
    except (ScriptError, SyntaxError):
        return  # refused before either path runs
    expected = sandbox_script(source, data)
    fast = plain_eval.run_script(source, data, scripting._RESERVED)
    context = copy.deepcopy(data)
    try:
        RestrictedEnvironment().execute(source, context)
        got = ("ok", context)
    except Exception as exc:  # noqa: BLE001
        got = ("raise", type(exc), str(exc))
    if fast is not plain_eval.MISS:
        assert expected[0] == "ok", (source, data, expected)
        assert _marked(list(fast.items())) == _marked(list(expected[1].items())), \
            (source, data)
        assert [type(v) for v in fast.values()] == [type(v) for v in expected[1].values()]
    assert _marked(got) == _marked(expected), (source, data, got, expected)


def test_the_stage_scripts_of_the_collection_diagram_are_plain():
    stages = re.findall(r"<bpmn:script>(stage = [^<]*)</bpmn:script>",
                        (BPMN / "collection.bpmn").read_text(encoding="utf-8"))
    assert len(stages) == 7
    for source in stages:
        assert plain_eval.run_script(source, {"dpd": 5}, scripting._RESERVED) == \
            {"dpd": 5, "stage": source.split('"')[1]}
    # a script naming a helper, or data shadowing one, is left to the sandbox
    for source, data in (("stage = today", {}), ("today = 1", {}), ("a = 1", {"date": 1}),
                         ("a = b + 1", {"b": 1}), ("a = 1\nfor x in a: pass", {})):
        assert plain_eval.run_script(source, data, scripting._RESERVED) is plain_eval.MISS


def test_plain_expressions_are_taken():
    data = {"dpd": 5, "status": "open", "flag": None, "ok": True, "items": ["x", "y"],
            "today": "2026-01-01"}
    cases = {"0 < dpd <= 7": True, "dpd > 90": False, "status == 'open' and not flag": True,
             "status in ('open', 'closed')": True, "status not in ['open']": False,
             "flag is None": True, "ok is not True": False, "-dpd < -3": True,
             "flag or status": "open", "'x' in items": True, "today == '2026-01-01'": True,
             "ok == True and dpd >= 5": True, "dpd != 5.0": False}
    for source, expected in cases.items():
        value = plain_eval.evaluate(source, data)
        assert value == expected and type(value) is type(expected), source


def test_what_the_sandbox_would_decide_is_left_to_it():
    data = {"a": 1, "s": "x", "big": 10**30, "nan": float("nan"), "lst": list(range(2000)),
            "deep": [1], "obj": object(),
            "many": ["x" * 10] * 200}
    for _ in range(25):
        data["deep"] = [data["deep"]]
    for source in ("today", "a == today", "missing == 1",  # names not in the task data
                   "a < s", "-s", "s in a",  # errors: raised with the sandbox's message
                   "big == 1", "nan == nan", "lst == lst", "deep == deep", "obj == obj",
                   "many or s",  # a value not plain, or a result that is not small
                   "a is 1", "s is s"):  # identity of other than None/True/False
        assert plain_eval.evaluate(source, data) is plain_eval.MISS, source


HOSTILE = ["f()", "a.b", "a[0]", "a + 1", "10**10**8", "a == 10**10**8", "a.__class__",
           "a == 10000000000000000000", "a == '" + "x" * 1001 + "'", "[x for x in a]",
           "(lambda: 1)()", "f'{a}'", "(b := 1)", "a in (1, b)", "a in (*b,)",
           "a in " + repr(tuple(range(101))), "a if a else b", "{a: 1}", "{a}", "~a",
           "a == (1, 2)", "__builtins__", "_a == 1", "not " * 300 + "a"]


@pytest.mark.parametrize("source", HOSTILE)
def test_anything_else_is_refused_by_the_fast_path(source):
    assert plain_eval.plain(source) is None


@pytest.mark.parametrize("source, kind", [
    ("a == 10**10**8", ("time", "memory")),
    ("a in [x for x in range(10**9)]", ("iterations", "time")),
])
def test_hostile_expressions_still_hit_the_sandbox_limits(app, source, kind):
    started = time.monotonic()
    with pytest.raises(ScriptLimitError) as caught:
        RestrictedEnvironment().evaluate(source, {"a": 1})
    assert caught.value.kind in kind
    assert time.monotonic() - started < 10


def test_dunder_names_are_still_refused_when_compiling():
    with pytest.raises(ScriptError):
        RestrictedEnvironment().evaluate("__builtins__ == 1", {"__builtins__": 1})


def _shipped_conditions():
    found = []
    for path in sorted(BPMN.glob("*.bpmn")):
        for text in re.findall(r"<bpmn:conditionExpression[^>]*>(.*?)</bpmn:conditionExpression>",
                               path.read_text(), re.S):
            found.append((path.name, unescape(text.strip(), {"&quot;": '"'})))
    return found


def test_most_shipped_conditions_qualify():
    conditions = _shipped_conditions()
    plain = [source for _, source in conditions if plain_eval.plain(source)]
    # 43 conditions in bpmn/*.bpmn, 37 plain; 6 with subscripts, calls or arithmetic go to
    # the sandbox
    assert len(conditions) >= 40
    assert len(plain) >= len(conditions) - 6, sorted(
        source for _, source in conditions if not plain_eval.plain(source))
    for source in ("0 < dpd <= 3", "dpd > 90", "review_decision == \"approve\"",
                   "visit_situation in (\"wilful_default\", \"deteriorating\")",
                   "overdue_cleared or written_off"):
        assert source in plain


def test_a_collection_start_takes_the_fast_path(app, overdue, monkeypatch):  # noqa: F811
    taken, sandboxed = [], []
    real_evaluate, real_run = plain_eval.evaluate, sandbox_pool.run

    def counting_evaluate(source, context):
        value = real_evaluate(source, context)
        if value is not plain_eval.MISS:
            taken.append(source)
        return value

    def counting_run(mode, source, *args, **kwargs):
        if mode == "eval":
            sandboxed.append(source)
        return real_run(mode, source, *args, **kwargs)

    monkeypatch.setattr(plain_eval, "evaluate", counting_evaluate)
    monkeypatch.setattr(sandbox_pool, "run", counting_run)
    overdue()
    assert len(taken) >= 3, taken  # the stage gateway's conditions, at least
    for source in sandboxed:  # what still went to the sandbox is not plain
        assert plain_eval.plain(source) is None, source


def test_with_an_external_context_the_task_data_still_wins(app):
    # the sandbox resolves names from the task data over the external context, so the fast
    # path's "every name a task-data key" rule would hold with one too
    env = RestrictedEnvironment()
    for external in ({"x": 2}, {"y": 1}):
        assert sandbox_pool.run("eval", "x == 1", {"x": 1}, external, HELPERS) is True
        assert env.evaluate("x == 1", {"x": 1}, external) is True
