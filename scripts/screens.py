"""Screenshots of the demo in Chinese for docs/screens/ (README "Screens").

    .venv/bin/python scripts/screens.py [--out docs/screens]

What `make run` does, in a temporary directory (the real instance/ folder is not touched):
migrate a fresh SQLite database, deploy bpmn/, load the demo; then serve it on 127.0.0.1 and,
in headless Debian Chromium (/usr/bin/chromium, `make browser`), log in as each role and save
its home page at desktop (1366x900) and phone (390x844) size, and the case page of an overdue
demo loan (summary and history tabs) at both sizes, in zh_CN.

The clock is frozen at SHOT_TIME (Beijing) so that the dates, due days and counts are the
same at every run. PNGs are reduced to 256 colours with Pillow (text stays sharp)."""
import argparse
import datetime as dt
import io
import os
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workflows.clock import BEIJING  # noqa: E402 (the project is on the path now)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
SHOT_TIME = dt.datetime(2026, 3, 16, 10, 0, tzinfo=BEIJING)  # a Monday, mid-morning
# The case page: a demo loan nine days overdue, in phone collection, seen by the officer.
CASE_LOAN, CASE_USER = "DH2026-0021", "post_loan_officer"


def build_app(workdir):
    """The app on a fresh SQLite database in `workdir`: migrated, diagrams deployed, demo
    loaded (as `make run`: db upgrade, bpmn deploy, demo load)."""
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'demo.db'}"
    from flask_migrate import upgrade

    from app import create_app
    from demo import load_demo
    from workflows import clock
    from workflows.definitions import deploy_paths

    app = create_app({"SECRET_KEY": "screenshots-only", "RATELIMIT_ENABLED": False,
                      "AUDIT_KEY": "screenshots-only-audit-key-0123456789",
                      "AUDIT_ANCHOR_FILE": str(workdir / "anchors.log"),
                      "DOCUMENTS_DIR": str(workdir / "documents")})
    clock.set_now(SHOT_TIME.astimezone(dt.timezone.utc))
    with app.app_context():
        print("== database: applying migrations ==")
        upgrade()
        print("== processes: deploying bpmn/ ==")
        deploy_paths(sorted((ROOT / "bpmn").glob("*.bpmn")), ROOT / "bpmn" / "forms",
                     comment="deployed by scripts/screens.py")
        print("== demo users and loans ==")
        print(load_demo())
    return app


def serve(app):
    import logging

    from werkzeug.serving import make_server
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="screens", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def save(page, path, full_page=False):
    """A PNG of the page, reduced to 256 colours when Pillow is there."""
    png = page.screenshot(full_page=full_page)
    try:
        from PIL import Image
    except ImportError:
        path.write_bytes(png)
        return
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE) \
        .save(path, optimize=True)


def login(page, username, password):
    page.context.clear_cookies()
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("main form[method=post] button[type=submit].btn-primary")


def shoot(base_url, out):
    from playwright.sync_api import sync_playwright

    from accounts.roles import ROLES
    from demo import DEMO_PASSWORD
    saved = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for size, viewport in VIEWPORTS.items():
            context = browser.new_context(base_url=base_url, locale="zh-CN", viewport=viewport,
                                          is_mobile=size == "phone", has_touch=size == "phone",
                                          timezone_id="Asia/Shanghai")
            page = context.new_page()
            for role in ROLES:
                login(page, role, DEMO_PASSWORD)
                path = out / f"home-{role}-{size}.png"
                # The whole home page: on a phone its figures go below the fold.
                save(page, path, full_page=True)
                saved.append(path)
            login(page, CASE_USER, DEMO_PASSWORD)
            for tab, name in (("overview", "summary"), ("audit", "history")):
                # As a reader opens it: the tab clicked, the page at its top.
                page.goto(f"/cases/{CASE_LOAN}")
                page.click(f"#{tab}-tab")
                page.wait_for_selector(f"#{tab}.active.show")
                page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
                path = out / f"case-{name}-{size}.png"
                save(page, path)
                saved.append(path)
            saved += _portfolio_shots(page, out, size)
            context.close()
        browser.close()
    return saved


# Issue 14: the portfolio as the department head sees it, the collector's queue ranked by
# expected recovery, a collector's scorecard of the last whole month, the case's score and
# category. (page, user, file name, element to shoot or None for the whole page)
PORTFOLIO_SHOTS = (
    ("/portfolio", "dept_head", "portfolio", None),
    ("/inbox?tab=available&sort=expected_recovery", "collector", "queue-ranked", None),
    ("/scorecards/collector?month={last_month}", "dept_head", "scorecard", None),
    ("/scorecards/collection-report?day={last_working_day}", "dept_head", "collection-report",
     None),
    (f"/cases/{CASE_LOAN}", "risk_manager", "case-score", "#case-score"),
    (f"/cases/{CASE_LOAN}", "risk_manager", "case-category", "#category"),
)


def _portfolio_shots(page, out, size):
    last_month = (SHOT_TIME.date().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    day = SHOT_TIME.date() - dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    saved = []
    from demo import DEMO_PASSWORD
    for url, user, name, element in PORTFOLIO_SHOTS:
        login(page, user, DEMO_PASSWORD)
        page.goto(url.format(last_month=last_month, last_working_day=day.isoformat()))
        page.wait_for_load_state("networkidle")
        path = out / f"{name}-{size}.png"
        if element:  # both sections are on the case's risk tab
            page.click("#risk-tab")
            page.wait_for_selector("#risk.active.show")
            png = page.locator(element).screenshot()
            path.write_bytes(png)
        else:
            page.wait_for_timeout(300)  # the charts are drawn after load (no animation)
            save(page, path, full_page=True)
        saved.append(path)
    return saved


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screens"))
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        sys.exit(f"{CHROMIUM} is missing: run `make browser` first")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory(prefix="daihou-screens-") as tmp:
        app = build_app(Path(tmp))
        server, base_url = serve(app)
        try:
            saved = shoot(base_url, out)
        finally:
            server.shutdown()
            server.server_close()
    total = sum(p.stat().st_size for p in saved)
    print(f"{len(saved)} screenshots in {out} ({total // 1024} KiB)")


if __name__ == "__main__":
    main()
