"""The portfolio dashboard in a real browser, desktop and phone: every chart is drawn (a
canvas inside each role="img" element), axe-core finds no WCAG 2.1 A/AA violation, the CSP
refuses nothing (ECharts' tooltips are drawn on the canvas), a phone does not scroll
sideways (skipped without Chromium). SCREENSHOT_DIR=… keeps the screenshots."""
import pytest

from tests.test_browser import browser_login, require_chromium, screenshot_on_failure
from tests.test_browser import live_server  # noqa: F401  (fixture)
from tests.test_browser_pages import check, open_page  # noqa: F401  (fixture)
from tests.test_dashboard import book  # noqa: F401  (fixture)


@pytest.mark.parametrize("viewport, locale", [("desktop", "en-US"), ("phone", "zh-CN")])
def test_dashboard_draws_its_charts_and_is_accessible(capsys, book, open_page,  # noqa: F811
                                                      tmp_path, viewport, locale):
    require_chromium(capsys)
    page = open_page(viewport, locale)
    problems = []

    def in_the_browser():
        browser_login(page, "gm")
        page.goto("/portfolio")
        charts = page.locator("[data-chart][role=img]")
        assert charts.count() >= 8
        page.wait_for_function(
            "[...document.querySelectorAll('[data-chart]')].every(e => e.querySelector('canvas'))")
        page.locator("#buckets-chart canvas").hover()  # a tooltip, drawn without HTML styles
        check(page, f"gm-{viewport}-{locale[:2]}-portfolio", problems, viewport)
        assert not problems, "\n".join(problems)

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)
