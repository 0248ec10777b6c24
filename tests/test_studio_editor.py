"""The process studio editor: pages and JSON endpoints (save, validate, deploy, form preview)."""
import json
import re

import pytest

from accounts.operations import create_user
from audit.models import AuditEvent
from extensions import db
from tests.conftest import ROOT, PASSWORD, login
from workflows.definitions import latest_definition
from workflows.models import FormDefinition, ProcessDefinition, ProcessDraft

HANDOVER = (ROOT / "bpmn" / "handover.bpmn").read_text(encoding="utf-8")
CHECK_FORM = json.loads((ROOT / "bpmn" / "forms" / "handover_check.json").read_text("utf-8"))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def owner(app, users):
    return create_user("owner", PASSWORD, ["process_owner"])


@pytest.fixture
def owner_client(client, owner, deployed):
    login(client, "owner")
    return client


def open_draft(client, key="handover"):
    response = client.get(f"/studio/processes/{key}/edit")
    assert response.status_code == 302
    found = re.search(r"/studio/drafts/(\d+)/edit$", response.headers["Location"])
    assert found, response.headers["Location"]
    return int(found.group(1))


def versions(key="handover"):
    return [d.version for d in ProcessDefinition.query.filter_by(process_key=key)
            .order_by(ProcessDefinition.version)]


def test_every_route_is_for_process_owners_only(client, users, deployed):
    draft = ProcessDraft(process_key="handover", bpmn_xml=HANDOVER, forms={})
    db.session.add(draft)
    db.session.commit()
    routes = [("get", "/studio/"), ("get", "/studio/processes/handover/edit"),
              ("post", "/studio/processes/handover/drafts"),
              ("get", f"/studio/drafts/{draft.id}/edit"), ("post", f"/studio/drafts/{draft.id}"),
              ("post", f"/studio/drafts/{draft.id}/validate"),
              ("post", f"/studio/drafts/{draft.id}/deploy"), ("post", "/studio/forms/preview")]
    for method, url in routes:  # anonymous: to the login page
        assert getattr(client, method)(url, json={}).status_code == 302, url
    login(client, "admin")
    for method, url in routes:
        response = getattr(client, method)(url, json={"xml": HANDOVER, "comment": "x",
                                                  "spec": CHECK_FORM})
        assert response.status_code == 403, url
    assert versions() == [1]
    assert ProcessDraft.query.count() == 1


def test_index_lists_processes_with_links(owner_client):
    page = owner_client.get("/studio/").get_data(as_text=True)
    assert "/studio/processes/handover/edit" in page
    assert "/studio/processes/handover/versions" in page
    assert 'action="/studio/processes/handover/drafts"' in page
    assert 'href="/studio/"' in page  # the nav link


def test_opening_a_process_makes_a_draft_from_its_latest_version(owner_client, owner):
    draft_id = open_draft(owner_client)
    draft = db.session.get(ProcessDraft, draft_id)
    definition = latest_definition("handover")
    assert (draft.process_key, draft.based_on_id, draft.updated_by_id) == (
        "handover", definition.id, owner.id)
    assert draft.bpmn_xml == definition.bpmn_xml
    assert set(draft.forms) == {"handover_file", "handover_check", "handover_register"}
    assert draft.forms["handover_check"] == CHECK_FORM
    # Opening again returns the same draft; "new draft" makes another.
    assert open_draft(owner_client) == draft_id
    response = owner_client.post("/studio/processes/handover/drafts")
    assert response.status_code == 302 and ProcessDraft.query.count() == 2

    page = owner_client.get(f"/studio/drafts/{draft_id}/edit").get_data(as_text=True)
    assert "bpmn-modeler.production.min.js" in page and "studio.js" in page
    config = json.loads(re.search(r'<script type="application/json" id="studio-config">(.*?)'
                                  r'</script>', page, re.S).group(1))
    assert config["xml"] == definition.bpmn_xml
    assert "post_loan_officer" in config["roles"]
    assert "handover_check" in config["knownForms"]
    assert config["urls"]["deploy"] == f"/studio/drafts/{draft_id}/deploy"
    assert owner_client.get("/studio/processes/nope/edit").status_code == 404
    assert owner_client.get("/studio/drafts/999999/edit").status_code == 404


def test_save_validates_and_stores_the_draft(owner_client, owner):
    draft_id = open_draft(owner_client)
    xml = HANDOVER.replace('name="Check the loan file"', 'name="Check the file"')
    forms = {"handover_check": CHECK_FORM}
    response = owner_client.post(f"/studio/drafts/{draft_id}", json={"xml": xml, "forms": forms})
    assert response.status_code == 200
    assert response.json["ok"] is True and response.json["problems"] == []
    draft = db.session.get(ProcessDraft, draft_id)
    assert draft.bpmn_xml == xml and draft.forms == forms
    saved = AuditEvent.query.filter_by(action="draft.saved").one()
    assert saved.actor_id == owner.id and saved.data["draft"] == draft_id
    assert versions() == [1]

    response = owner_client.post(f"/studio/drafts/{draft_id}/validate", json={})
    assert response.json == {"ok": True, "problems": [], "warnings": []}

    bad = owner_client.post(f"/studio/drafts/{draft_id}", json={"xml": xml, "forms": []})
    assert bad.status_code == 400 and bad.json["ok"] is False


def test_a_mistake_returns_problems_with_element_ids_and_deploys_nothing(owner_client):
    draft_id = open_draft(owner_client)
    xml = HANDOVER.replace('<spiffworkflow:property name="formKey" value="handover_check" />',
                           '<spiffworkflow:property name="formKey" value="no_such_form" />')
    xml = xml.replace('<spiffworkflow:property name="dueInWorkingDays" value="3" />',
                      '<spiffworkflow:property name="dueInWorkingDays" value="soon" />')
    # Saving is allowed with problems, and reports them.
    saved = owner_client.post(f"/studio/drafts/{draft_id}", json={"xml": xml, "forms": {}})
    assert saved.status_code == 200 and saved.json["ok"] is True
    assert {p["element_id"] for p in saved.json["problems"]} >= {"check_file", "register_loan"}

    checked = owner_client.post(f"/studio/drafts/{draft_id}/validate", json={"xml": xml})
    problems = checked.json["problems"]
    assert checked.json["ok"] is False and len(problems) >= 2  # all at once
    assert {p["element_id"] for p in problems} >= {"check_file", "register_loan"}
    assert all(p["message"] for p in problems)
    assert any("no_such_form" in p["message"] for p in problems)

    response = owner_client.post(f"/studio/drafts/{draft_id}/deploy",
                                 json={"xml": xml, "forms": {}, "comment": "try"})
    assert response.status_code == 422 and response.json["ok"] is False
    assert {p["element_id"] for p in response.json["problems"]} >= {"check_file", "register_loan"}
    assert versions() == [1]
    assert db.session.get(ProcessDraft, draft_id) is not None

    broken = owner_client.post(f"/studio/drafts/{draft_id}/validate", json={"xml": "<nope"})
    assert broken.json["ok"] is False and broken.json["problems"]


def test_deploy_needs_a_comment(owner_client):
    draft_id = open_draft(owner_client)
    xml = HANDOVER.replace('name="Check the loan file"', 'name="Check the file"')
    for comment in (None, "", "   "):
        body = {"xml": xml} if comment is None else {"xml": xml, "comment": comment}
        response = owner_client.post(f"/studio/drafts/{draft_id}/deploy", json=body,
                                     headers={"Accept-Language": "en"})
        assert response.status_code == 400 and response.json["ok"] is False
        assert "comment" in response.json["error"]
    assert versions() == [1]


def test_a_changed_task_name_deploys_as_version_2(owner_client, owner):
    draft_id = open_draft(owner_client)
    draft = db.session.get(ProcessDraft, draft_id)
    xml = draft.bpmn_xml.replace('name="Check the loan file"', 'name="Check the whole file"')
    forms = dict(draft.forms)
    check = json.loads(json.dumps(forms["handover_check"]))
    check["fields"][2]["label"] = {"en": "Remarks of the checker", "zh_CN": "核对人意见"}
    forms["handover_check"] = check
    response = owner_client.post(f"/studio/drafts/{draft_id}/deploy",
                                 json={"xml": xml, "forms": forms, "comment": "clearer name"})
    assert response.status_code == 200, response.json
    assert response.json["ok"] is True and response.json["version"] == 2
    assert response.json["edit_url"] == "/studio/processes/handover/edit"
    assert versions() == [1, 2]
    v2 = latest_definition("handover")
    assert 'name="Check the whole file"' in v2.bpmn_xml
    assert v2.comment == "clearer name" and v2.deployed_by_id == owner.id
    # The draft's forms were deployed with it: a new version of the changed form only.
    form = db.session.get(FormDefinition, v2.forms["handover_check"])
    assert (form.version, form.spec["fields"][2]["label"]["en"]) == (2, "Remarks of the checker")
    v1 = ProcessDefinition.query.filter_by(process_key="handover", version=1).one()
    assert v2.forms["handover_file"] == v1.forms["handover_file"]
    assert AuditEvent.query.filter_by(action="process.deployed").count() >= 1
    # The deployed draft is gone; editing starts from version 2.
    assert db.session.get(ProcessDraft, draft_id) is None
    new_id = open_draft(owner_client)
    assert db.session.get(ProcessDraft, new_id).based_on_id == v2.id


def test_preview_renders_the_form_in_both_languages(owner_client):
    response = owner_client.post("/studio/forms/preview", json={"spec": CHECK_FORM})
    assert response.status_code == 200 and response.json["ok"] is True
    html = response.json["html"]
    assert "核对结果" in html["zh_CN"] and "Result of the check" not in html["zh_CN"]
    assert "Result of the check" in html["en"] and "核对结果" not in html["en"]
    assert "核对贷款档案" in html["zh_CN"] and "Check the loan file" in html["en"]
    assert 'name="check_result"' in html["en"] and "csrf_token" not in html["en"]

    bad = owner_client.post("/studio/forms/preview",
                            json={"spec": {"fields": [{"name": "x", "type": "nope"}]}})
    assert bad.json["ok"] is False and any("type" in p for p in bad.json["problems"])
    assert owner_client.post("/studio/forms/preview", json={"spec": 3}).status_code == 400


def test_problem_titles_are_translated(app):
    import re
    from pathlib import Path

    from studio.editor import PROBLEM_TITLES, problem_dict
    from workflows.validation import validate
    # Every code the checker can produce has a title in the user's language.
    workflows = Path(__file__).resolve().parent.parent / "workflows"
    codes = set()
    for name in ("validation.py", "code_checks.py", "traps.py"):
        source = (workflows / name).read_text(encoding="utf-8")
        codes |= set(re.findall(r'\.add\(\s*[^,()]+,\s*[^,()]+,\s*"([a-z_]+)"', source))
    # The engine's messages: (pattern, code, …) rows of engine_messages._KNOWN.
    source = (workflows / "engine_messages.py").read_text(encoding="utf-8")
    codes |= set(re.findall(r'\n\s+"([a-z][a-z_]+)",\s*(?:\n\s*)?N_\(', source))
    assert len(codes) > 30 and codes <= set(PROBLEM_TITLES), codes - set(PROBLEM_TITLES)
    problem = validate(b"not xml", {})[0]
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert problem_dict(problem)["title"] == "Not an XML file"


ZH_CHECK = 'value="核对贷款档案"'
FLAG = '<spiffworkflow:property name="warningsBlockDeploy" value="true" />'
ZH_PROCESS = '<spiffworkflow:property name="name_zh_CN" value="放款后交接" />'


def test_hygiene_warnings_come_back_beside_the_problems_and_do_not_block(owner_client,
                                                                         monkeypatch):
    import flask_babel
    draft_id = open_draft(owner_client)
    # A valid diagram with hygiene warnings: the check step has no Chinese name, and the
    # system step is unnamed.
    xml = HANDOVER.replace(ZH_CHECK, 'value=""').replace(
        'name="Apply the monitoring plan"', "")
    assert 'id="apply_monitoring_plan"' in xml
    checked = owner_client.post(f"/studio/drafts/{draft_id}/validate", json={"xml": xml},
                                headers={"Accept-Language": "zh-CN"})
    body = checked.json
    assert body["ok"] is True and body["problems"] == []
    warned = {(w["element_id"], w["code"]) for w in body["warnings"]}
    assert warned == {("check_file", "name_zh_missing"),
                      ("apply_monitoring_plan", "label_required")}
    unnamed = next(w for w in body["warnings"] if w["code"] == "label_required")
    assert unnamed["title"] and unnamed["message"] and unnamed["hint"]
    # Messages go through the catalog in the reader's language (Problem.localized).
    monkeypatch.setattr(flask_babel, "gettext", lambda text: f"«{text}»")
    again = owner_client.post(f"/studio/drafts/{draft_id}/validate", json={"xml": xml})
    unnamed = next(w for w in again.json["warnings"] if w["code"] == "label_required")
    assert unnamed["message"] == "«the step has no name, so the diagram and the case " \
        "histories show its id»"
    monkeypatch.undo()
    saved = owner_client.post(f"/studio/drafts/{draft_id}", json={"xml": xml})
    assert {(w["element_id"], w["code"]) for w in saved.json["warnings"]} == warned
    # The editor shows them on the elements as soon as it opens.
    page = owner_client.get(f"/studio/drafts/{draft_id}/edit").get_data(as_text=True)
    config = json.loads(re.search(r'<script type="application/json" id="studio-config">(.*?)'
                                  r'</script>', page, re.S).group(1))
    assert {(w["element_id"], w["code"]) for w in config["warnings"]} == warned
    assert config["blocking"] == []
    deployed = owner_client.post(f"/studio/drafts/{draft_id}/deploy",
                                 json={"xml": xml, "comment": "names later"})
    assert deployed.status_code == 200 and versions() == [1, 2]


def test_warnings_are_problems_when_the_process_owner_chose_so(owner_client):
    draft_id = open_draft(owner_client)
    xml = HANDOVER.replace(ZH_CHECK, 'value=""').replace(ZH_PROCESS, ZH_PROCESS + FLAG)
    checked = owner_client.post(f"/studio/drafts/{draft_id}/validate", json={"xml": xml},
                                headers={"Accept-Language": "en"})
    assert checked.json["ok"] is False and checked.json["warnings"] == []
    assert [(p["element_id"], p["code"]) for p in checked.json["problems"]] == [
        ("handover", "warnings_block_deploy"), ("check_file", "name_zh_missing")]
    assert checked.json["problems"][0]["title"] == "Warnings block the deploy of this process"
    refused = owner_client.post(f"/studio/drafts/{draft_id}/deploy",
                                json={"xml": xml, "comment": "try"})
    assert refused.status_code == 422
    assert {p["code"] for p in refused.json["problems"]} == {"warnings_block_deploy",
                                                            "name_zh_missing"}
    assert versions() == [1]
    # Fixed: the choice stays in the diagram and the deploy goes through.
    fixed = HANDOVER.replace(ZH_PROCESS, ZH_PROCESS + FLAG)
    done = owner_client.post(f"/studio/drafts/{draft_id}/deploy",
                             json={"xml": fixed, "comment": "strict from now on"})
    assert done.status_code == 200 and FLAG in latest_definition("handover").bpmn_xml


def test_every_hygiene_code_has_a_title():
    from studio.editor import PROBLEM_TITLES
    source = (ROOT / "workflows" / "hygiene.py").read_text(encoding="utf-8")
    codes = set(re.findall(r'warn\(\w+, "([a-z_]+)"', source)) | set(
        re.findall(r'Problem\.of\(\s*[^,]+,\s*[^,]+,\s*"([a-z_]+)"', source))
    assert len(codes) >= 15 and codes <= set(PROBLEM_TITLES), codes - set(PROBLEM_TITLES)
