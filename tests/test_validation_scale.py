"""Big diagrams (issue 15 item 1): generated diagrams give the right problems, and the work
validation does grows linearly with the diagram. Speed itself is measured by bench/validation.py
(`make bench`), never asserted here: the count of lines run in workflows/ is."""
import sys
from collections import Counter

import pytest

from bench.validation import chain, gateways, tasks
from tests.conftest import ROOT
from workflows.validation import CallLibrary, Problem, load_forms, validate

FORMS = load_forms(ROOT / "bpmn" / "forms")


def check(xml):
    return validate(xml, FORMS, "big.bpmn", deployed={}, library=CallLibrary())


def lines_run(xml):
    """Counter of the lines of workflows/ code run by one validation, per file (a loop's lines
    count once per turn; lxml's C and the engine's code are not counted)."""
    counts, ours = Counter(), str(ROOT / "workflows")

    def local_trace(frame, event, _arg):
        if event == "line":
            counts[frame.f_code.co_filename] += 1
        return local_trace

    def trace(frame, _event, _arg):
        return local_trace if frame.f_code.co_filename.startswith(ours) else None

    sys.settrace(trace)
    try:
        check(xml)
    finally:
        sys.settrace(None)
    return counts


@pytest.mark.parametrize("make, n", [(gateways, 400), (tasks, 1000), (chain, 300)])
def test_generated_diagrams_are_valid(app, make, n):
    assert check(make(n)) == []


def test_every_gateway_without_a_default_is_reported(app):
    xml = gateways(300)
    for i in range(300):
        xml = xml.replace(f' default="d{i}"'.encode(), b"")
    problems = check(xml)
    assert sorted(p.element_id for p in problems) == sorted(f"g{i}" for i in range(300))
    assert {p.code for p in problems} == {"gateway_no_default"}
    assert "d7 have no condition" in next(p for p in problems if p.element_id == "g7").message


def test_schema_errors_on_a_big_diagram_name_their_elements(app):
    xml = tasks(500).replace(b'<bpmn:scriptTask id="t250"', b'<bpmn:scriptTask bogus="1" '
                             b'id="t250"').replace(b'<bpmn:scriptTask id="t499"',
                                                   b'<bpmn:scriptTask bogus="1" id="t499"')
    problems = check(xml)
    assert {(p.code, p.element_id) for p in problems} == {("bpmn_invalid", "t250"),
                                                         ("bpmn_invalid", "t499")}


def test_a_long_chain_is_a_list_of_problems_not_a_crash(app):
    problems = check(chain(2000))
    assert all(isinstance(p, Problem) for p in problems)
    assert not any("could not be checked" in p.message for p in problems)


@pytest.mark.parametrize("make", [gateways, tasks])
def test_work_grows_linearly(app, make):
    check(make(5))  # imports, the engine's schema: not counted
    small, large = lines_run(make(200)), lines_run(make(800))
    # Linear: four times the elements, about four times the lines (a scan of every flow per
    # gateway made it about 13 times).
    ratios = {f.rsplit("/", 1)[-1]: round(large[f] / small[f], 1) for f in large
              if small[f] >= 100}
    assert sum(large.values()) / sum(small.values()) < 4.5, ratios
    assert max(ratios.values()) < 5, ratios
