"""The checks of code written in a diagram: scripts, pre/post-scripts, conditions, service
parameters and timer expressions, compiled under the sandbox rules and run once in the
sandbox on empty task data (workflows/limits.py), so that what certainly fails or goes over a
limit is refused before deploy. `CodeChecks` is a part of workflows.validation._Checker."""
import ast
import re
import time

from workflows.bpmn_xml import local as _local
from workflows.limits import current_limits
from workflows.scripting import HELPERS, RestrictedEnvironment, ScriptError, ScriptLimitError, \
    compile_expression, compile_script

# Built-ins a BPMN script may never call, even though some only fail at run time.
FORBIDDEN_CALLS = {"open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars",
                   "input", "breakpoint", "help", "exit", "quit", "setattr", "delattr"}
SAFE_NAMES = set(HELPERS) | {"min", "max", "sum", "len", "any", "all", "sorted", "round", "abs",
                             "list", "dict", "str", "int", "float", "bool", "True", "False",
                             "None", "range", "tuple", "set"}
# A bare name that is really an unquoted ISO 8601 literal: P3D, PT2H, R3 (from R3/PT1H)…
ISO_NAME = re.compile(r"R\d*|P(\d+[YMWD])*(T(\d+[HMS])+)?|\d+W\d+", re.IGNORECASE)
# Sandbox time one validation may spend, in multiples of the per-evaluation time limit: going
# over a limit is already a problem, so later code is not run once this is spent.
SANDBOX_BUDGET = 3
EXPENSIVE_HINT = ("Scripts, conditions and timer expressions must finish within the time and "
                  "memory limits: no endless loops, huge ranges, powers or repetitions")
# What code made only of these nodes does costs a step per node at most: it cannot go over a
# limit, so it is not run in the sandbox (a run costs about 1 ms, seconds for a big diagram).
# Not here: calls, loops, comprehensions, `*`, `**`, `%` and f-strings (repetition, huge
# numbers, format widths).
_BOUNDED = (ast.Module, ast.Expression, ast.Expr, ast.Assign, ast.If, ast.Pass, ast.Name,
            ast.Load, ast.Store, ast.Constant, ast.Compare, ast.BoolOp, ast.UnaryOp,
            ast.Attribute, ast.Subscript, ast.Slice, ast.Tuple, ast.List, ast.Dict, ast.Set,
            ast.IfExp, ast.BinOp, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Eq,
            ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
            ast.Add, ast.Sub, ast.Div, ast.FloorDiv)
ISO_TEXT = re.compile(r"R\d*/.*|P[\dYMWDTHS.,]+|\d{4}-\d{2}-\d{2}([T ][\d:.]+)?(Z|[+-]\d\d:?\d\d)?",
                      re.IGNORECASE)


class CodeChecks:
    """Methods of _Checker (it provides add, pid and sandbox_spent)."""

    limits = None  # the sandbox's limits, read once per validation

    def check_code(self, element_id, source, mode, what, el):
        """`mode` is "exec" (scripts) or "eval" (conditions, expressions)."""
        found = code_problem(source, mode)
        if found:
            code, detail = found
            if code == "script_syntax":
                message, hint = (f"{what} does not compile: {detail}",
                                 "Fix the Python syntax")
            else:
                message, hint = (f"{what} uses a forbidden construct: {detail}",
                                 "Scripts may not import, use names starting with _, or call "
                                 "open, exec, eval and similar built-ins")
            self.add(element_id, self.pid, code, message, hint, el=el)
            return
        self.check_limits(element_id, source, mode, what, el)

    def check_limits(self, element_id, source, mode, what, el):
        """Run the code once in the sandbox on empty task data: going over a limit there is a
        problem (code_too_expensive); any other failure depends on the task data and is
        judged at run time. True when a problem was added."""
        if bounded(source, mode):
            return False
        if self.limits is None:
            self.limits = current_limits()
        if self.sandbox_spent >= SANDBOX_BUDGET * self.limits.time:
            return False
        start = time.monotonic()
        try:
            env = RestrictedEnvironment()
            if mode == "exec":
                env.execute(source, {})
            else:
                env.evaluate(source, {})
        except ScriptLimitError as exc:
            where = f" (line {exc.line_number} of the code)" if exc.line_number else ""
            self.add(element_id, self.pid, "code_too_expensive",
                     f"{what} is too expensive: {exc}{where}", EXPENSIVE_HINT, el=el)
            return True
        except Exception:  # noqa: BLE001 — e.g. a name from the task data: judged at run time
            return False
        finally:
            self.sandbox_spent += time.monotonic() - start
        return False

    def check_timer(self, el, nid, timer):
        definitions = [(_local(c), c) for c in timer
                       if _local(c) in ("timeDate", "timeDuration", "timeCycle")]
        hint = ('Timer expressions are Python: quote literal durations like "P3D" and dates '
                'like "2026-01-05T09:00:00+08:00", or name a variable holding one')
        if not definitions or not (definitions[0][1].text or "").strip():
            self.add(nid, self.pid, "timer_invalid", "timer has no date, duration or cycle",
                     hint, el=el)
            return
        kind, node = definitions[0]
        if self.check_limits(nid, node.text.strip(), "eval", "timer expression", el):
            return
        detail = timer_problem(kind, node.text)
        if detail:
            self.add(nid, self.pid, "timer_invalid",
                     f"timer expression does not evaluate: {detail}", hint, el=el)


def bounded(source, mode):
    """True when running `source` certainly stays within the sandbox's limits."""
    try:
        tree = ast.parse(source, mode=mode)
    except (SyntaxError, ValueError, TypeError):
        return False
    return all(isinstance(node, _BOUNDED) for node in ast.walk(tree))


def code_problem(source, mode):
    """(code, detail) when `source` does not compile under the sandbox rules, else None."""
    try:
        tree = ast.parse(source, mode=mode)
    except SyntaxError as exc:
        return "script_syntax", f"line {exc.lineno}: {exc.msg}"
    except (ValueError, TypeError) as exc:
        return "script_syntax", str(exc)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return "script_forbidden", f"line {node.lineno}: import is not allowed"
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in FORBIDDEN_CALLS):
            return "script_forbidden", f"line {node.lineno}: {node.func.id}() is not allowed"
    try:
        (compile_script if mode == "exec" else compile_expression)(source)
    except SyntaxError as exc:
        return "script_syntax", f"line {exc.lineno}: {exc.msg}"
    except ScriptError as exc:
        return "script_forbidden", str(exc)
    return None


def timer_problem(kind, source):
    """A message when a timer expression certainly fails, else None.

    Expressions naming task-data variables cannot be judged before run time and pass;
    pure expressions are evaluated in the sandbox and must give an ISO 8601 value.
    """
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition as T
    text = source.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        if ISO_TEXT.fullmatch(text):
            return f'{text} is not quoted: quote literal dates like "2026-01-05T09:00:00+08:00"'
        return f"line {exc.lineno}: {exc.msg}"
    found = code_problem(text, "eval")
    if found:
        return found[1]
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - SAFE_NAMES
    if names:
        literal = [n for n in names if ISO_NAME.fullmatch(n)]
        if literal and len(literal) == len(names):
            return (f"name '{sorted(literal)[0]}' is not defined: quote literal durations "
                    f'like "P3D"')
        return None  # depends on task data: judged when the timer is reached
    if isinstance(tree.body, ast.Constant) and isinstance(tree.body.value, (int, float)):
        return f"{text} is a number, not an ISO 8601 {kind[4:].lower()}"
    try:
        value = RestrictedEnvironment().evaluate(text, {})
    except (NameError, TypeError, AttributeError, KeyError, IndexError, ZeroDivisionError,
            ScriptError, SyntaxError) as exc:
        return f"{type(exc).__name__}: {exc}"
    except Exception:  # noqa: BLE001 — e.g. a calendar year not known yet: judged at run time
        return None
    try:
        if kind == "timeDate":
            if isinstance(T.parse_time_or_duration(str(value)), dict) or not isinstance(value, str):
                raise ValueError
        elif kind == "timeDuration":
            T.parse_iso_duration(value)
        else:
            T.parse_iso_recurring_interval(value)
    except Exception:  # noqa: BLE001 — the engine's parsers raise bare Exceptions
        wanted = {"timeDate": "date-time", "timeDuration": "duration",
                  "timeCycle": "cycle like R3/PT1H"}[kind]
        return f"{value!r} is not an ISO 8601 {wanted}"
    return None
