"""Process versions (list, diff, download) and batch migration of running instances."""
import io
import json
import shutil
import zipfile

import pytest

from accounts.operations import create_user
from audit.models import AuditEvent
from tests.conftest import HANDOVER_DATA, PASSWORD, ROOT, login
from workflows import migration
from workflows.definitions import deploy_xml
from workflows.errors import InvalidData, NotAllowed
from workflows.inbox import open_tasks_of_case
from workflows.models import FormDefinition, HumanTask, ProcessInstance
from workflows.tasks import claim_task, complete_task
from workflows.versions import diff_versions, get_version, version_rows

HANDOVER = (ROOT / "bpmn" / "handover.bpmn").read_bytes()
NEW_FIELD = {"name": "archive_box", "type": "text", "required": False, "max_length": 40,
             "label": {"en": "Archive box number", "zh_CN": "档案盒编号"}}


def deploy_v2(tmp_path):
    """v2: the first task renamed, and its form gains a field."""
    forms = tmp_path / "forms"
    shutil.copytree(ROOT / "bpmn" / "forms", forms)
    spec = json.loads((forms / "handover_file.json").read_text(encoding="utf-8"))
    spec["fields"].append(NEW_FIELD)
    (forms / "handover_file.json").write_text(json.dumps(spec, ensure_ascii=False),
                                              encoding="utf-8")
    xml = HANDOVER.replace(b'name="Hand over the loan file"', b'name="Hand over the file"')
    return deploy_xml(xml, "handover.bpmn", forms, comment="rename, archive box")[0]


def handover_instance(loan):
    return next(i for i in ProcessInstance.query.filter_by(case_id=loan.id)
                if i.definition.process_key == "handover")


@pytest.fixture
def client(app):
    return app.test_client()


def only_task(loan):
    (task,) = open_tasks_of_case(loan.id)
    return task


@pytest.fixture
def setup(new_loan, users, tmp_path):
    """Two loans on v1: A waits at handover_file, B has completed it and waits at check_file."""
    loan_a, loan_b = new_loan("L-A"), new_loan("L-B")
    complete_task(only_task(loan_b).id, users["am"], data=HANDOVER_DATA)
    v1 = get_version("handover", 1)
    v2 = deploy_v2(tmp_path)
    from extensions import db
    db.session.commit()
    owner = create_user("owner", PASSWORD, ["process_owner"])
    return {"a": loan_a, "b": loan_b, "v1": v1, "v2": v2, "owner": owner, **users}


def test_version_rows_count_running_instances(setup):
    rows = version_rows("handover")
    assert [(r["version"], r["running"]) for r in rows] == [(2, 0), (1, 2)]
    assert rows[0]["comment"] == "rename, archive box"


def test_diff_names_the_renamed_task_and_the_new_field(setup):
    diff = diff_versions(setup["v1"], setup["v2"])
    assert not diff["elements"]["added"] and not diff["elements"]["removed"]
    (changed,) = diff["elements"]["changed"]
    assert changed["id"] == "handover_file"
    assert changed["changes"] == [{"property": "name", "before": "Hand over the loan file",
                                   "after": "Hand over the file"}]
    (form,) = diff["forms"]
    assert (form["key"], form["before"], form["after"]) == ("handover_file", 1, 2)
    assert [f["name"] for f in form["added"]] == ["archive_box"]
    assert not form["removed"] and not form["changed"]


def test_diff_reports_properties_conditions_and_flows(app, deployed):
    v1 = get_version("handover", 1)
    xml = (HANDOVER.replace(b'name="dueInWorkingDays" value="3"',
                            b'name="dueInWorkingDays" value="5"')
           .replace(b'check_result == "complete"', b'check_result == "ok"'))
    v2 = deploy_xml(xml, "handover.bpmn", ROOT / "bpmn" / "forms")[0]
    diff = diff_versions(v1, v2)
    (task,) = diff["elements"]["changed"]
    assert task["changes"] == [{"property": "property:dueInWorkingDays", "before": "3",
                                "after": "5"}]
    (flow,) = diff["flows"]["changed"]
    assert flow["id"] == "flow_complete" and flow["changes"][0]["property"] == "condition"
    assert diff["forms"] == []


def test_preview_tells_who_can_move_and_why_not(setup):
    rows = {r["case_id"]: r for r in migration.preview(setup["v2"])}
    a, b = rows[setup["a"].id], rows[setup["b"].id]
    assert a["can_move"] and a["reasons"] == [] and a["version"] == 1
    assert not b["can_move"]
    (reason,) = b["reasons"]
    assert reason["code"] == "done_changed" and "COMPLETED" in reason["text"]
    assert "Hand over the loan file" in reason["text"] and "name" in reason["changes"]


def test_migrate_batch_moves_one_refuses_the_other(setup):
    a_inst, b_inst = handover_instance(setup["a"]), handover_instance(setup["b"])
    b_state, b_lock = b_inst.state_json, b_inst.lock_version
    task_a = only_task(setup["a"])
    claim_task(task_a.id, setup["am"])
    with pytest.raises(InvalidData):
        migration.migrate([a_inst.id], setup["v2"], setup["owner"], "  ")
    report = migration.migrate([b_inst.id, a_inst.id], setup["v2"], setup["owner"],
                               "new archive box field")
    by_id = {r["instance_id"]: r for r in report}
    assert by_id[a_inst.id]["migrated"] and not by_id[b_inst.id]["migrated"]
    assert by_id[b_inst.id]["reasons"][0]["code"] == "done_changed"
    a_inst, b_inst = handover_instance(setup["a"]), handover_instance(setup["b"])
    assert a_inst.definition_id == setup["v2"].id
    assert b_inst.definition_id == setup["v1"].id
    assert (b_inst.state_json, b_inst.lock_version) == (b_state, b_lock)
    # The open task keeps its row and its claim, and now shows the new form version.
    moved = only_task(setup["a"])
    assert moved.id == task_a.id and moved.claimed_by_id == setup["am"].id
    assert moved.name == "Hand over the file"
    form = FormDefinition.query.get(moved.form_definition_id)
    assert form.version == 2 and "archive_box" in [f["name"] for f in form.spec["fields"]]
    # …and the migrated instance runs on.
    complete_task(moved.id, setup["am"], data=dict(HANDOVER_DATA, archive_box="B-7"))
    assert only_task(setup["a"]).bpmn_id == "check_file"
    events = {e.action: e for e in AuditEvent.query.filter(AuditEvent.action.in_(
        ["process.migrated", "process.migration_refused"]))}
    assert events["process.migrated"].instance_id == a_inst.id
    assert events["process.migrated"].data["from_version"] == 1
    assert events["process.migrated"].data["to_version"] == 2
    assert events["process.migrated"].data["comment"] == "new archive box field"
    assert events["process.migration_refused"].instance_id == b_inst.id
    assert "COMPLETED" in events["process.migration_refused"].data["reasons"][0]
    assert events["process.migrated"].actor_id == setup["owner"].id
    # Nothing left to move for A: a second run refuses it as already on this version.
    (again,) = migration.migrate([a_inst.id], setup["v2"], setup["owner"], "again")
    assert again["reasons"][0]["code"] == "same_version"


def test_versions_pages_downloads_and_diff(setup, client):
    login(client, "owner")
    page = client.get("/studio/processes/handover/versions")
    assert page.status_code == 200 and "rename, archive box" in page.text
    diff = client.get("/studio/processes/handover/diff?from=1&to=2")
    assert diff.status_code == 200
    assert "Hand over the file" in diff.text and "archive_box" in diff.text
    bpmn = client.get("/studio/processes/handover/versions/1/download")
    assert bpmn.status_code == 200 and bpmn.data == HANDOVER
    assert "attachment" in bpmn.headers["Content-Disposition"]
    forms = client.get("/studio/processes/handover/versions/2/forms.json").get_json()
    assert "archive_box" in [f["name"] for f in forms["handover_file"]["spec"]["fields"]]
    bundle = client.get("/studio/processes/handover/versions/2/download.zip")
    names = zipfile.ZipFile(io.BytesIO(bundle.data)).namelist()
    assert "handover.bpmn" in names and "forms/handover_file.json" in names
    assert client.get("/studio/processes/handover/versions/9/download").status_code == 404


def test_migrate_pages(setup, client):
    a_inst, b_inst = handover_instance(setup["a"]), handover_instance(setup["b"])
    login(client, "owner")
    page = client.get("/studio/processes/handover/versions/2/migrate")
    assert page.status_code == 200
    assert f'value="{a_inst.id}"' in page.text and "L-B" in page.text
    missing = client.post("/studio/processes/handover/versions/2/migrate",
                          data={"instance_id": [str(a_inst.id)], "comment": ""})
    assert missing.status_code == 400
    assert handover_instance(setup["a"]).definition_id == setup["v1"].id
    done = client.post("/studio/processes/handover/versions/2/migrate",
                       data={"instance_id": [str(a_inst.id), str(b_inst.id)],
                             "comment": "batch"})
    assert done.status_code == 200
    assert "L-A" in done.text and "L-B" in done.text
    assert handover_instance(setup["a"]).definition_id == setup["v2"].id
    assert handover_instance(setup["b"]).definition_id == setup["v1"].id


def test_only_process_owners(setup, client):
    a_inst = handover_instance(setup["a"])
    login(client, "plo")
    assert client.get("/studio/processes/handover/versions").status_code == 403
    denied = client.post("/studio/processes/handover/versions/2/migrate",
                         data={"instance_id": [str(a_inst.id)], "comment": "x"})
    assert denied.status_code == 403
    assert handover_instance(setup["a"]).definition_id == setup["v1"].id
    assert AuditEvent.query.filter_by(action="permission.denied").count() == 2


def test_waiting_timers_keep_their_deadline(new_loan, users):
    """Instances waiting at a timer move without their deadline being recomputed."""
    from monitoring.reminders import schedule_reminders
    from extensions import db
    loan = new_loan("L-T")
    schedule_reminders(loan)
    db.session.commit()
    waiting = [i for i in ProcessInstance.query.filter_by(case_id=loan.id, status="running")
               if i.definition.process_key == "reminders"]
    assert waiting and all(i.next_timer_at for i in waiting)
    before = {i.id: i.next_timer_at for i in waiting}
    xml = (ROOT / "bpmn" / "reminders.bpmn").read_bytes().replace(
        b'name="Remind the borrower"', b'name="Call the borrower"')
    v2 = deploy_xml(xml, "reminders.bpmn", ROOT / "bpmn" / "forms")[0]
    db.session.commit()
    assert all(r["can_move"] for r in migration.preview(v2))
    with pytest.raises(NotAllowed):
        migration.migrate(list(before), v2, users["admin"], "clearer name")
    owner = create_user("owner", PASSWORD, ["process_owner"])
    report = migration.migrate(list(before), v2, owner, "clearer name")
    assert all(r["migrated"] for r in report), report
    for instance_id, deadline in before.items():
        instance = db.session.get(ProcessInstance, instance_id)
        assert instance.definition_id == v2.id
        assert instance.next_timer_at == deadline


def test_removed_step_and_changed_field_in_preview_diff_and_pages(new_loan, users, tmp_path,
                                                                  client):
    from extensions import db
    loan_a, loan_b = new_loan("L-A"), new_loan("L-B")
    complete_task(only_task(loan_b).id, users["am"], data=HANDOVER_DATA)
    v1 = get_version("handover", 1)
    forms = tmp_path / "forms"
    shutil.copytree(ROOT / "bpmn" / "forms", forms)
    spec = json.loads((forms / "handover_check.json").read_text(encoding="utf-8"))
    spec["fields"][2]["required"] = True
    spec["fields"][2]["label"]["en"] = "Remarks of the check"
    spec["fields"][0]["choices"].pop()
    (forms / "handover_check.json").write_text(json.dumps(spec, ensure_ascii=False),
                                               encoding="utf-8")
    v2 = deploy_xml(HANDOVER.replace(b"check_file", b"verify_file"), "handover.bpmn", forms)[0]
    db.session.commit()
    diff = diff_versions(v1, v2)
    assert [e["id"] for e in diff["elements"]["added"]] == ["verify_file"]
    assert [e["id"] for e in diff["elements"]["removed"]] == ["check_file"]
    assert {f["id"] for f in diff["flows"]["changed"]} == {"flow_to_check", "flow_to_gateway"}
    (form,) = diff["forms"]
    (field,) = [f for f in form["changed"] if f["name"] == "check_note"]
    assert {c["property"] for c in field["changes"]} == {"label", "required"}
    assert [f["name"] for f in form["changed"]] == ["check_result", "check_note"]
    rows = {r["case_id"]: r for r in migration.preview(v2)}
    # B waits at check_file, which is gone; A completed nothing that changed.
    assert rows[loan_a.id]["can_move"], rows[loan_a.id]
    assert not rows[loan_b.id]["can_move"]
    codes = {r["code"] for r in rows[loan_b.id]["reasons"]}
    assert codes & {"open_removed", "done_changed"}, rows[loan_b.id]["reasons"]
    create_user("owner", PASSWORD, ["process_owner"])
    login(client, "owner")
    page = client.get("/studio/processes/handover/diff?from=1&to=2")
    assert page.status_code == 200
    assert "verify_file" in page.text and "Remarks of the check" in page.text
    preview = client.get("/studio/processes/handover/versions/2/migrate")
    assert preview.status_code == 200 and "L-B" in preview.text
    client.post("/language/zh_CN", data={"next": "/"})
    assert client.get("/studio/processes/handover/versions/2/migrate").status_code == 200
    assert client.get("/studio/processes/handover/diff?from=2&to=1").status_code == 200
    assert client.get("/studio/processes/handover/versions").status_code == 200


def test_one_failing_instance_leaves_the_others_alone(new_loan, users, tmp_path, monkeypatch):
    from extensions import db
    loan_a, loan_c, loan_d = new_loan("L-A"), new_loan("L-C"), new_loan("L-D")
    v2 = deploy_v2(tmp_path)
    db.session.commit()
    owner = create_user("owner", PASSWORD, ["process_owner"])
    ids = [handover_instance(loan).id for loan in (loan_a, loan_c, loan_d)]
    c_state = handover_instance(loan_c).state_json
    c_task = only_task(loan_c)
    c_before = (c_task.id, c_task.name, c_task.form_definition_id)
    real = migration._refresh_open_rows

    def broken(instance, workflow, target):
        real(instance, workflow, target)  # the failure comes after rows and state changed
        if instance.id == ids[1]:
            raise RuntimeError("disk on fire")
    monkeypatch.setattr(migration, "_refresh_open_rows", broken)
    report = migration.migrate(ids, v2, owner, "batch")
    assert [r["migrated"] for r in report] == [True, False, True]
    assert report[1]["reasons"][0]["code"] == "error"
    c = handover_instance(loan_c)
    assert (c.definition_id, c.state_json) == (get_version("handover", 1).id, c_state)
    row = HumanTask.query.get(c_before[0])
    assert (row.name, row.form_definition_id) == c_before[1:]
    assert row.name == "Hand over the loan file"
    actions = [(e.action, e.instance_id) for e in AuditEvent.query.filter(
        AuditEvent.action.like("process.migra%")).order_by(AuditEvent.id)]
    assert actions == [("process.migrated", ids[0]), ("process.migration_refused", ids[1]),
                       ("process.migrated", ids[2])]


def test_open_task_follows_changed_four_eyes_and_priority(new_loan, users):
    from extensions import db
    from workflows.models import HumanTaskExclusion
    loan = new_loan("L-E", manager="dual")
    complete_task(only_task(loan).id, users["dual"], data=HANDOVER_DATA)
    check = only_task(loan)
    assert HumanTaskExclusion.query.filter_by(task_id=check.id).count() == 1
    xml = HANDOVER.replace(
        b'<spiffworkflow:property name="formKey" value="handover_check" />\n'
        b'          <spiffworkflow:property name="notSameUserAs" value="handover_file" />',
        b'<spiffworkflow:property name="formKey" value="handover_check" />\n'
        b'          <spiffworkflow:property name="priority" value="high" />')
    assert xml != HANDOVER
    v2 = deploy_xml(xml, "handover.bpmn", ROOT / "bpmn" / "forms")[0]
    db.session.commit()
    (row,) = migration.preview(v2)
    assert row["can_move"], row
    owner = create_user("owner", PASSWORD, ["process_owner"])
    (result,) = migration.migrate([row["instance_id"]], v2, owner, "no four eyes")
    assert result["migrated"] and result["waiting_at"] == ["Check the loan file"]
    moved = only_task(loan)
    assert moved.id == check.id and moved.priority == 1
    assert HumanTaskExclusion.query.filter_by(task_id=check.id).count() == 0
    complete_task(moved.id, users["dual"], data={"check_result": "complete"})
    assert only_task(loan).bpmn_id == "register_loan"
