"""An in-process fast path for plain expressions (gateway conditions and the like).

Every expression otherwise runs in a sandbox worker (workflows.limits): 0.1–1 ms of IPC per
evaluation, and a collection start evaluates several conditions. An expression made only of
`and`/`or`/`not`, comparisons, unary +/-, task-data names and small constants cannot loop,
allocate or reach an object, so it is evaluated here by a small evaluator over the whitelisted
AST (never eval()). Anything else, and anything whose outcome could differ from the sandbox's,
returns MISS and goes to the sandbox exactly as before:

- a name that is not a key of the task data (the sandbox would resolve it to a helper such as
  `today`, an external value or a builtin, or raise NameError);
- a task-data value that is not JSON-like (None, bool, int of at most 64 bits, float but NaN,
  str, and lists/tuples/dicts of these, bounded in size and depth), so comparisons have no
  side effects and cost at most linear time in bounded data;
- any exception while evaluating (TypeError, RecursionError, …): the sandbox raises the
  exception and message users have always seen;
- a value other than None, bool, a 64-bit int, a float or a short str: the sandbox hands back
  a copy and enforces SCRIPT_RESULT_LIMIT, the fast path would return the task data's object.

`is`/`is not` are taken only against None/True/False (identity of other values may differ
between this process and the sandbox's unpickled copies).

A script made only of assignments of such expressions to names (`stage = "dpd_4_7"`, one per
line) is run here the same way (run_script), each line on the data the lines before it left;
the caller still checks that the whole task data is what the sandbox would hand back.
"""
import ast
import functools

MISS = object()  # "not taken": evaluate in the sandbox

MAX_SOURCE = 2000
MAX_NODES = 200
MAX_INT = 10 ** 18
MAX_STR = 1000
MAX_SEQUENCE = 100  # elements of a literal tuple/list on the right of `in`
MAX_VALUE_ITEMS = 1000  # scalars and containers walked in one task-data value
MAX_VALUE_STR = 100_000
MAX_VALUE_DEPTH = 20  # nested comparisons stay far from the recursion limit
MAX_RESULT_STR = 1000

_COMPARE = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: lambda a, b: a is b, ast.IsNot: lambda a, b: a is not b,
}
_UNARY = {ast.Not: lambda a: not a, ast.USub: lambda a: -a, ast.UAdd: lambda a: +a}


class _NotPlain(Exception):
    pass


def _constant(node):
    if not isinstance(node, ast.Constant):
        raise _NotPlain
    value = node.value
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int) and abs(value) < MAX_INT:
        return value
    if isinstance(value, str) and len(value) <= MAX_STR:
        return value
    raise _NotPlain


def _singleton(node):
    return isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, bool))


def _build(node, names):
    """A closure evaluating `node` on the task data, or _NotPlain."""
    if isinstance(node, ast.Constant):
        value = _constant(node)
        return lambda data: value
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and \
            not node.id.startswith("_"):  # RestrictedPython refuses these anyway
        name = node.id
        names.add(name)
        return lambda data: data[name]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        apply, operand = _UNARY[type(node.op)], _build(node.operand, names)
        return lambda data: apply(operand(data))
    if isinstance(node, ast.BoolOp):
        parts = [_build(value, names) for value in node.values]
        if isinstance(node.op, ast.And):
            def both(data):
                for part in parts:
                    value = part(data)
                    if not value:
                        return value
                return value
            return both

        def either(data):
            for part in parts:
                value = part(data)
                if value:
                    return value
            return value
        return either
    if isinstance(node, ast.Compare):
        left, steps = _build(node.left, names), []
        previous = node.left
        for op, right in zip(node.ops, node.comparators):
            if type(op) not in _COMPARE:
                raise _NotPlain
            if isinstance(op, (ast.Is, ast.IsNot)) and not (_singleton(right) or
                                                            _singleton(previous)):
                raise _NotPlain
            if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.Tuple, ast.List)):
                if len(right.elts) > MAX_SEQUENCE:
                    raise _NotPlain
                items = tuple(_constant(item) for item in right.elts)
                steps.append((_COMPARE[type(op)], lambda data, items=items: items))
            else:
                steps.append((_COMPARE[type(op)], _build(right, names)))
            previous = right

        def compare(data):
            value = left(data)
            for apply, right in steps:  # a chain: each operand evaluated once, short-circuit
                other = right(data)
                result = apply(value, other)
                if not result:
                    return result
                value = other
            return result
        return compare
    raise _NotPlain


def _parse(source, mode):
    """The syntax tree of a short source (as RestrictedPython parses it), else None."""
    if not isinstance(source, str) or len(source) > MAX_SOURCE:
        return None
    try:
        tree = ast.parse(source, mode=mode)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    return tree if sum(1 for _ in ast.walk(tree)) <= MAX_NODES else None


def _compiled(node):
    """(evaluator, names) of a plain expression's node, else None."""
    names = set()
    try:
        evaluator = _build(node, names)
    except _NotPlain:
        return None
    return evaluator, frozenset(names)


@functools.lru_cache(maxsize=2048)
def plain(source):
    """(evaluator, names) for a plain expression, else None. Cached per source."""
    tree = _parse(source, "eval")
    return None if tree is None else _compiled(tree.body)


def _json_like(value):
    """Whether a task-data value is plain and small enough to compare in this process."""
    stack, seen = [(value, 0)], 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUE_ITEMS or depth > MAX_VALUE_DEPTH:
            return False
        kind = type(item)  # exact types: a subclass could compare with side effects
        if kind is float:
            # NaN: list comparisons shortcut on identity, which differs in the sandbox's copy
            if item != item:
                return False
        elif item is None or kind is bool:
            continue
        elif kind is int:
            if item.bit_length() > 64:
                return False
        elif kind is str:
            if len(item) > MAX_VALUE_STR:
                return False
        elif kind is list or kind is tuple:
            stack.extend((element, depth + 1) for element in item)
        elif kind is dict:
            stack.extend((key, depth + 1) for key in item)
            stack.extend((element, depth + 1) for element in item.values())
        else:
            return False
    return True


def _small_result(value):
    kind = type(value)
    if value is None or kind is bool or kind is float:
        return True
    if kind is int:
        return value.bit_length() <= 64
    return kind is str and len(value) <= MAX_RESULT_STR


def evaluate(source, context):
    """The expression's value on the task data `context`, or MISS (use the sandbox)."""
    compiled = plain(source)
    return MISS if compiled is None else _value(*compiled, context)


def _value(evaluator, names, data):
    """A plain expression's value on the data, or MISS (use the sandbox)."""
    for name in names:
        if name not in data or not _json_like(data[name]):
            return MISS
    try:
        value = evaluator(data)
    except Exception:  # noqa: BLE001 - the sandbox raises it with its usual message
        return MISS
    return value if _small_result(value) else MISS


@functools.lru_cache(maxsize=2048)
def plain_script(source):
    """[(name, (evaluator, names))] for a script of plain assignments, one `name = <plain
    expression>` per statement, else None. Cached per source."""
    tree = _parse(source, "exec")
    if tree is None:
        return None
    steps = []
    for statement in tree.body:
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
                and not statement.targets[0].id.startswith("_")):
            return None
        compiled = _compiled(statement.value)
        if compiled is None:
            return None
        steps.append((statement.targets[0].id, compiled))
    return steps


def run_script(source, context, reserved):
    """The task data a plain script leaves (a new dict; `context` is not changed), or MISS
    (use the sandbox). `reserved`: the names the sandbox binds for itself (its helpers and
    guards), which it would drop from the data afterwards: a script or data naming one is
    left to it."""
    steps = plain_script(source)
    if steps is None or not reserved.isdisjoint(context):
        return MISS
    data = dict(context)
    for target, compiled in steps:
        value = MISS if target in reserved else _value(*compiled, data)
        if value is MISS:
            return MISS
        data[target] = value
    return data
