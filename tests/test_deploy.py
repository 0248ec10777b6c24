"""Deploying BPMN: versions by content, every problem reported, nothing half-deployed."""
import pytest

from tests.conftest import ROOT
from workflows.definitions import deploy_paths, deploy_xml
from workflows.errors import DeployError
from workflows.models import FormDefinition, ProcessDefinition

FORMS = ROOT / "bpmn" / "forms"
HANDOVER = (ROOT / "bpmn" / "handover.bpmn").read_bytes()


def test_same_content_same_version_and_change_bumps(app):
    first = deploy_paths([ROOT / "bpmn" / "handover.bpmn"], FORMS)[0]
    again = deploy_paths([ROOT / "bpmn" / "handover.bpmn"], FORMS)[0]
    assert (first.id, first.version) == (again.id, 1)
    changed = deploy_xml(HANDOVER.replace(b"Check the loan file", b"Check the file"),
                         "handover.bpmn", FORMS)[0]
    assert changed.version == 2
    assert ProcessDefinition.query.count() == 2
    assert FormDefinition.query.count() == 3  # forms unchanged: not duplicated


def broken(old, new):
    return HANDOVER.replace(old, new)


@pytest.mark.parametrize("xml, expected", [
    (b"not xml at all", "handover.bpmn"),
    (broken(b'name="post_loan_officer"', b'name="janitor"'), "lane 'janitor' is not a role"),
    (broken(b'value="handover_check"', b'value="no_such_form"'), "form 'no_such_form' not found"),
    (broken(b'check_result == "complete"', b'check_result ==== 1'), "does not compile"),
    (broken(b'check_result == "complete"', b'check_result.__class__'), "forbidden construct"),
    (broken(b'name="dueInWorkingDays" value="2"', b'name="dueInWorkingDays" value="two"'),
     "dueInWorkingDays"),
    (broken(b'id="set_monitoring_plan"', b'id="launch_rockets"'),
     "service operation 'launch_rockets' does not exist"),
])
def test_broken_definitions_are_refused(app, xml, expected):
    with pytest.raises(DeployError) as err:
        deploy_xml(xml, "handover.bpmn", FORMS)
    assert any(expected in str(p) for p in err.value.problems), err.value.problems
    assert expected in str(err.value)  # the message lists every problem as text
    assert ProcessDefinition.query.count() == 0


def test_all_problems_listed_at_once(app):
    xml = broken(b'name="post_loan_officer"', b'name="janitor"').replace(
        b'value="handover_check"', b'value="no_such_form"')
    with pytest.raises(DeployError) as err:
        deploy_xml(xml, "handover.bpmn", FORMS)
    assert len(err.value.problems) >= 2
    assert {p.code for p in err.value.problems} >= {"unknown_lane", "unknown_form"}


def test_draft_forms_replace_the_forms_directory(app):
    """The studio deploys a draft with its in-memory form specs instead of bpmn/forms/."""
    import json
    forms = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in FORMS.glob("*.json")}
    with pytest.raises(DeployError) as err:
        deploy_xml(HANDOVER, "handover.bpmn", None, forms={})
    assert {p.code for p in err.value.problems} == {"unknown_form"}
    first = deploy_xml(HANDOVER, "handover.bpmn", None, forms=forms)[0]
    assert deploy_xml(HANDOVER, "handover.bpmn", FORMS)[0].id == first.id  # same content
    forms["handover_check"] = dict(forms["handover_check"], title="changed")
    assert deploy_xml(HANDOVER, "handover.bpmn", None, forms=forms)[0].version == 2


def test_process_id_belongs_to_its_file(app):
    deploy_xml(HANDOVER, "handover.bpmn", FORMS)
    with pytest.raises(DeployError) as err:
        deploy_xml(HANDOVER.replace(b"Check the loan file", b"Check"), "copy.bpmn", FORMS)
    assert [p.code for p in err.value.problems] == ["process_id_collision"]
    assert "already belongs to handover.bpmn" in str(err.value)
    assert ProcessDefinition.query.count() == 1


def test_deploy_paths_is_all_or_nothing(app, tmp_path):
    bad = tmp_path / "bad.bpmn"
    bad.write_bytes(broken(b'name="post_loan_officer"', b'name="janitor"'))
    with pytest.raises(DeployError):
        deploy_paths([ROOT / "bpmn" / "reminders.bpmn", bad], FORMS)
    assert ProcessDefinition.query.count() == 0


def test_cli_deploy_reports_errors(app, tmp_path):
    bad = tmp_path / "bad.bpmn"
    bad.write_bytes(broken(b'name="post_loan_officer"', b'name="janitor"'))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["bpmn", "deploy", str(bad)])
    assert result.exit_code == 1
    assert "janitor" in result.output
    ok = runner.invoke(args=["bpmn", "deploy"])
    assert ok.exit_code == 0 and "handover: version 1" in ok.output


def test_every_user_task_has_a_form_a_due_date_and_a_known_priority(app):
    """Issue 4 §5: every human task has a due date (working days) and a priority."""
    from workflows.engine import parse_processes
    from workflows.definitions import task_properties
    paths = sorted((ROOT / "bpmn").glob("*.bpmn"))
    for path in paths:
        # Call activities name processes of other files (collection calls guarantor_demand).
        others = [(other.read_bytes(), other.name) for other in paths if other != path]
        for process_id, (spec, _subs) in parse_processes(path.read_bytes(), path.name,
                                                         others).items():
            for ts in spec.task_specs.values():
                if not ts.manual:
                    continue
                props = task_properties(ts)
                where = f"{path.name}:{process_id}/{ts.bpmn_id}"
                assert props.get("formKey"), where
                assert str(props.get("dueInWorkingDays", "")).isdigit(), where
                assert props.get("priority", "normal") in ("high", "normal", "low"), where


def test_latest_version_is_memoized_and_every_deploy_renews_it(app):
    from sqlalchemy import event

    from extensions import db
    from workflows.definitions import latest_definition
    first = deploy_paths([ROOT / "bpmn" / "handover.bpmn"], FORMS)[0]
    assert latest_definition("handover").version == 1  # read, and remembered
    db.session.commit()
    statements = []

    def seen(*_args):
        statements.append(_args[2])
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        again = latest_definition("handover")
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert statements == [] and (again.id, again.version) == (first.id, 1)
    assert again in db.session and again.forms == first.forms
    deploy_xml(HANDOVER.replace(b"Check the loan file", b"Check the file"), "handover.bpmn",
               FORMS)
    db.session.commit()
    assert latest_definition("handover").version == 2
    # A deploy rolled back leaves no trace: seen inside its transaction, gone after it.
    deploy_xml(HANDOVER.replace(b"Check the loan file", b"Check it"), "handover.bpmn", FORMS)
    assert latest_definition("handover").version == 3
    db.session.rollback()
    assert latest_definition("handover").version == 2
    assert ProcessDefinition.query.count() == 2
