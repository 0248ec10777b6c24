"""End to end in a real browser: a process owner opens the handover process in the studio's
modeler, renames the task `check_file` in the side panel, validates (no problems), deploys with a
comment, and the database holds handover version 2 with the new name; the Spiff extension
elements the editor does not edit survive the round trip through bpmn-js.

Headless Debian Chromium driven by Playwright (never a downloaded browser). Without
/usr/bin/chromium the test is skipped, except in CI (CI=true), where it fails.
"""
import os

import pytest

from accounts.operations import create_user
from tests.conftest import PASSWORD
from tests.test_browser import (  # noqa: F401  (fixtures)
    browser_login, live_server, open_page, require_chromium, screenshot_on_failure)
from tests.test_browser_pages import open_page as page_in  # noqa: F401  (fixture)
from workflows.definitions import latest_definition

NEW_NAME = "Check the whole loan file"


@pytest.fixture
def owner(app):
    return create_user("owner", PASSWORD, ["process_owner"])


def test_process_owner_renames_a_task_and_deploys_version_2(capsys, deployed, owner, open_page,
                                                             tmp_path):
    require_chromium(capsys)
    assert latest_definition("handover").version == 1
    page = open_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def in_the_browser():
        browser_login(page, "owner")

        page.goto("/studio/")
        page.click('a[href="/studio/processes/handover/edit"]')
        page.wait_for_url("**/studio/drafts/*/edit")
        page.wait_for_selector("#studio.is-ready")

        # Select the task on the canvas; the side panel shows its properties.
        page.click('.djs-element.djs-shape[data-element-id="check_file"]')
        name = page.locator("#prop-name")
        assert name.input_value() == "Check the loan file"
        assert page.locator("#prop-formKey").input_value() == "handover_check"
        assert page.locator("#prop-notSameUserAs").input_value() == "handover_file"
        name.fill(NEW_NAME)
        name.press("Enter")
        page.wait_for_selector("#studio.is-dirty")

        page.click("#studio-validate")
        page.wait_for_selector("#studio-status.good")
        assert page.locator("#studio-problems").is_hidden()
        assert page.locator(".has-problem").count() == 0

        # Deploying needs a comment.
        page.click("#studio-deploy")
        page.wait_for_selector("#studio-status.bad")
        page.fill("#studio-comment", "Clearer name for the check")
        page.click("#studio-deploy")
        page.wait_for_selector("#studio.is-deployed")
        assert "2" in page.locator("#studio-status").inner_text()
        assert errors == []

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)

    definition = latest_definition("handover")
    assert definition.version == 2
    assert definition.comment == "Clearer name for the check"
    assert definition.deployed_by_id == owner.id
    xml = definition.bpmn_xml
    assert f'name="{NEW_NAME}"' in xml
    # Round trip through bpmn-js kept the Spiff extensions it does not edit.
    assert '<spiffworkflow:serviceTaskOperator id="set_monitoring_plan"' in xml
    assert '<spiffworkflow:parameter id="risk_group"' in xml
    assert '<spiffworkflow:property name="formKey" value="handover_check"' in xml
    assert '<spiffworkflow:property name="notSameUserAs" value="handover_file"' in xml


def test_problems_are_listed_marked_and_select_their_element(capsys, deployed, owner, open_page,
                                                              tmp_path):
    """A draft with a mistake: validation lists it with its element id, marks the element on
    the diagram, and clicking the problem selects it; the form editor previews both languages."""
    require_chromium(capsys)
    from extensions import db
    from workflows.models import ProcessDraft
    definition = latest_definition("handover")
    xml = definition.bpmn_xml.replace(
        '<spiffworkflow:property name="formKey" value="handover_check" />',
        '<spiffworkflow:property name="formKey" value="no_such_form" />')
    draft = ProcessDraft(process_key="handover", bpmn_xml=xml, forms={},
                         based_on_id=definition.id)
    db.session.add(draft)
    db.session.commit()
    draft_id = draft.id
    page = open_page()

    def in_the_browser():
        browser_login(page, "owner")
        page.goto(f"/studio/drafts/{draft_id}/edit")
        page.wait_for_selector("#studio.is-ready")

        page.click("#studio-validate")
        page.wait_for_selector("#studio-status.bad")
        problem = page.locator('#studio-problem-list li[data-element-id="check_file"]')
        assert problem.count() >= 1 and "no_such_form" in problem.first.inner_text()
        assert page.locator('.djs-element.has-problem[data-element-id="check_file"]').count() == 1
        problem.first.click()
        assert page.locator("#prop-name").input_value() == "Check the loan file"

        # A lane offers the roles; choosing one renames the lane in the diagram.
        page.evaluate("""() => { const m = window.studioModeler;
            m.get('selection').select(m.get('elementRegistry').get('lane_post_loan_officer')); }""")
        assert page.locator("#prop-lane").input_value() == "post_loan_officer"
        page.select_option("#prop-lane", "back_office")
        saved = page.evaluate("() => window.studioModeler.saveXML().then(r => r.xml)")
        assert 'id="lane_post_loan_officer" name="back_office"' in saved
        assert "spiffworkflow:serviceTaskOperator" in saved

        # The form editor: a form the process uses, previewed in both languages.
        page.click('.djs-element.djs-shape[data-element-id="handover_file"]')
        page.click("#studio-panel-body button")  # edit this form
        page.wait_for_function(
            "() => document.getElementById('studio-preview-en').textContent"
            ".includes('Documents')"
            " || document.getElementById('studio-preview-en').textContent.length > 50")
        assert page.locator("#studio-form-key").input_value() == "handover_file"
        spec = page.locator("#studio-form-json")
        text = spec.input_value().replace('"en": "', '"en": "EN-', 1)
        spec.fill(text)
        page.wait_for_function(
            "() => document.getElementById('studio-preview-en').textContent.includes('EN-')")
        assert "EN-" not in page.locator("#studio-preview-zh_CN").inner_text()

        # The field list: add a field, label it in both languages, see both previews.
        page.click("#studio-field-add")
        row = page.locator("table.studio-fields tbody tr").last
        row.locator("input.field-name").fill("extra_remark")
        row.locator("input[aria-label='Label (English)']").fill("Extra remark")
        row.locator("input[aria-label='Label (Chinese)']").fill("补充说明")
        page.wait_for_function(
            "() => document.getElementById('studio-preview-en').textContent"
            ".includes('Extra remark')"
            " && document.getElementById('studio-preview-zh_CN').textContent.includes('补充说明')")
        assert '"name": "extra_remark"' in spec.input_value()

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)
    assert latest_definition("handover").version == 1


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_warnings_are_marked_on_their_elements_and_can_block_deploy(
        capsys, deployed, owner, page_in, tmp_path, viewport):
    """A draft with hygiene warnings, opened in Chinese: each warned element carries the amber
    marker as soon as the diagram opens, the list names the element and Enter on an item selects
    it (its panel lists its warnings); checking 'Warnings block deploy' for the process turns
    them into problems at validation. axe-core finds no WCAG A/AA violation."""
    require_chromium(capsys)
    from extensions import db
    from tests.test_browser_pages import axe_violations, sideways_scroll
    from workflows.models import ProcessDraft
    definition = latest_definition("handover")
    xml = definition.bpmn_xml.replace('value="核对贷款档案"', 'value=""').replace(
        'name="Apply the monitoring plan"', "")
    draft = ProcessDraft(process_key="handover", bpmn_xml=xml, forms={},
                         based_on_id=definition.id)
    db.session.add(draft)
    db.session.commit()
    draft_id = draft.id
    page = page_in(viewport, "zh-CN")
    shots = os.environ.get("SCREENSHOT_DIR")

    def in_the_browser():
        browser_login(page, "owner")
        page.goto(f"/studio/drafts/{draft_id}/edit")
        page.wait_for_selector("#studio.is-ready")
        for element in ("check_file", "apply_monitoring_plan"):
            assert page.locator(f'.djs-element.has-warning[data-element-id="{element}"]'
                                ).count() == 1, element
        assert page.locator(".has-problem").count() == 0
        assert page.locator("#studio-warnings").is_visible()
        item = page.locator('#studio-warning-list li[data-element-id="check_file"]')
        assert "check_file" in item.inner_text()
        if shots:
            page.screenshot(path=f"{shots}/studio-warnings-{viewport}.png", full_page=True)
        violations = axe_violations(page)
        assert violations == [], violations
        if viewport == "phone":
            assert sideways_scroll(page) <= 0

        item.focus()
        page.keyboard.press("Enter")
        assert page.locator("#prop-name").input_value() == "Check the loan file"
        assert page.locator(".studio-panel-warnings li").count() == 1

        # The process owner's choice, in the process's panel (nothing selected).
        page.evaluate("() => window.studioModeler.get('selection').select(null)")
        box = page.locator("#prop-warningsBlockDeploy-handover")
        assert not box.is_checked()
        box.check()
        saved = page.evaluate("() => window.studioModeler.saveXML().then(r => r.xml)")
        assert 'name="warningsBlockDeploy" value="true"' in saved
        # By keyboard: a mouse left over the button would have axe read its hover transition.
        page.locator("#studio-validate").press("Enter")
        page.wait_for_selector("#studio-status.bad")
        problems = page.locator("#studio-problem-list li")
        assert problems.count() == 3
        assert page.locator('.djs-element.has-problem[data-element-id="check_file"]').count() == 1
        assert page.locator("#studio-warnings").is_hidden()
        if shots:
            page.screenshot(path=f"{shots}/studio-blocking-{viewport}.png", full_page=True)
        violations = axe_violations(page)
        assert violations == [], violations

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)
