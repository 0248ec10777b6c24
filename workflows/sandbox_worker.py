"""The sandbox worker process of workflows.limits: runs one evaluation at a time under its
budget (CPU deadline, loop iterations, address space, result size) and replies over its pipe.

Started by the parent's pool as `python -I` (workflows.sandbox_pool._BOOT); it imports only this
module, workflows.limits (compiling, helpers, framing, errors), the standard library and
RestrictedPython. `storable_result` is also used in the parent, by the plain-data fast path
(workflows.plain_eval), so both paths refuse the same values.
"""
import builtins
import datetime as dt
import io
import os
import pickle
import resource
import struct
import sys
import time
import traceback
import uuid
from decimal import Decimal

from RestrictedPython.Eval import default_guarded_getitem
from RestrictedPython.Guards import (full_write_guard, guarded_iter_unpack_sequence,
                                     guarded_unpack_sequence, safer_getattr)

from workflows.limits import (_HEADER, CODE_FILENAME, LOCAL_HELPERS, MAX_INT_BITS, MB,
                              ScriptError, _inplacevar, _recv_bytes, _send, _WorkerGone,
                              _write_all, compile_expression, compile_script, current_limits,
                              sandbox_builtins)


class _Limit(BaseException):
    """Raised by the budget inside the worker. A BaseException, so `except Exception:` in a
    script does not swallow it; the budget also remembers it in case a bare except does."""

    def __init__(self, kind):
        super().__init__(kind)
        self.kind = kind


class _Budget:
    def __init__(self, iterations, seconds):
        self.limit, self.left, self.exceeded = iterations, iterations, None
        self.deadline = time.thread_time() + seconds

    def tick(self):
        self.left -= 1
        if self.left < 0:
            self.exceeded = self.exceeded or "iterations"
            raise _Limit(self.exceeded)
        if not self.left & 63 and time.thread_time() > self.deadline:
            self.exceeded = self.exceeded or "time"
            raise _Limit(self.exceeded)

    def getiter(self, obj):
        tick = self.tick
        for item in obj:
            tick()
            yield item


class _HelperFailed(Exception):
    """Stands in, inside the worker, for an exception a called-back helper raised."""


def _helper_exception(type_name, base_name, message, index):
    base = getattr(builtins, base_name, Exception)
    if not (isinstance(base, type) and issubclass(base, Exception)):
        base = Exception
    cls = type(type_name, (_HelperFailed, base), {})
    exc = cls(message)
    exc.helper_index = index
    return exc


class _Channel:
    def __init__(self, rfd, wfd):
        self.rfd, self.wfd = rfd, wfd

    def send(self, obj):
        _send(self.wfd, obj)

    def recv(self):
        return pickle.loads(_recv_bytes(self.rfd))

    def remote(self, name):
        def call(*args, **kwargs):
            self.send(("call", name, args, kwargs))
            reply = self.recv()
            if reply[0] == "ok":
                return reply[1]
            raise _helper_exception(*reply[1:])
        call.__name__ = name
        return call


class _LimitedWriter:
    """A file for pickle.dump that refuses to grow past `limit` bytes."""

    def __init__(self, limit):
        self.buffer, self.limit = io.BytesIO(), limit

    def write(self, data):
        if self.buffer.tell() + len(data) > self.limit:
            raise _Limit("size")
        return self.buffer.write(data)


_PLAIN = (str, bytes, float, complex, bool, type(None), Decimal, dt.date, dt.time,
          dt.timedelta, dt.timezone, uuid.UUID, range, slice)


def _check_storable(value):
    """Refuse what the instance's JSON could not hold anyway: a number beyond Python's
    4300-digit str() limit, or a value of a type the sandbox should never hand back."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool):
            if item.bit_length() > MAX_INT_BITS:
                raise ScriptError("a number with more than 4000 digits cannot be stored")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif not isinstance(item, _PLAIN):
            raise ScriptError(f"a value of type {type(item).__name__} cannot be stored")


def _pickle_result(value, limit):
    writer = _LimitedWriter(limit)
    pickler = pickle.Pickler(writer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # no memo: shared references count as often as they are stored
    try:
        pickler.dump(("done", value))
    except ValueError as exc:  # fast mode refuses cycles
        raise ScriptError(f"the data cannot be stored: {exc}") from None
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ScriptError(f"the data cannot be stored: {exc}") from None
    _check_storable(value)
    return writer.buffer.getvalue()


def storable_result(value, limits=None):
    """Whether the sandbox would hand `value` back as a script's result: within the result
    size limit and of types the instance's JSON can hold (as _pickle_result checks)."""
    limits = limits or current_limits()
    try:
        _pickle_result(value, int(limits.result_mb * MB))
    except (_Limit, ScriptError, RecursionError):
        return False
    return True


def _line_of(tb):
    line = 0
    for frame in traceback.extract_tb(tb):
        if frame.filename == CODE_FILENAME:
            line = frame.lineno or 0
    return line


def _address_space():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _set_limits(job):
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = _address_space() + int(job["memory_mb"] * MB)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    cpu = int(usage.ru_utime + usage.ru_stime + job["time"]) + 3
    if cpu_hard != resource.RLIM_INFINITY:
        cpu = min(cpu, cpu_hard)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu_hard))


def _reset_limits():
    for which in (resource.RLIMIT_AS, resource.RLIMIT_CPU):
        _, hard = resource.getrlimit(which)
        resource.setrlimit(which, (hard, hard))


MAX_MESSAGE = 2000  # characters of an error message sent back


def _error_reply(exc, budget):
    """The reply for an exception, built while the limits still hold (str() of a
    script-made object may be as expensive as the script)."""
    line = _line_of(exc.__traceback__)
    if isinstance(exc, _Limit) or budget.exceeded:
        return ("limit", budget.exceeded or exc.kind, line)
    if isinstance(exc, MemoryError):
        return ("limit", "memory", line)
    if isinstance(exc, RecursionError):
        return ("limit", "recursion", line)
    if all(isinstance(a, (str, int, type(None))) for a in exc.args):
        args = tuple(a[:MAX_MESSAGE] if isinstance(a, str) else a for a in exc.args)
        if any(isinstance(a, int) and a.bit_length() > 64 for a in args):
            args = (str(exc)[:MAX_MESSAGE],)
    else:
        args = (str(exc)[:MAX_MESSAGE],)
    name = getattr(exc, "name", None)
    return ("error", type(exc).__name__, args, line, getattr(exc, "helper_index", None),
            name[:200] if isinstance(name, str) else None)


def _run_job(channel, job):
    """Run one job; returns True when the worker should exit (it ran out of memory)."""
    budget = _Budget(job["iterations"], job["time"])
    scope = {"__builtins__": sandbox_builtins(), "_getattr_": safer_getattr,
             "_getitem_": default_guarded_getitem, "_getiter_": budget.getiter,
             "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
             "_unpack_sequence_": guarded_unpack_sequence, "_write_": full_write_guard,
             "_inplacevar_": _inplacevar, "_tick_": budget.tick}
    scope.update(LOCAL_HELPERS)
    scope.update({name: channel.remote(name) for name in job["remote"]})
    sandbox_names = set(scope)
    external, context, mode = job["external"], job["context"], job["mode"]
    try:
        code = compile_script(job["source"]) if mode == "exec" else \
            compile_expression(job["source"])
    except BaseException as exc:  # noqa: BLE001 - compile errors go back as they are
        channel.send(_error_reply(exc, budget))
        return False
    _set_limits(job)
    try:
        if mode == "eval":
            names = dict(scope)
            names.update(external)
            names.update(context)
            value = eval(code, names)  # noqa: S307 - RestrictedPython code
        else:
            context.update(scope)
            context.update(external)
            exec(code, context)  # noqa: S102 - RestrictedPython code
            for key in list(context):
                if key in sandbox_names or key in external or callable(context[key]):
                    context.pop(key)
            value = context
        if budget.exceeded:
            raise _Limit(budget.exceeded)
        reply = _pickle_result(value, int(job["result_mb"] * MB))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        try:
            reply = _error_reply(exc, budget)
        except BaseException:  # noqa: BLE001 - e.g. out of memory again while describing it
            reply = ("limit", "memory" if isinstance(exc, MemoryError) else "time", 0)
    finally:
        _reset_limits()
    if isinstance(reply, tuple):
        channel.send(reply)
        return reply[:2] == ("limit", "memory")
    _write_all(channel.wfd, _HEADER.pack(len(reply)) + reply)
    return False


def worker_main():
    """The sandbox worker's loop: one job at a time from stdin, replies on the real stdout."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    out = os.dup(1)
    os.dup2(2, 1)  # a stray write to stdout must not corrupt the replies
    sys.stdout = sys.stderr
    channel = _Channel(0, out)
    while True:
        try:
            message = channel.recv()
        except (_WorkerGone, EOFError, struct.error):
            return
        if message[0] == "run":
            if _run_job(channel, message[1]):
                return  # after running out of memory, start afresh
