"""End to end in a real browser: an account manager logs in, opens the handover task from the
Mine tab (it is theirs from the start), fills the handover form and completes it; the file then
waits for the check.

Headless Debian Chromium driven by Playwright (never a downloaded browser). Without
/usr/bin/chromium the test is skipped, except in CI (CI=true), where it fails.
"""
import contextlib
import os
import re
import sys
import threading

import pytest
from werkzeug.serving import make_server

from extensions import db
from tests.conftest import PASSWORD
from workflows.inbox import open_tasks_of_case
from workflows.models import HumanTask

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
TIMEOUT_MS = 5000
HOME = re.compile(r"^https?://[^/]+/$")  # where a login lands: the role's home page


def require_chromium(capsys):
    """Skip without Chromium, except in CI (CI=true), where its absence is a failure."""
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"chromium not installed at {CHROMIUM}: CI requires the browser test "
                    "(run `make browser`)", pytrace=False)
    notice = "chromium not installed: browser test skipped"
    with capsys.disabled():  # straight to the terminal, past pytest's capture
        print(f"\nNOTICE: {notice}", file=sys.stderr)
    pytest.skip(notice)


@pytest.fixture
def live_server(app):
    """The app on 127.0.0.1, on a free port, served from a background thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


@pytest.fixture
def open_page(live_server):
    """Launches headless Chromium on demand (after the Chromium check) and returns a page
    whose relative URLs go to the live server; everything is closed after the test."""
    stack = contextlib.ExitStack()

    def launch():
        from playwright.sync_api import sync_playwright
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        context = browser.new_context(base_url=live_server, locale="en-US")
        stack.callback(context.close)
        context.set_default_timeout(TIMEOUT_MS)
        return context.new_page()

    with stack:
        yield launch


def browser_login(page, username, password=PASSWORD):
    """Log in through the login form and wait until the app has answered."""
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main form[method=post] button[type=submit].btn-primary")
    page.wait_for_load_state()


def screenshot_on_failure(page, path, block):
    """Run block(); on failure keep a screenshot of the page at path and re-raise."""
    try:
        block()
    except BaseException:
        try:
            page.screenshot(path=str(path), full_page=True)
            print(f"screenshot: {path} (at {page.url})", file=sys.stderr)
        except Exception as exc:  # the browser may be gone; keep the original error
            print(f"screenshot failed: {exc}", file=sys.stderr)
        raise


def test_account_manager_hands_over_the_file(capsys, new_loan, users, open_page, tmp_path):
    require_chromium(capsys)
    loan = new_loan()
    (handover,) = open_tasks_of_case(loan.id)
    assert (handover.bpmn_id, handover.candidate_user_id, handover.claimed_by_id) == (
        "handover_file", users["am"].id, users["am"].id)  # theirs from the start
    task_id, task_name, loan_id, am_id = handover.id, handover.name, loan.id, users["am"].id

    page = open_page()

    def in_the_browser():
        browser_login(page, "am")
        page.wait_for_url(HOME)

        page.goto("/inbox?tab=mine")
        page.locator(f'#tasks a[href="/tasks/{task_id}"]').first.click()
        page.wait_for_url(f"**/tasks/{task_id}")

        form = page.locator("#task-form")
        form.locator("input[name=documents][value=contract]").check()
        form.locator("input[name=documents][value=iou]").check()
        form.locator("textarea[name=purpose]").fill("working capital")
        form.locator("textarea[name=repayment_source]").fill("sales receipts")
        form.locator("textarea[name=risk_points]").fill("single customer")
        form.locator("button[type=submit]").click()

        page.wait_for_url("**/inbox")
        flash = page.locator(".flash.success")
        assert flash.count() == 1
        assert task_name in flash.inner_text()

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)

    db.session.rollback()  # forget anything read before the server thread committed
    done = db.session.get(HumanTask, task_id)
    assert (done.state, done.completed_by_id) == ("completed", am_id)
    assert set(done.data["documents"]) == {"contract", "iou"}
    check = HumanTask.query.filter_by(case_id=loan_id, state="ready").all()
    assert [(t.bpmn_id, t.lane) for t in check] == [("check_file", "post_loan_officer")]
