"""Read-only roles cannot change anything: every state-changing route refuses compliance."""
import re

import pytest

from accounts.operations import create_user
from audit.models import AuditEvent
from cases.models import Guarantor
from extensions import db
from tests.conftest import HANDOVER_DATA, PASSWORD, login
from workflows.inbox import open_tasks_of_case
from workflows.tasks import complete_task

# Routes that change nothing a compliance officer must be kept from.
HARMLESS = {"accounts.login", "accounts.logout", "accounts.language",
            # one's own password and API tokens
            "accounts.password", "accounts.token_create", "accounts.token_revoke",
            # one's own notifications: marking them read, what also goes out by the outbox
            "notifications.read", "notifications.read_all", "notifications.preferences",
            # shows a masked ID or phone number with a reason; writes only its audit event
            "cases.reveal_pii"}


@pytest.fixture
def world(app, new_loan, users):
    create_user("auditor", PASSWORD, ["compliance"])
    loan = new_loan()
    complete_task(open_tasks_of_case(loan.id)[0].id, users["am"], data=HANDOVER_DATA)
    guarantor = Guarantor(loan_id=loan.id, name="担保人甲")
    db.session.add(guarantor)
    db.session.commit()
    return {"loan_no": loan.loan_no, "task_id": open_tasks_of_case(loan.id)[0].id,
            "draft_id": 1, "late_id": 1, "notification_id": 1, "day": "2026-10-01",
            "key": "handover", "process_key": "handover", "version": 1,
            "repayment_id": 1, "reversal_id": 1, "external_ref": "R-1",
            "code": "term", "year": 2027, "user_id": 1, "grant_id": 1, "token_id": 1,
            "team_id": 1, "username": "auditor", "asset_type": "real_estate",
            "collateral_id": 1, "guarantor_id": guarantor.id, "number": 1, "notice_id": 1}


def state_changing_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.methods & {"POST", "PUT", "PATCH", "DELETE"} and rule.endpoint not in HARMLESS:
            yield rule


def test_compliance_is_refused_on_every_state_changing_route(app, world, token_for):
    web = app.test_client()
    login(web, "auditor")
    api = token_for("auditor")
    checked = []
    for rule in state_changing_rules(app):
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<int:{name}>", str(world[name])).replace(
                f"<{name}>", str(world[name]))
        before = AuditEvent.query.filter(AuditEvent.action != "permission.denied").count()
        if url.startswith("/api/"):
            response = web.post(url, json={"data": {}}, headers=api)
        else:
            response = web.post(url, data={}, headers={"Accept-Language": "en"})
        assert response.status_code == 403, (url, response.status_code)
        after = AuditEvent.query.filter(AuditEvent.action != "permission.denied").count()
        assert after == before, url  # nothing but the denial was recorded
        checked.append(url)
    assert len(checked) >= 25
    # replay before deploy changes nothing, yet is for process owners only
    assert "/studio/drafts/1/replay" in checked
    # the collateral and guarantor watch and the template library (issue 16)
    for url in ("/admin/collateral/real_estate", "/notices/handover",
                "/cases/L-001/collateral/1/revaluation", f"/cases/L-001/guarantors/{world['guarantor_id']}/check"):
        assert url in checked, url
    assert AuditEvent.query.filter_by(action="permission.denied").count() >= len(checked)


def test_compliance_sees_no_buttons_that_would_change_a_case(app, world):
    web = app.test_client()
    login(web, "auditor")
    page = web.get(f"/cases/{world['loan_no']}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    main = html.split("<main>")[1].split("</main>")[0]
    # the one form allowed: "Show" a masked personal number (cases/_reveal.html, audited)
    main = re.sub(r'<details class="pii-reveal.*?</details>', "", main, flags=re.S)
    assert 'method="post"' not in main  # the header's language and logout forms are outside
    task = web.get(f"/tasks/{world['task_id']}", headers={"Accept-Language": "en"})
    assert 'id="task-form"' not in task.get_data(as_text=True)
