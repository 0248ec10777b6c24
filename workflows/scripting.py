"""Sandboxed evaluation of BPMN scripts, conditions and timer expressions.

Process owners write these, so they are untrusted: every piece of code is compiled with
RestrictedPython (no imports, no dunder access, no open/exec), runs with a short list of
helpers, and runs in a sandbox worker process within limits of time, memory, loop
iterations and result size (workflows.limits): a fresh budget for every evaluation
SpiffWorkflow asks for. Plain expressions (comparisons of task data, most gateway
conditions) are evaluated in-process instead, with the same results (workflows.plain_eval).
"""
import json
from decimal import Decimal

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from calendars.workdays import add_working_days, is_working_day, subtract_working_days
from workflows import limits, plain_eval, sandbox_pool
from workflows.clock import today
from workflows.limits import (ScriptError, ScriptLimitError, compile_expression,  # noqa: F401
                              compile_script, sandbox_builtins)
from workflows.sandbox_worker import storable_result

MAX_ITERATIONS = limits.DEFAULTS["SCRIPT_MAX_ITERATIONS"]
_to_date = limits.to_date
_at_local_time = limits.at_local_time


def _today():
    """Today in Beijing, from the application clock (tests and --as-of runs move it)."""
    return today().isoformat()


HELPERS = {
    "today": _today,
    "add_working_days": lambda day, n: add_working_days(_to_date(day), n).isoformat(),
    "subtract_working_days": lambda day, n: subtract_working_days(_to_date(day), n).isoformat(),
    "is_working_day": lambda day: is_working_day(_to_date(day)),
    "at_local_time": _at_local_time,
    "date": _to_date,
    "Decimal": Decimal,
}


# The names the sandbox binds besides the task data; it drops them from a script's result.
_RESERVED = frozenset(limits.GUARD_NAMES) | frozenset(limits.LOCAL_HELPERS) | frozenset(HELPERS)


def _base_globals():
    """The names a script sees besides its task data (task data may not shadow them)."""
    names = dict.fromkeys(limits.GUARD_NAMES)
    names["__builtins__"] = sandbox_builtins()
    names.update(HELPERS)
    return names


class RestrictedEnvironment(TaskDataEnvironment):
    """TaskDataEnvironment whose eval/exec run RestrictedPython code in a sandbox worker."""

    def __init__(self, services=None):
        super().__init__(_base_globals())
        self.services = services or {}

    def evaluate(self, expression, context, external_context=None):
        compile_expression(expression)  # compile errors are raised here, as before
        if not external_context:  # (its names would shadow the task data's in the sandbox)
            value = plain_eval.evaluate(expression, context)  # plain conditions: no round trip
            if value is not plain_eval.MISS:
                return value
        return sandbox_pool.run("eval", expression, context, external_context, HELPERS)

    def execute(self, script, context, external_context=None):
        self.check_for_overwrite(context, external_context or {})
        compile_script(script)
        result = plain_eval.MISS
        if not external_context:  # plain assignments (`stage = "dpd_4_7"`): no round trip
            result = plain_eval.run_script(script, context, _RESERVED)
            if result is not plain_eval.MISS and not storable_result(result):
                result = plain_eval.MISS  # the sandbox refuses it, with its own message
        if result is plain_eval.MISS:
            result = sandbox_pool.run("exec", script, context, external_context, HELPERS)
        context.clear()
        context.update(result)
        return True

    def call_service(self, context, operation_name=None, operation_params=None, **_):
        """Service tasks call operations the application registered by name."""
        handler = self.services.get(operation_name)
        if handler is None:
            raise ScriptError(f"unknown service operation {operation_name}")
        params = {k: v["value"] for k, v in (operation_params or {}).items()}
        return json.dumps(handler(context, **params), default=str)


def _limit_error(task, exc, source):
    """A WorkflowTaskException naming the element (and the line of a script), for a
    ScriptLimitError (kept as `limit_error`, with its translatable `reason`)."""
    spec = task.task_spec
    error = WorkflowTaskException(f"{spec.bpmn_name or spec.bpmn_id}: {exc.args[0]}", task=task,
                                  exception=exc, line_number=exc.line_number)
    lines = source.splitlines()
    if exc.what == "script" and exc.line_number and exc.line_number <= len(lines):
        error.error_line = lines[exc.line_number - 1]
        error.add_note(f"line {exc.line_number}: {error.error_line.strip()[:200]!r}")
    elif exc.what == "expression":
        error.add_note(f"expression {source.strip()[:200]!r}")
    error.limit_error = exc
    return error


class SandboxedScriptEngine(PythonScriptEngine):
    """PythonScriptEngine that names the element in limit errors and bounds multi-instance
    cardinality (SpiffWorkflow creates every instance at once, in this process)."""

    def execute(self, task, script, external_context=None):
        try:
            return self.environment.execute(script, task.data, external_context or {})
        except ScriptLimitError as exc:
            raise _limit_error(task, exc, script) from exc
        except Exception as err:  # as PythonScriptEngine.execute does
            raise self.create_task_exec_exception(task, script, err)

    def evaluate(self, task, expression, external_context=None):
        try:
            value = self.environment.evaluate(expression, task.data, external_context)
        except ScriptLimitError as exc:
            raise _limit_error(task, exc, expression) from exc
        except SpiffWorkflowException as exc:  # as PythonScriptEngine.evaluate does
            exc.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as exc:
            raise WorkflowTaskException(f"Error evaluating expression '{expression}'",
                                        task=task, exception=exc) from exc
        if expression == getattr(task.task_spec, "cardinality", None):
            most = int(limits.setting("ENGINE_STEP_LIMIT"))
            if isinstance(value, int) and value > most or \
                    not isinstance(value, int) and hasattr(value, "__len__") and len(value) > most:
                raise _limit_error(task, ScriptLimitError("instances", most, "process"),
                                   expression)
        return value


def make_engine(services):
    return SandboxedScriptEngine(environment=RestrictedEnvironment(services))
