"""Conventions every shipped diagram keeps (issue 11 rule 14): people's lanes hold what people
do and decide; system work (service tasks, scripts, timers, messages, signals, calls) sits in
the lane named "system"; everything is drawn, so bpmn-js shows the whole process."""
from pathlib import Path

import pytest
from lxml import etree

BPMN_DIR = Path(__file__).resolve().parent.parent / "bpmn"
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}
SYSTEM_WORK = {"serviceTask", "scriptTask", "intermediateCatchEvent", "intermediateThrowEvent",
               "eventBasedGateway", "callActivity", "subProcess"}
DIAGRAMS = sorted(path.name for path in BPMN_DIR.glob("*.bpmn"))


def _kind(el):
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


@pytest.mark.parametrize("name", DIAGRAMS)
def test_rule_system_work_sits_outside_the_human_lanes(name):
    tree = etree.parse(str(BPMN_DIR / name))
    lane_of = {ref.text.strip(): ref.getparent().get("name")
               for ref in tree.iterfind(".//bpmn:flowNodeRef", NS)}
    for process in tree.iterfind("bpmn:process", NS):
        # Top-level flow nodes: what is inside a subprocess is drawn within it. Boundary
        # events are drawn on their host task, whatever lane lists them.
        for el in process:
            kind = _kind(el)
            if kind in SYSTEM_WORK:
                assert lane_of.get(el.get("id")) == "system", (name, el.get("id"), kind)
            elif kind == "userTask":
                assert lane_of.get(el.get("id")) not in (None, "system"), (name, el.get("id"))


@pytest.mark.parametrize("name", DIAGRAMS)
def test_every_element_and_flow_is_drawn(name):
    tree = etree.parse(str(BPMN_DIR / name))
    drawn = {s.get("bpmnElement") for s in tree.iterfind(".//bpmndi:BPMNShape", NS)} | {
        e.get("bpmnElement") for e in tree.iterfind(".//bpmndi:BPMNEdge", NS)}
    elements = {el.get("id") for process in tree.iterfind("bpmn:process", NS)
                for el in process.iter() if _kind(el) not in (
                    "laneSet", "lane", "flowNodeRef", "documentation", "extensionElements",
                    "incoming", "outgoing", "conditionExpression", "process", "")
                and el.get("id") and _kind(el.getparent()) in ("process", "subProcess")}
    assert elements <= drawn, sorted(elements - drawn)
