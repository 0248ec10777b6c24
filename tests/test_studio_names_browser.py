"""In a real browser: a process owner gives the process and a task new Chinese names in the
studio's side panel and deploys; the new version carries them (workflows/labels.py)."""
import pytest

from accounts.operations import create_user
from tests.conftest import PASSWORD
from tests.test_browser import (  # noqa: F401  (fixtures)
    browser_login, live_server, open_page, require_chromium, screenshot_on_failure)
from workflows.definitions import latest_definition


@pytest.fixture
def owner(app):
    return create_user("owner", PASSWORD, ["process_owner"])


def test_chinese_names_are_edited_beside_the_english_ones(capsys, deployed, owner, open_page):
    require_chromium(capsys)
    page = open_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_login(page, "owner")
    page.goto("/studio/")
    page.click('a[href="/studio/processes/handover/edit"]')
    page.wait_for_url("**/studio/drafts/*/edit")
    page.wait_for_selector("#studio.is-ready")
    # Nothing selected: the process's names.
    assert page.locator("#prop-process-name").input_value() == "Handover after disbursement"
    page.fill("#prop-process-name_zh_CN", "放款后交接（新）")
    page.press("#prop-process-name_zh_CN", "Enter")
    page.click('.djs-element.djs-shape[data-element-id="check_file"]')
    assert page.locator("#prop-name").input_value() == "Check the loan file"
    assert page.locator("#prop-name_zh_CN").input_value() == "核对贷款档案"
    page.fill("#prop-name_zh_CN", "")
    page.press("#prop-name_zh_CN", "Enter")
    page.wait_for_selector("#studio.is-dirty")
    page.click("#studio-validate")
    page.wait_for_selector("#studio-status.good")
    # A missing Chinese name is a warning, not a problem.
    assert page.locator("#studio-problems").is_hidden()
    assert page.locator('#studio-warning-list li[data-element-id="check_file"]').count() == 1
    page.fill("#prop-name_zh_CN", "核对全部贷款档案")
    page.press("#prop-name_zh_CN", "Enter")
    page.fill("#studio-comment", "Chinese names")
    page.click("#studio-deploy")
    page.wait_for_selector("#studio.is-deployed")
    definition = latest_definition("handover")
    assert definition.version == 2
    assert definition.labels["process"]["zh_CN"] == "放款后交接（新）"
    assert definition.labels["steps"]["check_file"] == {"en": "Check the loan file",
                                                        "zh_CN": "核对全部贷款档案"}
    assert errors == []
