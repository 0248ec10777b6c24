"""Time and memory limits for BPMN scripts, conditions and timer expressions.

Process owners write this code, so it is untrusted twice over: RestrictedPython keeps it away
from the server's objects (workflows.scripting), and this module keeps it from taking the
server's CPU and memory. Every evaluation runs in a sandbox process of its own:

- A small pool of worker processes (workflows.sandbox_pool; `python -I`, importing only
  workflows.sandbox_worker, this module, the standard library and RestrictedPython) runs one
  evaluation at a time. The request's thread sends the
  source and the task data, then waits in select() with the GIL released, so other requests
  are served meanwhile whatever the code does, even inside one long C call such as
  `sum(range(10**11))` or `10**10**8`.
- CPU: the worker checks a per-evaluation CPU deadline at every loop iteration and call
  (an AST pass inserts a tick into every `while` body, function and lambda; `for` loops and
  comprehensions tick through `_getiter_`), so Python-level loops stop cleanly. Anything
  else, a C-level call included, is stopped by the parent killing the worker when the wall
  deadline (the time limit plus a grace of half of it, at least 0.5 s) passes; RLIMIT_CPU is
  a backstop for a worker whose parent is gone.
- Memory: the worker's address space is capped (RLIMIT_AS) at its size before the
  evaluation plus the memory limit, so `'a' * 10**10`, `list(range(10**9))` or `bytes(10**10)`
  fail with MemoryError inside the worker and never touch the server's memory.
- Results: the task data a script leaves (or an expression's value) comes back pickled
  without shared references, at most SCRIPT_RESULT_LIMIT bytes, only of plain data types,
  and the parent unpickles it with a whitelist; a value that could not be stored (a huge
  int, a cycle, a generator, a data bomb of shared lists) is refused in the worker.
- Helpers that need the database (the working-day calendar) or the application clock run
  in the parent, called back over the same pipe; their time counts against the deadline.

Limits are per evaluation, from the app config when there is an app context:
SCRIPT_TIME_LIMIT (seconds of CPU, default 1), SCRIPT_MEMORY_LIMIT (MB, default 256),
SCRIPT_MAX_ITERATIONS (loop iterations and calls, default 100 000), SCRIPT_RESULT_LIMIT
(MB of data a script may leave, default 1). A whole engine run (one request's
do_engine_steps, one timer firing) is bounded too: ENGINE_STEP_LIMIT automatic steps
(default 2000) and ENGINE_TIME_LIMIT seconds (default 10), see engine_budget().

Going over raises ScriptLimitError: a SpiffWorkflowException (the facade puts the instance
in its error state) and a ScriptError (validation reports it as code_too_expensive), with
`kind`, `limit`, an English message and a translatable `reason`.
"""
import ast
import datetime as dt
import functools
import operator
import os
import pickle
import select
import struct
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from RestrictedPython import (RestrictingNodeTransformer, compile_restricted_eval,
                              compile_restricted_exec, safe_builtins)
from RestrictedPython.transformer import copy_locations
from SpiffWorkflow.exceptions import SpiffWorkflowException

from workflows.clock import BEIJING

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
DEFAULTS = {"SCRIPT_TIME_LIMIT": 1.0, "SCRIPT_MEMORY_LIMIT": 256,
            "SCRIPT_MAX_ITERATIONS": 100_000, "SCRIPT_RESULT_LIMIT": 1,
            "ENGINE_STEP_LIMIT": 2000, "ENGINE_TIME_LIMIT": 10.0}
# Python refuses int <-> str conversions beyond this many digits (sys.int_max_str_digits):
# such a number could not be stored in the instance's JSON, so a script may not leave one.
MAX_INT_BITS = 14_000
CALL_FRAME_LIMIT = 64 * 1024  # a helper call's arguments, pickled
CODE_FILENAME = "<string>"  # SpiffWorkflow finds a script's failing line by this name


def N_(message):
    """Marks a message for extraction (babel's N_ keyword); translated when shown."""
    return message


# English templates; `reason` translates them. `what` is "script" or "expression".
REASONS = {
    ("time", "script"): N_("the script took longer than %(limit)s s"),
    ("time", "expression"): N_("the expression took longer than %(limit)s s"),
    ("memory", "script"): N_("the script would use more than %(limit)s MB"),
    ("memory", "expression"): N_("the expression would use more than %(limit)s MB"),
    ("iterations", "script"): N_("the script ran more than %(limit)s loop iterations or "
                                 "calls"),
    ("iterations", "expression"): N_("the expression ran more than %(limit)s loop "
                                     "iterations or calls"),
    ("recursion", "script"): N_("the script nests calls more than %(limit)s deep"),
    ("recursion", "expression"): N_("the expression nests calls more than %(limit)s deep"),
    ("size", "script"): N_("the script leaves more than %(limit)s MB of data"),
    ("size", "expression"): N_("the expression's value is larger than %(limit)s MB"),
    ("crashed", "script"): N_("the script crashed its sandbox (memory limit %(limit)s MB)"),
    ("crashed", "expression"): N_("the expression crashed its sandbox (memory limit "
                                  "%(limit)s MB)"),
    ("steps", "process"): N_("the process ran more than %(limit)s automatic steps at once"),
    ("engine_time", "process"): N_("the process ran longer than %(limit)s s at once"),
    ("instances", "process"): N_("a multi-instance activity asks for more than %(limit)s "
                                 "instances"),
}


class ScriptError(ValueError):
    """A script or expression that does not compile under the sandbox rules, or fails them."""


class ScriptLimitError(ScriptError, SpiffWorkflowException):
    """A script, condition, timer expression or engine run that went over a limit.

    `kind`: time, memory, iterations, recursion, size, crashed (evaluations) or steps,
    engine_time, instances (engine runs); `limit` in the unit of the message (s, MB, count).
    str() is English (instance errors, the API, logs); `reason` is in the user's language.
    """

    def __init__(self, kind, limit, what="expression", line_number=None):
        self.kind, self.limit, self.what = kind, _number(limit), what
        self.template = REASONS[(kind, what)]
        message = self.template % {"limit": self.limit}
        ValueError.__init__(self, message)
        self.notes = []  # SpiffWorkflowException's (its __init__ is not in this MRO path)
        self.line_number, self.error_line = line_number, None

    def __reduce__(self):
        return type(self), (self.kind, self.limit, self.what, self.line_number)

    def __str__(self):
        return "".join([self.args[0]] + [f". {note}" for note in self.notes])

    @property
    def reason(self):
        """The message in the current user's language (English outside a request)."""
        try:
            from flask import has_app_context
            if has_app_context():
                from flask_babel import gettext
                return gettext(self.template, limit=self.limit)
        except ImportError:  # pragma: no cover - the worker never asks
            pass
        return self.template % {"limit": self.limit}


def _number(value):
    return int(value) if float(value).is_integer() else value


# ---------------------------------------------------------------- limits (parent side)

@dataclass(frozen=True)
class Limits:
    time: float = DEFAULTS["SCRIPT_TIME_LIMIT"]
    memory_mb: float = DEFAULTS["SCRIPT_MEMORY_LIMIT"]
    iterations: int = DEFAULTS["SCRIPT_MAX_ITERATIONS"]
    result_mb: float = DEFAULTS["SCRIPT_RESULT_LIMIT"]

    @property
    def deadline(self):
        """Wall seconds after which the parent kills a worker."""
        return self.time + max(0.5, self.time / 2)


def _config():
    try:
        from flask import current_app, has_app_context
    except ImportError:  # pragma: no cover
        return {}
    return current_app.config if has_app_context() else {}


def setting(name):
    return _config().get(name, DEFAULTS[name])


def current_limits():
    """The limits of one evaluation, from the app config (defaults outside an app)."""
    return Limits(time=float(setting("SCRIPT_TIME_LIMIT")),
                  memory_mb=float(setting("SCRIPT_MEMORY_LIMIT")),
                  iterations=int(setting("SCRIPT_MAX_ITERATIONS")),
                  result_mb=float(setting("SCRIPT_RESULT_LIMIT")))


def engine_budget():
    """A will_complete_task callback for do_engine_steps that stops a run after
    ENGINE_STEP_LIMIT automatic steps or ENGINE_TIME_LIMIT seconds (a loop in the diagram,
    an endless standard loop, a burst of cycle timers)."""
    steps, seconds = int(setting("ENGINE_STEP_LIMIT")), float(setting("ENGINE_TIME_LIMIT"))
    start, count = time.monotonic(), [0]

    def will_complete_task(task):
        count[0] += 1
        if count[0] > steps:
            raise ScriptLimitError("steps", steps, "process")
        if time.monotonic() - start > seconds:
            raise ScriptLimitError("engine_time", seconds, "process")
    return will_complete_task


# ---------------------------------------------------------------- compiling (both sides)

class SandboxPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus a budget tick at the top of every `while` body, every
    function and every lambda (`for` loops and comprehensions tick through _getiter_)."""

    @staticmethod
    def _tick(node):
        call = ast.Call(func=ast.Name("_tick_", ast.Load()), args=[], keywords=[])
        copy_locations(call, node)
        statement = ast.Expr(value=call)
        copy_locations(statement, node)
        return statement

    def visit_While(self, node):
        node = super().visit_While(node)
        node.body.insert(0, self._tick(node))
        return node

    def visit_FunctionDef(self, node):
        node = super().visit_FunctionDef(node)
        node.body.insert(0, self._tick(node))
        return node

    def visit_Lambda(self, node):
        node = super().visit_Lambda(node)
        tick = self._tick(node.body).value  # `_tick_() or body`: _tick_ returns None
        node.body = ast.BoolOp(op=ast.Or(), values=[tick, node.body])
        copy_locations(node.body, node)
        return node


def _refuse_imports(source):
    # RestrictedPython only fails imports at run time; refuse them when compiling.
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            raise ScriptError(f"line {node.lineno}: import is not allowed in BPMN scripts")


@functools.lru_cache(maxsize=2048)
def compile_expression(source):
    result = compile_restricted_eval(source, CODE_FILENAME, policy=SandboxPolicy)
    if result.errors:
        raise ScriptError("; ".join(result.errors))
    return result.code


@functools.lru_cache(maxsize=2048)
def compile_script(source):
    _refuse_imports(source)
    result = compile_restricted_exec(source, CODE_FILENAME, policy=SandboxPolicy)
    if result.errors:
        raise ScriptError("; ".join(result.errors))
    return result.code


# ---------------------------------------------------------------- helpers usable in the worker

def to_date(value):
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def at_local_time(day, hour=9, minute=0):
    """An aware UTC ISO timestamp for `hour:minute` Beijing time on `day` (for timers)."""
    moment = dt.datetime.combine(to_date(day), dt.time(hour, minute), BEIJING)
    return moment.astimezone(dt.timezone.utc).isoformat()


# Pure helpers run inside the worker; the others (database, clock) are called back.
LOCAL_HELPERS = {"date": to_date, "Decimal": Decimal, "at_local_time": at_local_time}

_INPLACE = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul,
            "/=": operator.itruediv, "//=": operator.ifloordiv, "%=": operator.imod}


def _inplacevar(op, x, y):
    if op not in _INPLACE:
        raise ScriptError(f"operator {op} is not allowed")
    return _INPLACE[op](x, y)


def sandbox_builtins():
    return dict(safe_builtins, min=min, max=max, sum=sum, len=len, any=any, all=all,
                sorted=sorted, round=round, abs=abs, list=list, dict=dict)


GUARD_NAMES = ("__builtins__", "_getattr_", "_getitem_", "_getiter_", "_iter_unpack_sequence_",
               "_unpack_sequence_", "_write_", "_inplacevar_", "_tick_")


# ---------------------------------------------------------------- framing (both sides)

_HEADER = struct.Struct("!I")


class _WorkerGone(Exception):
    """The worker's pipe closed or broke."""


class _Timeout(Exception):
    pass


class _TooLong(Exception):
    pass


def _wait(fd, events, deadline):
    """Block (GIL released) until fd is ready or the deadline passes. poll(), not select():
    a busy server may hold descriptors beyond select's 1024."""
    poller = select.poll()
    poller.register(fd, events | select.POLLHUP | select.POLLERR)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Timeout
        if poller.poll(max(1, int(remaining * 1000))):
            return


def _write_all(fd, data, deadline=None):
    view = memoryview(data)
    while view:
        if deadline is not None:
            _wait(fd, select.POLLOUT, deadline)
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            continue
        except (BrokenPipeError, OSError) as exc:
            raise _WorkerGone from exc
        view = view[written:]


def _read_exact(fd, size, deadline=None):
    chunks, left = [], size
    while left:
        if deadline is not None:
            _wait(fd, select.POLLIN, deadline)
        try:
            chunk = os.read(fd, min(left, 1 << 20))
        except BlockingIOError:
            continue
        except OSError as exc:
            raise _WorkerGone from exc
        if not chunk:
            raise _WorkerGone
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send(fd, obj, deadline=None):
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    _write_all(fd, _HEADER.pack(len(data)) + data, deadline)


def _recv_bytes(fd, deadline=None, max_size=None):
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if max_size is not None and size > max_size:
        raise _TooLong
    return _read_exact(fd, size, deadline)
