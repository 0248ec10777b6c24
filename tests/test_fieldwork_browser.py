"""The visit report on a phone (issue 13 item 9), in headless Chromium at 390x844: a collector
fills it, takes two photos (set_input_files) and, after ticking the consent box, gives the
location the browser grants; axe-core finds no WCAG A/AA violation, the CSP refuses nothing and
the page never scrolls sideways. Nothing asks for the location before the box is ticked.
Screenshots go to SCREENSHOT_DIR when it is set."""
import contextlib
import datetime as dt
import os
from pathlib import Path

import pytest

from cases.models import Document
from extensions import db
from tests.test_browser import (  # noqa: F401  (fixtures)
    CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, browser_login, live_server, require_chromium,
    screenshot_on_failure)
from tests.test_browser_pages import CSP_PROBE, VIEWPORTS, axe_violations, sideways_scroll
from tests.test_collection import overdue, staff  # noqa: F401 (fixtures)
from tests.test_fieldwork import JPEG, PNG, docs_dir, visit  # noqa: F401 (fixtures)
from tests.test_servicing import serviced  # noqa: F401 (fixture)
from workflows.models import HumanTask

SHOTS = os.environ.get("SCREENSHOT_DIR")
HANGZHOU = {"latitude": 30.274084, "longitude": 120.15507, "accuracy": 15}
# Counts the page's requests for a position: none may happen before consent.
GEO_PROBE = """window.__geoAsked = 0;
if (navigator.geolocation) {
  const ask = navigator.geolocation.getCurrentPosition.bind(navigator.geolocation);
  navigator.geolocation.getCurrentPosition = function () {
    window.__geoAsked += 1; return ask.apply(null, arguments); };
}"""


@pytest.fixture
def phone(live_server):
    stack = contextlib.ExitStack()

    def launch(locale):
        from playwright.sync_api import sync_playwright
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        context = browser.new_context(base_url=live_server, locale=locale,
                                      viewport=VIEWPORTS["phone"], is_mobile=True,
                                      has_touch=True)
        stack.callback(context.close)
        context.grant_permissions(["geolocation"])
        context.set_geolocation(HANGZHOU)
        context.set_default_timeout(TIMEOUT_MS * 2)
        context.add_init_script(CSP_PROBE)
        context.add_init_script(GEO_PROBE)
        return context.new_page()

    with stack:
        yield launch


def check(page, name, problems):
    problems += [f"{name}: {v}" for v in axe_violations(page)]
    problems += [f"{name}: CSP refused {v}" for v in page.evaluate("window.__cspViolations")]
    if sideways_scroll(page) > 0:
        problems.append(f"{name}: the page scrolls sideways by {sideways_scroll(page)} px")
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_a_collector_reports_the_visit_on_a_phone(capsys, visit, docs_dir, phone, tmp_path,
                                                  locale):
    require_chromium(capsys)
    loan, task = visit
    task_id, loan_id = task.id, loan.id
    page = phone(locale)
    problems = []
    name = f"visit-report-phone-{locale[:2]}"

    def in_the_browser():
        browser_login(page, "collector")
        page.goto(f"/tasks/{task_id}")
        check(page, f"{name}-empty", problems)
        assert page.locator("fieldset.field-group > legend").count() == 2
        assert page.is_disabled("#visit_location-button")
        page.fill("#visit_address", "杭州市西湖区文三路 1 号")
        page.fill("#visit_met", "借款人")
        page.fill("#visit_findings", "店铺正常营业，库存充足")
        page.select_option("#visit_situation", "cooperative")
        page.set_input_files("#visit_photos", [
            {"name": "shop.jpg", "mimeType": "image/jpeg", "buffer": JPEG},
            {"name": "stock.png", "mimeType": "image/png", "buffer": PNG}])
        page.wait_for_selector("#visit_photos-list li:nth-child(2)")
        assert page.evaluate("window.__geoAsked") == 0  # nothing asked before consent
        assert page.input_value("#visit_location-latitude") == ""
        page.check("#visit_location-consent")
        # (wait_for_function would evaluate a string, which the page's CSP refuses)
        page.wait_for_selector("#visit_location-status:has-text('30.274084')")
        assert page.evaluate("window.__geoAsked") == 1
        assert "30.274084" in page.text_content("#visit_location-status")
        check(page, f"{name}-filled", problems)
        assert not problems, "\n".join(problems)
        page.click("#task-form button[type=submit]")
        page.wait_for_url("**/inbox**")

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)
    db.session.expire_all()  # written by the live server's thread
    done = HumanTask.query.get(task_id)
    documents = Document.query.filter_by(loan_id=loan_id).order_by(Document.id).all()
    assert done.state == "completed"
    assert [d.filename for d in documents] == ["shop.jpg", "stock.png"]
    assert done.data["visit_photos"] == [d.id for d in documents]
    location = done.data["visit_location"]
    assert (location["latitude"], location["longitude"], location["accuracy"]) == (
        30.274084, 120.15507, 15.0)


@pytest.fixture
def onsite_forms(serviced, users):
    """An open inspection report (loan S-2) and an open on-site closure (loan S-1)."""
    from ledger.repayments import post_repayment
    from tests.test_inspection_risk import FIRST, fire_at, served_by
    from workflows.inbox import open_tasks_of_case
    from workflows.tasks import complete_task
    inspected = served_by("am", users, loan_no="S-2")
    fire_at(FIRST + dt.timedelta(seconds=1))
    inspect = HumanTask.query.filter_by(case_id=inspected.id, bpmn_id="inspect",
                                        state="ready").one()
    loan = serviced()
    post_repayment(loan, {"amount": "303000.00", "paid_at": "2026-04-01",
                          "external_ref": "ALL"}, users["admin"])
    complete_task(open_tasks_of_case(loan.id)[0].id, users["plo"], data={
        "settlement_verified": True, "ledger_closed_on": "2026-04-02"})
    complete_task(open_tasks_of_case(loan.id)[0].id, users["am"], data={
        "appointment_on": "2026-04-08", "appointment_time": "10:00",
        "appointment_place": "公司三楼", "invitation_channel": "phone"})
    onsite = open_tasks_of_case(loan.id)[0]
    assert (inspect.form_key, onsite.form_key) == ("inspection_report", "closure_onsite")
    return inspect.id, onsite.id


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_the_inspection_and_closure_forms_fit_a_phone(capsys, onsite_forms, docs_dir, phone,
                                                      tmp_path, locale):
    require_chromium(capsys)
    inspect_id, onsite_id = onsite_forms
    page = phone(locale)
    problems = []

    def in_the_browser():
        browser_login(page, "am")
        for key, task_id in (("inspection", inspect_id), ("closure", onsite_id)):
            page.goto(f"/tasks/{task_id}")
            assert page.locator("input[type=file][capture=environment]").count() == 1
            check(page, f"{key}-phone-{locale[:2]}", problems)
        assert not problems, "\n".join(problems)

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)


BIG_PICTURE = """async () => {
  // A 3200x2400 picture of noise: a PNG of several MB, like a camera's photo.
  const canvas = document.createElement('canvas');
  canvas.width = 3200; canvas.height = 2400;
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(canvas.width, canvas.height);
  for (let i = 0; i < image.data.length; i++) image.data[i] = (i * 2654435761) >>> 24;
  ctx.putImageData(image, 0, 0);
  const blob = await new Promise(resolve => canvas.toBlob(resolve, 'image/png'));
  const input = document.getElementById('visit_photos');
  const dt = new DataTransfer();
  dt.items.add(new File([blob], 'camera.png', {type: 'image/png'}));
  input.files = dt.files;
  input.dispatchEvent(new Event('change'));
  return blob.size;
}"""


def test_a_big_photo_is_made_smaller_before_it_is_sent(capsys, visit, docs_dir, phone,
                                                      tmp_path):
    require_chromium(capsys)
    loan, task = visit
    task_id, loan_id = task.id, loan.id
    page = phone("en-US")

    def in_the_browser():
        browser_login(page, "collector")
        page.goto(f"/tasks/{task_id}")
        original = page.evaluate(BIG_PICTURE)
        assert original > 1_500_000
        page.wait_for_selector("#visit_photos-list li:has-text('camera.jpg')")
        sent = page.evaluate("""() => { const f = document.getElementById('visit_photos')
            .files[0]; return [f.name, f.type, f.size]; }""")
        assert sent[:2] == ["camera.jpg", "image/jpeg"] and sent[2] < original
        for selector, value in (("#visit_address", "杭州"), ("#visit_met", "借款人"),
                                ("#visit_findings", "ok")):
            page.fill(selector, value)
        page.select_option("#visit_situation", "cooperative")
        page.click("#task-form button[type=submit]")
        page.wait_for_url("**/inbox**")

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)
    db.session.expire_all()
    [document] = Document.query.filter_by(loan_id=loan_id).all()
    assert (document.filename, document.content_type) == ("camera.jpg", "image/jpeg")
