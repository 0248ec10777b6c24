"""Validation time of big diagrams (issue 15 item 1): target under 3 s each.

    python -m bench.validation [--quick]

Times `workflows.validation.validate` (every check, the engine's own parse included) on
generated diagrams — 1,000 and 2,000 exclusive gateways, 5,000 tasks side by side, a chain of
2,000 tasks in a row — and on each shipped bpmn/*.bpmn. No database: the deployed processes
are not looked at (deployed={}, the call library holds the shipped files). The generators
are also used by tests/test_validation_scale.py.
"""
import sys
import time

from bench.common import ROOT, Row, scale_arg, show

TARGET = "≤ 3"
HEAD = b'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="defs" targetNamespace="http://daihou.example/bench">
  <bpmn:process id="big" name="Big" isExecutable="true">
'''
TAIL = b"  </bpmn:process>\n</bpmn:definitions>\n"


def _flow(fid, source, target, condition=None):
    if condition is None:
        return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}" />\n'
    return (f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}">'
            f'<bpmn:conditionExpression>{condition}</bpmn:conditionExpression>'
            f'</bpmn:sequenceFlow>\n')


def _node(kind, nid, incoming, outgoing, extra=""):
    flows = "".join(f"<bpmn:incoming>{f}</bpmn:incoming>" for f in incoming) + \
        "".join(f"<bpmn:outgoing>{f}</bpmn:outgoing>" for f in outgoing)
    return f'<bpmn:{kind} id="{nid}"{extra}>{flows}</bpmn:{kind}>\n'


def _document(parts):
    return HEAD + "".join(parts).encode() + TAIL


def gateways(n):
    """start → parallel split → n exclusive gateways side by side, each with a conditional
    flow to an end event and a default flow to the parallel join → end. Every gateway is
    checked and all is valid (side by side: a chain of gateways is chain()'s case)."""
    parts = [_node("startEvent", "start", [], ["f_start"]),
             _flow("f_start", "start", "split"),
             _node("parallelGateway", "split", ["f_start"], [f"a{i}" for i in range(n)]),
             _node("parallelGateway", "join", [f"d{i}" for i in range(n)], ["f_end"]),
             _node("endEvent", "end", ["f_end"], []), _flow("f_end", "join", "end"),
             _node("endEvent", "early", [f"c{i}" for i in range(n)], [])]
    for i in range(n):
        parts.append(_node("exclusiveGateway", f"g{i}", [f"a{i}"], [f"c{i}", f"d{i}"],
                           f' default="d{i}"'))
        parts.append(_flow(f"a{i}", "split", f"g{i}"))
        parts.append(_flow(f"c{i}", f"g{i}", "early", f"x == {i}"))
        parts.append(_flow(f"d{i}", f"g{i}", "join"))
    return _document(parts)


def tasks(n):
    """start → parallel split → n script tasks side by side → parallel join → end."""
    parts = [_node("startEvent", "start", [], ["f_start"]),
             _flow("f_start", "start", "split"),
             _node("parallelGateway", "split", ["f_start"], [f"a{i}" for i in range(n)]),
             _node("parallelGateway", "join", [f"b{i}" for i in range(n)], ["f_end"]),
             _node("endEvent", "end", ["f_end"], []), _flow("f_end", "join", "end")]
    for i in range(n):
        parts.append(_node("scriptTask", f"t{i}", [f"a{i}"], [f"b{i}"],
                           ' scriptFormat="python"') .replace(
            "</bpmn:scriptTask>", f"<bpmn:script>x{i % 7} = {i}</bpmn:script></bpmn:scriptTask>"))
        parts.append(_flow(f"a{i}", "split", f"t{i}"))
        parts.append(_flow(f"b{i}", f"t{i}", "join"))
    return _document(parts)


def chain(n):
    """start → t1 → t2 → … → tn → end: n script tasks in a row."""
    parts = [_node("startEvent", "start", [], ["f0"])]
    for i in range(1, n + 1):
        parts.append(_node("scriptTask", f"t{i}", [f"f{i - 1}"], [f"f{i}"],
                           ' scriptFormat="python"').replace(
            "</bpmn:scriptTask>", "<bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>"))
        parts.append(_flow(f"f{i - 1}", "start" if i == 1 else f"t{i - 1}", f"t{i}"))
    parts.append(_node("endEvent", "end", [f"f{n}"], []))
    parts.append(_flow(f"f{n}", f"t{n}", "end"))
    return _document(parts)


def shipped():
    """[(xml, file name)] of bpmn/*.bpmn."""
    return [(p.read_bytes(), p.name) for p in sorted((ROOT / "bpmn").glob("*.bpmn"))]


def timed(xml, filename="big.bpmn", library=None):
    """(seconds, problems) of one validation."""
    from workflows.validation import CallLibrary, load_forms, validate
    forms = load_forms(ROOT / "bpmn" / "forms")
    start = time.perf_counter()
    problems = validate(xml, forms, filename, deployed={},
                        library=library if library is not None else CallLibrary())
    return time.perf_counter() - start, problems


def run(scale):
    from app import create_app
    from workflows.validation import CallLibrary
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    cases = [("1,000 gateways", gateways(1000)), ("2,000 gateways", gateways(2000)),
             ("5,000 tasks", tasks(5000)), ("chain of 2,000 tasks", chain(2000))]
    if scale == "quick":
        cases = cases[:1] + cases[2:3]
    rows = []
    with app.app_context():
        timed(gateways(3))  # imports the engine's parser (its schema) once, not measured
        for label, xml in cases:
            seconds, problems = timed(xml)
            note = f"{len(problems)} problem(s)" + (
                f": {problems[0].code} {problems[0].message[:60]}" if problems else "")
            rows.append(show(Row(f"validate {label} ({len(xml) // 1024} KiB)", seconds, "s",
                                 TARGET, note)))
        files = shipped()
        library = CallLibrary(files)
        total = 0.0
        for xml, name in files:
            seconds, problems = timed(xml, name, library)
            total += seconds
            print(f"    {name:<28} {seconds * 1000:8.1f} ms  {len(problems)} problem(s)",
                  flush=True)
        rows.append(show(Row(f"validate the {len(files)} shipped diagrams", total, "s")))
    return rows


if __name__ == "__main__":
    run(scale_arg(sys.argv[1:]))
