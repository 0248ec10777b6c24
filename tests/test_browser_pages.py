"""The daily pages in a real browser, on a desktop and on a phone: an account manager and a
department head open the inbox, the case list, every tab of a case page and (the head) the
management page; axe-core finds no WCAG 2.0/2.1 A or AA violation on any of them, and on a
phone no page scrolls sideways (wide tables scroll inside their own box).

Headless Debian Chromium driven by Playwright, skipped without /usr/bin/chromium as
tests/test_browser.py is. Screenshots go to SCREENSHOT_DIR when it is set (a person looks at
them; the test does not compare pixels)."""
import contextlib
import os
from pathlib import Path

import pytest

from accounts.operations import create_user
from tests.conftest import HANDOVER_DATA, PASSWORD, login
from tests.test_browser import (  # noqa: F401  (fixtures)
    CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, browser_login, live_server, require_chromium,
    screenshot_on_failure)
from workflows.inbox import open_tasks_of_case
from workflows.tasks import complete_task

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
CASE_TABS = ["overview", "work", "ledger", "calls", "files", "risk", "audit", "diagram"]
SHOTS = os.environ.get("SCREENSHOT_DIR")
CSP_PROBE = """window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e =>
    window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || e.sample)));"""


@pytest.fixture
def open_page(live_server):
    """Like tests/test_browser.open_page, with a viewport and a browser language."""
    stack = contextlib.ExitStack()

    def launch(viewport, locale):
        from playwright.sync_api import sync_playwright
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        context = browser.new_context(base_url=live_server, locale=locale,
                                      viewport=VIEWPORTS[viewport],
                                      is_mobile=viewport == "phone", has_touch=viewport == "phone")
        stack.callback(context.close)
        context.set_default_timeout(TIMEOUT_MS * 2)
        # Anything the CSP refuses (an inline script or style) is recorded and fails the test.
        context.add_init_script(CSP_PROBE)
        return context.new_page()

    with stack:
        yield launch


@pytest.fixture
def busy_case(app, new_loan, users):
    """A case with an open task, a contact and a logged call; the department head exists."""
    create_user("head", PASSWORD, ["dept_head"])
    loan = new_loan()
    complete_task(open_tasks_of_case(loan.id)[0].id, users["am"], data=HANDOVER_DATA)
    web = app.test_client()
    login(web, "am")
    url = f"/cases/{loan.loan_no}"
    web.post(f"{url}/contacts", data={
        "contact-name": "王芳", "contact-relationship": "spouse", "contact-phone": "138 0013 8000",
        "contact-address": "杭州市西湖区文三路 1 号", "contact-knows_about_loan": "y"})
    web.post(f"{url}/contact-log", data={
        "log-kind": "call", "log-number": "13800138000", "log-answered_by": "borrower",
        "log-outcome": "promised_to_pay", "log-note": "will pay on Friday",
        "log-promised_on": "2026-03-06", "log-promised_amount": "20000.00"})
    return loan.loan_no


def axe_violations(page):
    """axe-core's WCAG A/AA violations on the page as it is now, one line each.

    axe goes in through the DevTools protocol (evaluate), not add_script_tag: the page's CSP
    (script-src 'self') refuses the inline script tag, and the CSP stays on while testing."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})",
                           AXE_TAGS)
    return [f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(" ".join(n["target"]) for n in v["nodes"][:5])
            for v in result["violations"]]


def sideways_scroll(page):
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def check(page, name, problems, viewport):
    """Accessibility and (phone) width of the page as shown; a screenshot when asked."""
    problems += [f"{name}: {v}" for v in axe_violations(page)]
    problems += [f"{name}: CSP refused {v}" for v in page.evaluate("window.__cspViolations")]
    if viewport == "phone" and sideways_scroll(page) > 0:
        problems.append(f"{name}: the page scrolls sideways by {sideways_scroll(page)} px")
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("username, viewport, locale", [
    ("am", "desktop", "en-US"), ("am", "phone", "zh-CN"),
    ("head", "desktop", "zh-CN"), ("head", "phone", "en-US")])
def test_daily_pages_are_accessible_and_fit(capsys, busy_case, open_page, tmp_path,
                                            username, viewport, locale):
    require_chromium(capsys)
    loan_no = busy_case
    page = open_page(viewport, locale)
    problems = []
    prefix = f"{username}-{viewport}-{locale[:2]}"

    def in_the_browser():
        browser_login(page, username)
        page.goto("/inbox?tab=available")
        check(page, f"{prefix}-inbox", problems, viewport)
        if viewport == "phone":  # the menu opens from the toggler and lists the sections
            page.click(".navbar-toggler")
            page.wait_for_selector("#main-nav.show")
            assert page.locator("#main-nav .nav-link[aria-current=page]").count() == 1
            check(page, f"{prefix}-menu", problems, viewport)
        page.goto("/cases")
        check(page, f"{prefix}-cases", problems, viewport)

        page.goto(f"/cases/{loan_no}")
        for pane in CASE_TABS:
            page.click(f"#{pane}-tab")
            page.wait_for_selector(f"#{pane}.active.show")
            assert page.url.endswith(f"#{pane}")  # the tab is in the URL, to come back to
            if pane == "diagram":
                page.locator(".dh-instance summary").first.click()
                page.wait_for_selector(".dh-instance[data-state=ready]")
            check(page, f"{prefix}-case-{pane}", problems, viewport)
        # A fragment opens its tab: a tab's own and a section's inside one.
        page.goto(f"/cases/{loan_no}#ledger")
        page.wait_for_selector("#ledger.active.show")
        page.goto("/inbox")
        page.goto(f"/cases/{loan_no}#contact-log")
        page.wait_for_selector("#calls.active.show")
        assert page.locator("#ledger.active").count() == 0

        if username == "head":
            page.goto("/manage")
            check(page, f"{prefix}-manage", problems, viewport)
        assert not problems, "\n".join(problems)

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)


def test_the_case_page_prints_every_tab(capsys, busy_case, open_page, tmp_path):
    require_chromium(capsys)
    page = open_page("desktop", "en-US")

    def in_the_browser():
        browser_login(page, "am")
        page.goto(f"/cases/{busy_case}")
        page.emulate_media(media="print")
        hidden = page.evaluate("""[...document.querySelectorAll('.case-panes > .tab-pane')]
            .filter(p => getComputedStyle(p).display === 'none').map(p => p.id)""")
        assert hidden == []
        assert page.locator(".case-tabs").is_hidden()

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)
