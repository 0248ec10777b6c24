"""The parent's side of the script sandbox (workflows.limits says what it guarantees): a
pool of worker processes (workflows.sandbox_worker) and `run`, which sends one evaluation to
a worker, answers the helpers it calls back and turns its reply into a value or an error."""
import atexit
import builtins
import io
import os
import pickle
import signal
import subprocess
import sys
import threading
import time

from workflows.limits import (CALL_FRAME_LIMIT, CODE_FILENAME, LOCAL_HELPERS, MB, ROOT,
                              ScriptError, ScriptLimitError, _recv_bytes, _send, _Timeout,
                              _TooLong, _WorkerGone, current_limits)

MAX_IDLE_WORKERS = 4

# ---------------------------------------------------------------- the pool (parent side)

_BOOT = ("import sys; sys.path.insert(0, {root!r}); "
         "from workflows.sandbox_worker import worker_main; worker_main()")

_SAFE_TYPES = {
    "builtins": {"dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray",
                 "int", "float", "complex", "bool", "range", "slice"},
    "datetime": {"date", "datetime", "time", "timedelta", "timezone"},
    "decimal": {"Decimal"},
    "uuid": {"UUID", "SafeUUID"},
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if name in _SAFE_TYPES.get(module, ()):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in script results")


def _safe_loads(data):
    return _SafeUnpickler(io.BytesIO(data)).load()


class _Worker:
    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT.format(root=str(ROOT))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
            start_new_session=True)
        self.wfd, self.rfd = self.process.stdin.fileno(), self.process.stdout.fileno()
        os.set_blocking(self.wfd, False)
        os.set_blocking(self.rfd, False)
        self.owner = os.getpid()

    def alive(self):
        return self.process.poll() is None

    def kill(self):
        try:
            self.process.kill()
        except OSError:
            pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def death_signal(self):
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return None
        return -code if code is not None and code < 0 else None


class _Pool:
    def __init__(self):
        self.lock, self.idle, self.pid = threading.Lock(), [], os.getpid()

    def acquire(self):
        with self.lock:
            if self.pid != os.getpid():  # forked (e.g. a preloading server): start afresh
                self.idle, self.pid = [], os.getpid()
            while self.idle:
                worker = self.idle.pop()
                if worker.alive():
                    return worker
                worker.kill()
        return _Worker()

    def release(self, worker):
        with self.lock:
            if worker.owner == os.getpid() and len(self.idle) < MAX_IDLE_WORKERS:
                self.idle.append(worker)
                return
        worker.kill()

    def shutdown(self):
        with self.lock:
            idle, self.idle = self.idle, []
        for worker in idle:
            worker.kill()


POOL = _Pool()
atexit.register(POOL.shutdown)


def _rebuild_error(reply, helper_errors):
    _, type_name, args, line, helper_index, name = reply
    if helper_index is not None and helper_index < len(helper_errors):
        exc = helper_errors[helper_index]
    else:
        cls = ScriptError if type_name == "ScriptError" else getattr(builtins, type_name, None)
        exc = None
        if isinstance(cls, type) and issubclass(cls, Exception):
            try:
                exc = cls(*args)
            except Exception:  # noqa: BLE001 - an odd signature: keep the text below
                exc = None
        if exc is None:
            exc = ScriptError(f"{type_name}: {args[0] if args else ''}")
        if name is not None and isinstance(exc, NameError):
            exc.name = name
    return exc, line


def _raise_at(exc, line):
    """Raise `exc` from a frame named like the sandboxed code, at its line, so SpiffWorkflow
    reports the failing line of a script as it does for code run in-process."""
    if line:
        code = compile("\n" * (line - 1) + "raise _exc_", CODE_FILENAME, "exec")
        exec(code, {"_exc_": exc})  # noqa: S102 - fixed code, re-raises exc
    raise exc


def run(mode, source, context, external=None, helpers=None, limits=None):
    """Run `source` ("eval": an expression, "exec": a script) on `context` in a sandbox
    worker. Returns the expression's value, or the context the script leaves (the caller
    replaces its dict with it). `helpers` maps the names of helpers that must run here (the
    database, the clock) to callables. Raises ScriptLimitError when over a limit, else the
    exception the code raised (rebuilt: builtin types keep their type)."""
    limits = limits or current_limits()
    helpers = helpers or {}
    what = "script" if mode == "exec" else "expression"
    job = {"mode": mode, "source": source, "context": context, "external": external or {},
           "remote": [name for name in helpers if name not in LOCAL_HELPERS],
           "time": limits.time, "memory_mb": limits.memory_mb,
           "iterations": limits.iterations, "result_mb": limits.result_mb}
    result_limit = int(limits.result_mb * MB) + 4096
    for attempt in (1, 2):
        worker = POOL.acquire()
        deadline = time.monotonic() + limits.deadline
        try:
            _send(worker.wfd, ("run", job), deadline)
        except _WorkerGone:
            worker.kill()
            if attempt == 2:
                raise ScriptError("the script sandbox could not be started") from None
            continue  # an idle worker that died: take another one
        except _Timeout:
            worker.kill()
            raise ScriptLimitError("time", limits.time, what) from None
        break
    helper_errors, keep = [], False
    try:
        while True:
            frame = _recv_bytes(worker.rfd, deadline, max(result_limit, CALL_FRAME_LIMIT))
            reply = _safe_loads(frame)
            kind = reply[0]
            if kind == "call":
                _, name, args, kwargs = reply
                if len(frame) > CALL_FRAME_LIMIT or name not in helpers:
                    raise ScriptLimitError("size", limits.result_mb, what)
                try:
                    answer = ("ok", helpers[name](*args, **kwargs))
                except Exception as exc:  # noqa: BLE001 - handed to the script to handle
                    helper_errors.append(exc)
                    base = next(c for c in type(exc).__mro__ if c.__module__ == "builtins")
                    answer = ("raise", type(exc).__name__, base.__name__, str(exc),
                              len(helper_errors) - 1)
                _send(worker.wfd, answer, deadline)
                continue
            if kind == "done":
                keep = True
                return reply[1]
            if kind == "limit":
                keep = reply[1] != "memory"
                limit = {"time": limits.time, "iterations": limits.iterations,
                         "memory": limits.memory_mb, "size": limits.result_mb,
                         "recursion": sys.getrecursionlimit()}[reply[1]]
                _raise_at(ScriptLimitError(reply[1], limit, what, reply[2] or None), reply[2])
            keep = True
            exc, line = _rebuild_error(reply, helper_errors)
            _raise_at(exc, line)
    except _Timeout:
        raise ScriptLimitError("time", limits.time, what) from None
    except _TooLong:
        raise ScriptLimitError("size", limits.result_mb, what) from None
    except pickle.UnpicklingError as exc:
        raise ScriptError(f"the {what} produced a value that cannot be stored: {exc}") \
            from None
    except _WorkerGone:
        if worker.death_signal() == signal.SIGXCPU:
            raise ScriptLimitError("time", limits.time, what) from None
        raise ScriptLimitError("crashed", limits.memory_mb, what) from None
    finally:
        if keep:
            POOL.release(worker)
        else:
            worker.kill()
