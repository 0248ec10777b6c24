"""The checks of code written in a diagram: scripts, pre/post-scripts, conditions, service
parameters and timer expressions, compiled under the sandbox rules and run once in the
sandbox on empty task data (workflows/limits.py), so that what certainly fails or goes over a
limit is refused before deploy. `CodeChecks` is a part of workflows.validation._Checker."""
import ast
import re
import time

from workflows.bpmn_xml import local as _local
from workflows.limits import current_limits
from workflows.problems import N_, Text
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
EXPENSIVE_HINT = N_("Scripts, conditions and timer expressions must finish within the time "
                    "and memory limits: no endless loops, huge ranges, powers or repetitions")
TIMER_HINT = N_('Timer expressions are Python: quote literal durations like "P3D" and dates '
                'like "2026-01-05T09:00:00+08:00", or name a variable holding one')
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
NUMBER_NOT_ISO = {"timeDate": N_("%(text)s is a number, not an ISO 8601 date"),
                  "timeDuration": N_("%(text)s is a number, not an ISO 8601 duration"),
                  "timeCycle": N_("%(text)s is a number, not an ISO 8601 cycle")}
NOT_ISO = {"timeDate": N_("%(value)s is not an ISO 8601 date-time"),
           "timeDuration": N_("%(value)s is not an ISO 8601 duration"),
           "timeCycle": N_("%(value)s is not an ISO 8601 cycle like R3/PT1H")}
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
                message, hint = (N_("%(what)s does not compile: %(detail)s"),
                                 N_("Fix the Python syntax"))
            else:
                message, hint = (N_("%(what)s uses a forbidden construct: %(detail)s"),
                                 N_("Scripts may not import, use names starting with _, or "
                                    "call open, exec, eval and similar built-ins"))
            self.add(element_id, self.pid, code, message, hint, el=el, what=what,
                     detail=detail)
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
            # The limit's own words: its template (workflows/limits.py REASONS) and value.
            reason = Text(exc.template, limit=exc.limit)
            if exc.line_number:
                self.add(element_id, self.pid, "code_too_expensive",
                         N_("%(what)s is too expensive: %(detail)s (line %(lineno)s of the "
                            "code)"), EXPENSIVE_HINT, el=el, what=what, detail=reason,
                         lineno=exc.line_number)
            else:
                self.add(element_id, self.pid, "code_too_expensive",
                         N_("%(what)s is too expensive: %(detail)s"), EXPENSIVE_HINT, el=el,
                         what=what, detail=reason)
            return True
        except Exception:  # noqa: BLE001 — e.g. a name from the task data: judged at run time
            return False
        finally:
            self.sandbox_spent += time.monotonic() - start
        return False

    def check_timer(self, el, nid, timer):
        definitions = [(_local(c), c) for c in timer
                       if _local(c) in ("timeDate", "timeDuration", "timeCycle")]
        if not definitions or not (definitions[0][1].text or "").strip():
            self.add(nid, self.pid, "timer_invalid", N_("timer has no date, duration or cycle"),
                     TIMER_HINT, el=el)
            return
        kind, node = definitions[0]
        if self.check_limits(nid, node.text.strip(), "eval", Text(N_("timer expression")), el):
            return
        detail = timer_problem(kind, node.text)
        if detail:
            self.add(nid, self.pid, "timer_invalid",
                     N_("timer expression does not evaluate: %(detail)s"), TIMER_HINT, el=el,
                     detail=detail)


def bounded(source, mode):
    """True when running `source` certainly stays within the sandbox's limits."""
    try:
        tree = ast.parse(source, mode=mode)
    except (SyntaxError, ValueError, TypeError):
        return False
    return all(isinstance(node, _BOUNDED) for node in ast.walk(tree))


def _syntax(exc):
    """Python's own message (English, quoted as it is) with its line."""
    return Text(N_("line %(lineno)s: %(detail)s"), lineno=exc.lineno, detail=exc.msg)


def code_problem(source, mode):
    """(code, detail) when `source` does not compile under the sandbox rules, else None."""
    try:
        tree = ast.parse(source, mode=mode)
    except SyntaxError as exc:
        return "script_syntax", _syntax(exc)
    except (ValueError, TypeError) as exc:
        return "script_syntax", str(exc)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return "script_forbidden", Text(N_("line %(lineno)s: import is not allowed"),
                                            lineno=node.lineno)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in FORBIDDEN_CALLS):
            return "script_forbidden", Text(N_("line %(lineno)s: %(name)s() is not allowed"),
                                            lineno=node.lineno, name=node.func.id)
    try:
        (compile_script if mode == "exec" else compile_expression)(source)
    except SyntaxError as exc:
        return "script_syntax", _syntax(exc)
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
            return Text(N_('%(text)s is not quoted: quote literal dates like '
                           '"2026-01-05T09:00:00+08:00"'), text=text)
        return _syntax(exc)
    found = code_problem(text, "eval")
    if found:
        return found[1]
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - SAFE_NAMES
    if names:
        literal = [n for n in names if ISO_NAME.fullmatch(n)]
        if literal and len(literal) == len(names):
            return Text(N_('name \'%(name)s\' is not defined: quote literal durations like '
                           '"P3D"'), name=sorted(literal)[0])
        return None  # depends on task data: judged when the timer is reached
    if isinstance(tree.body, ast.Constant) and isinstance(tree.body.value, (int, float)):
        return Text(NUMBER_NOT_ISO[kind], text=text)
    try:
        value = RestrictedEnvironment().evaluate(text, {})
    except (NameError, TypeError, AttributeError, KeyError, IndexError, ZeroDivisionError,
            ScriptError, SyntaxError) as exc:
        return f"{type(exc).__name__}: {exc}"  # Python's words, quoted
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
        return Text(NOT_ISO[kind], value=repr(value))
    return None
