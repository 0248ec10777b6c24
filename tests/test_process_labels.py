"""Process and step names in both languages come from the BPMN (workflows/labels.py)."""
from pathlib import Path

from lxml import etree

from workflows.definitions import latest_definition
from workflows.labels import extract_labels, process_label, prettify, step_label

ROOT = Path(__file__).resolve().parent.parent
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NAMED = {"process", "userTask", "manualTask", "task", "serviceTask", "scriptTask",
         "callActivity", "subProcess", "startEvent", "endEvent", "intermediateCatchEvent",
         "intermediateThrowEvent", "boundaryEvent", "exclusiveGateway", "parallelGateway",
         "eventBasedGateway", "inclusiveGateway", "sequenceFlow"}


def test_every_named_element_of_the_shipped_diagrams_has_a_chinese_name():
    missing = []
    for path in sorted((ROOT / "bpmn").glob("*.bpmn")):
        labels = extract_labels(path.read_bytes())
        root = etree.parse(str(path)).getroot()
        for el in root.iter():
            if not isinstance(el.tag, str) or etree.QName(el).localname not in NAMED:
                continue
            if not el.get("name"):
                continue
            process = el if etree.QName(el).localname == "process" else next(
                p for p in el.iterancestors() if etree.QName(p).localname == "process")
            entry = labels[process.get("id")]
            pair = entry["process"] if el is process else entry["steps"].get(el.get("id"))
            if not pair or not pair["zh_CN"] or pair["en"] != el.get("name"):
                missing.append(f"{path.name}:{el.get('id')}")
    assert missing == []


def test_deploy_stores_the_labels_and_the_readers_pick_the_language(app, deployed):
    definition = latest_definition("handover")
    assert definition.labels["process"] == {"en": "Handover after disbursement",
                                            "zh_CN": "放款后交接"}
    assert definition.labels["steps"]["handover_file"]["zh_CN"] == "移交贷款档案"
    assert process_label("handover", "zh_CN") == "放款后交接"
    assert process_label("handover", "en") == "Handover after disbursement"
    assert step_label("handover", "check_file", "Check the loan file", "zh_CN") == "核对贷款档案"
    # The called process's steps are the caller's too (they run in its instances).
    collection = latest_definition("collection").labels["steps"]
    assert collection["send_demand_notice"]["zh_CN"] == "向保证人发送代偿催收函"


def test_fallbacks_never_show_a_raw_id(app, deployed):
    assert step_label("handover", "gone", "Old name", "zh_CN") == "Old name"
    assert step_label("handover", "gone_step", None, "zh_CN") == "Gone step"
    assert process_label("no_such_process", "zh_CN") == "No such process"
    assert prettify("dpd_8_30") == "Dpd 8 30"


def test_a_document_that_does_not_parse_has_no_labels():
    assert extract_labels(b"<not xml") == {}
    assert extract_labels("<bpmn:definitions xmlns:bpmn='%s'/>" % BPMN) == {}


def test_an_unnamed_user_task_is_refused_and_a_missing_chinese_name_only_warned(app):
    from workflows.validation import load_forms, validate, warnings
    xml = (ROOT / "bpmn" / "handover.bpmn").read_bytes()
    forms = load_forms(ROOT / "bpmn" / "forms")
    assert warnings(xml) == []
    unnamed = xml.replace(b'<bpmn:userTask id="check_file" name="Check the loan file">',
                          b'<bpmn:userTask id="check_file">')
    assert [p.code for p in validate(unnamed, forms) if p.code == "name_missing"] == \
        ["name_missing"]
    no_zh = xml.replace('value="核对贷款档案"'.encode(), b'value=""')
    assert [(p.element_id, p.code) for p in warnings(no_zh)] == [("check_file",
                                                                  "name_zh_missing")]
    assert [p for p in validate(no_zh, forms) if p.code.startswith("name")] == []


def test_the_studio_returns_warnings_beside_the_problems(app, deployed, users):
    from accounts.operations import create_user
    from tests.conftest import PASSWORD
    create_user("owner", PASSWORD, ["process_owner"])
    client = app.test_client()
    client.post("/login", data={"username": "owner", "password": PASSWORD})
    response = client.post("/studio/processes/handover/drafts")
    draft_id = int(response.headers["Location"].rstrip("/").split("/")[-2])
    xml = (ROOT / "bpmn" / "handover.bpmn").read_text(encoding="utf-8").replace(
        'value="放款后交接"', 'value=""')
    answer = client.post(f"/studio/drafts/{draft_id}/validate", json={"xml": xml, "forms": {}})
    body = answer.get_json()
    assert body["ok"] is True and body["problems"] == []
    assert [(w["element_id"], w["code"]) for w in body["warnings"]] == [
        ("handover", "name_zh_missing")]


def test_the_diagram_is_drawn_with_the_readers_names():
    from workflows.labels import localize_xml
    xml = (ROOT / "bpmn" / "handover.bpmn").read_text(encoding="utf-8")
    zh = localize_xml(xml, "zh_CN")
    assert 'name="移交贷款档案"' in zh and 'name="放款后交接"' in zh
    assert "Hand over the loan file" not in zh
    assert localize_xml(xml, "en") == xml


def test_the_migration_backfills_what_deploy_would_store():
    import importlib.util
    path = ROOT / "migrations" / "versions" / "0017_process_labels.py"
    spec = importlib.util.spec_from_file_location("migration_0017", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for bpmn in sorted((ROOT / "bpmn").glob("*.bpmn")):
        xml = bpmn.read_text(encoding="utf-8")
        for process_id, labels in extract_labels(xml).items():
            assert module._labels(xml, process_id) == labels
    assert module._labels("<broken", "handover") is None
