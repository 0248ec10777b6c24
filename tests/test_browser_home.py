"""The home page and the notification page in a real browser, desktop and phone: axe-core
finds no WCAG 2.1 A/AA violation, the CSP refuses nothing, a phone does not scroll sideways;
the badge counts down when a notification is opened (skipped without Chromium)."""
import pytest

from tests.conftest import HANDOVER_DATA
from tests.test_browser import browser_login, require_chromium, screenshot_on_failure
from tests.test_browser import live_server  # noqa: F401  (fixture)
from tests.test_browser_pages import check, open_page  # noqa: F401  (fixture)
from workflows.inbox import open_tasks_of_case
from workflows.tasks import complete_task


@pytest.mark.parametrize("viewport, locale", [("desktop", "en-US"), ("phone", "zh-CN")])
def test_home_and_notifications_are_accessible(capsys, app, new_loan, users, open_page,
                                               tmp_path, viewport, locale):
    require_chromium(capsys)
    loan = new_loan()
    new_loan("L-002")
    complete_task(open_tasks_of_case(loan.id)[0].id, users["am"], data=HANDOVER_DATA)
    page = open_page(viewport, locale)
    problems = []
    prefix = f"am-{viewport}-{locale[:2]}"

    def in_the_browser():
        browser_login(page, "am")
        page.goto("/")
        assert page.locator(".home-figure").count() == 4  # mine, pools, overdue, unread
        assert page.locator(".home-stage").count() == 1  # current
        check(page, f"{prefix}-home", problems, viewport)
        page.goto("/notifications")
        assert page.locator(".notifications-badge").get_attribute("data-unread") == "2"
        check(page, f"{prefix}-notifications", problems, viewport)
        page.locator(".notification-list form button[type=submit]").first.click()
        page.wait_for_url("**/tasks/*")
        assert page.locator(".notifications-badge").get_attribute("data-unread") == "1"
        assert not problems, "\n".join(problems)

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)
