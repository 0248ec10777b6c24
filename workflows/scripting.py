"""Sandboxed evaluation of BPMN scripts, conditions and timer expressions.

Process owners write these, so they are untrusted: every piece of code is compiled with
RestrictedPython (no imports, no dunder access, no open/exec), runs with a short list of
helpers, and loops are bounded by an iteration budget.
"""
import ast
import datetime as dt
import functools
import json
import operator
from decimal import Decimal

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem
from RestrictedPython.Guards import (full_write_guard, guarded_iter_unpack_sequence,
                                     guarded_unpack_sequence, safer_getattr)
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

from calendars.workdays import add_working_days, is_working_day, subtract_working_days
from workflows.clock import now

MAX_ITERATIONS = 100_000


class ScriptError(ValueError):
    """A script or expression that does not compile under the sandbox rules."""


_INPLACE = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul,
            "/=": operator.itruediv, "//=": operator.ifloordiv, "%=": operator.imod}


def _inplacevar(op, x, y):
    if op not in _INPLACE:
        raise ScriptError(f"operator {op} is not allowed")
    return _INPLACE[op](x, y)


class _Budget:
    def __init__(self):
        self.left = MAX_ITERATIONS

    def getiter(self, obj):
        for item in obj:
            self.left -= 1
            if self.left < 0:
                raise ScriptError(f"script exceeded {MAX_ITERATIONS} loop iterations")
            yield item


def _to_date(value):
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _at_local_time(day, hour=9, minute=0):
    """An aware UTC ISO timestamp for `hour:minute` Beijing time on `day` (for timers)."""
    beijing = dt.timezone(dt.timedelta(hours=8))
    moment = dt.datetime.combine(_to_date(day), dt.time(hour, minute), beijing)
    return moment.astimezone(dt.timezone.utc).isoformat()


def _today():
    """Today in Beijing, from the application clock (tests and --as-of runs move it)."""
    return now().astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()


HELPERS = {
    "today": _today,
    "add_working_days": lambda day, n: add_working_days(_to_date(day), n).isoformat(),
    "subtract_working_days": lambda day, n: subtract_working_days(_to_date(day), n).isoformat(),
    "is_working_day": lambda day: is_working_day(_to_date(day)),
    "at_local_time": _at_local_time,
    "date": _to_date,
    "Decimal": Decimal,
}


def _base_globals():
    budget = _Budget()
    return {
        "__builtins__": dict(safe_builtins, min=min, max=max, sum=sum, len=len, any=any, all=all,
                             sorted=sorted, round=round, abs=abs, list=list, dict=dict),
        "_getattr_": safer_getattr,
        "_getitem_": default_guarded_getitem,
        "_getiter_": budget.getiter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": full_write_guard,
        "_inplacevar_": _inplacevar,
        **HELPERS,
    }


@functools.lru_cache(maxsize=2048)
def compile_expression(source):
    result = compile_restricted_eval(source)
    if result.errors:
        raise ScriptError("; ".join(result.errors))
    return result.code


def _refuse_imports(source):
    # RestrictedPython only fails imports at run time; refuse them when compiling.
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            raise ScriptError(f"line {node.lineno}: import is not allowed in BPMN scripts")


@functools.lru_cache(maxsize=2048)
def compile_script(source):
    _refuse_imports(source)
    result = compile_restricted_exec(source)
    if result.errors:
        raise ScriptError("; ".join(result.errors))
    return result.code


class RestrictedEnvironment(TaskDataEnvironment):
    """TaskDataEnvironment whose eval/exec go through RestrictedPython."""

    def __init__(self, services=None):
        super().__init__(_base_globals())
        self.services = services or {}

    def evaluate(self, expression, context, external_context=None):
        scope = _base_globals()
        scope.update(external_context or {})
        scope.update(context)
        return eval(compile_expression(expression), scope)

    def execute(self, script, context, external_context=None):
        self.check_for_overwrite(context, external_context or {})
        context.update(_base_globals())
        context.update(external_context or {})
        try:
            exec(compile_script(script), context)
        finally:
            self._remove_globals_and_functions_from_context(context, external_context)
        return True

    def call_service(self, context, operation_name=None, operation_params=None, **_):
        """Service tasks call operations the application registered by name."""
        handler = self.services.get(operation_name)
        if handler is None:
            raise ScriptError(f"unknown service operation {operation_name}")
        params = {k: v["value"] for k, v in (operation_params or {}).items()}
        return json.dumps(handler(context, **params), default=str)


def make_engine(services):
    return PythonScriptEngine(environment=RestrictedEnvironment(services))
