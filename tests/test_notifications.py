"""In-app notifications (issue 13 item 3): each kind produced by walking the real processes,
the header badge, the page, marking read (one's own only), and the outbox preferences."""
import datetime as dt
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.operations import create_user
from extension_requests.operations import request_extension
from extensions import db
from management.sla import check_overdue_tasks
from notifications.events import outcome
from notifications.inapp import mark_all_read, mark_read, save_preferences, unread_count
from notifications.models import Notification
from notifications.user_models import NotificationPreference, UserNotification
from tests.conftest import HANDOVER_DATA, PASSWORD, csrf_from, login
from tests.test_collection import CALL, at, do, ready
from tests.test_collection import overdue, staff  # noqa: F401  (fixtures)
from tests.test_extension import REQUEST, approve, bosses, review  # noqa: F401  (fixture)
from tests.test_servicing import serviced  # noqa: F401  (fixture)
from workflows import clock
from workflows.errors import InvalidData, NotFound
from workflows.inbox import open_tasks_of_case
from workflows.models import HumanTask
from workflows.tasks import complete_task, reassign_task
from workflows.timers import fire_due_timers

EN = {"Accept-Language": "en"}


def notes(user, kind=None):
    query = UserNotification.query.filter_by(user_id=user.id)
    if kind:
        query = query.filter_by(kind=kind)
    return query.order_by(UserNotification.id).all()


def kinds(user):
    return [n.kind for n in notes(user)]


def task_of(loan, bpmn_id):
    return HumanTask.query.filter_by(case_id=loan.id, bpmn_id=bpmn_id, state="ready").one()


# ---------------------------------------------------------------- kinds, by the real processes

def test_handover_file_is_assigned_then_returned_to_the_account_manager(app, new_loan, users):
    loan = new_loan()
    am, plo = users["am"], users["plo"]
    (first,) = notes(am)
    assert first.kind == "assigned" and first.case_id == loan.id
    assert first.context == {"process": "handover", "step": "handover_file",
                             "name": "Hand over the loan file"}
    complete_task(task_of(loan, "handover_file").id, am, data=HANDOVER_DATA)
    assert kinds(plo) == []  # the check is a pool task: nobody in particular is told
    complete_task(task_of(loan, "check_file").id, plo, data={
        "check_result": "incomplete", "missing_items": ["collateral"], "check_note": "deed"})
    assert kinds(am) == ["assigned", "returned"]
    returned = notes(am, "returned")[0]
    assert returned.task_id == task_of(loan, "handover_file").id and returned.read_at is None
    # Sent in again and found complete: the registration stays with the checker (assigned).
    complete_task(task_of(loan, "handover_file").id, am, data=HANDOVER_DATA)
    complete_task(task_of(loan, "check_file").id, plo, data={"check_result": "complete"})
    assert kinds(plo) == ["assigned"] and notes(plo)[0].context["step"] == "register_loan"
    assert kinds(am) == ["assigned", "returned"]


def test_extension_approved_and_rejected_tell_the_requester(app, serviced, bosses):
    loan = serviced()
    am = bosses["am"]
    before = len(notes(am))
    request_extension(loan, REQUEST, am)
    review(loan, bosses["dh"])
    approve(loan, bosses["gm"])
    new = notes(am)[before:]
    assert [n.kind for n in new] == ["approved", "approved"]
    assert [n.actor_id for n in new[:2]] == [bosses["dh"].id, bosses["gm"].id]
    assert new[0].context["step"] == "dept_review" and new[0].context["decision"] == "approved"
    assert kinds(bosses["dh"]) == kinds(bosses["gm"]) == []

    other = serviced(loan_no="L-002")
    request_extension(other, REQUEST, am)
    review(other, bosses["dh"], decision="reject")
    rejected = notes(am, "rejected")
    assert len(rejected) == 1 and rejected[0].case_id == other.id
    assert rejected[0].actor_id == bosses["dh"].id
    # …and telling the client of the refusal is the requester's task.
    assert notes(am)[-1].kind == "assigned" and notes(am)[-1].context["step"] == "inform_client"


def test_visit_rejected_then_approved_tell_the_collector(app, overdue, staff):
    loan = overdue()
    collector, leader = staff["collector"], staff["leader"]
    propose = dict(CALL, answered_by="nobody", collection_result="no_answer",
                   next_step="propose_visit", visit_reason="no answer for a week")
    do(loan, "phone_collection", collector, **propose)
    assert kinds(collector) == []
    do(loan, "approve_visit", leader, visit_decision="reject", visit_comment="call again")
    # Told once: the rejection (the call that comes back to the pool is not told again).
    assert kinds(collector) == ["rejected"]
    assert ready(loan) == ["phone_collection"]
    do(loan, "phone_collection", collector, **propose)
    do(loan, "approve_visit", leader, visit_decision="approve", visit_comment="go")
    assert kinds(collector) == ["rejected", "approved"]
    assert kinds(leader) == []


def test_a_collection_call_coming_round_again_is_nobodys_news(app, overdue, staff):
    loan = overdue()
    before = UserNotification.query.count()  # the handover's
    do(loan, "phone_collection", staff["collector"], **CALL)
    at(dt.date(2026, 5, 8), 12, 31)
    fire_due_timers()
    assert ready(loan) == ["phone_collection"]  # the next call, in the pool again
    added = UserNotification.query.order_by(UserNotification.id).all()[before:]
    assert [n.context["process"] for n in added] \
        in ([], ["inspection"])  # the inspection the timers also started is the manager's


def test_reassign_tells_both_holders(app, new_loan, users):
    head = create_user("head", PASSWORD, ["dept_head"])
    loan = new_loan()
    complete_task(task_of(loan, "handover_file").id, users["am"], data=HANDOVER_DATA)
    check = task_of(loan, "check_file")
    reassign_task(check.id, users["plo"], "plo takes it", head)
    assert kinds(users["plo"]) == ["reassigned_to_you"]
    reassign_task(check.id, users["plo2"], "plo is on leave", head)
    assert kinds(users["plo"]) == ["reassigned_to_you", "reassigned_away"]
    assert kinds(users["plo2"]) == ["reassigned_to_you"]
    assert {n.actor_id for n in notes(users["plo"]) + notes(users["plo2"])} == {head.id}
    assert kinds(head) == []


def test_overdue_tells_the_holder_not_the_pool(app, new_loan, users):
    loan = new_loan("L-001")
    second = new_loan("L-002")
    complete_task(task_of(second, "handover_file").id, users["am"], data=HANDOVER_DATA)
    clock.set_now(clock.now() + dt.timedelta(days=10))
    assert check_overdue_tasks() == 2  # L-001's file (held by am) and L-002's check (pool)
    overdue_notes = notes(users["am"], "overdue")
    assert [n.task_id for n in overdue_notes] == [task_of(loan, "handover_file").id]
    assert UserNotification.query.filter_by(kind="overdue").count() == 1
    assert check_overdue_tasks() == 0  # once


# ---------------------------------------------------------------- badge, page, marking read

def test_badge_counts_my_unread(app, new_loan, users):
    new_loan("L-001")
    new_loan("L-002")
    web = app.test_client()
    login(web, "am")
    html = web.get("/inbox", headers=EN).get_data(as_text=True)
    assert 'data-unread="2"' in html
    assert re.search(r'>2</span><span class="visually-hidden"> unread</span>', html)
    login(other := app.test_client(), "plo")
    html = other.get("/inbox", headers=EN).get_data(as_text=True)
    assert 'data-unread="0"' in html and "none unread" in html
    mark_all_read(users["am"])
    assert 'data-unread="0"' in web.get("/inbox", headers=EN).get_data(as_text=True)


def test_unread_count_is_bounded(app, users):
    from notifications.events import notify
    notify([{"user_id": users["am"].id, "kind": "assigned", "case_id": None, "task_id": None,
             "context": {}} for _ in range(5)])
    db.session.commit()
    assert unread_count(users["am"].id, bound=3) == (3, True)
    assert unread_count(users["am"].id) == (5, False)


def test_page_lists_newest_first_in_the_readers_language_and_marks_read(app, new_loan,
                                                                       users):
    for n in range(1, 4):
        new_loan(f"L-00{n}")
    web = app.test_client()
    login(web, "am")
    page = web.get("/notifications", headers=EN)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.index("L-003") < html.index("L-002") < html.index("L-001")
    assert "“Hand over the loan file” of loan L-001 is waiting for you." in html
    assert "Handover after disbursement" in html
    zh = web.get("/notifications", headers={"Accept-Language": "zh-CN"}).get_data(
        as_text=True)
    assert "移交贷款档案" in zh and "Hand over the loan file" not in zh

    token = csrf_from(html)
    first = notes(users["am"])[0]
    opened = web.post(f"/notifications/{first.id}/read", data={"open": "1",
                                                               "csrf_token": token})
    assert opened.status_code == 302 and opened.location.endswith(f"/tasks/{first.task_id}")
    assert db.session.get(UserNotification, first.id).read_at is not None
    assert unread_count(users["am"].id) == (2, False)
    done = web.post("/notifications/read-all", data={"csrf_token": token})
    assert done.status_code == 302 and unread_count(users["am"].id) == (0, False)


def test_pagination_and_empty_state(app, users):
    from notifications.events import notify
    web = app.test_client()
    login(web, "am")
    assert "No notifications yet." in web.get("/notifications", headers=EN).get_data(
        as_text=True)
    notify([{"user_id": users["am"].id, "kind": "overdue", "case_id": None, "task_id": None,
             "context": {"process": "collection", "step": "phone_collection",
                         "name": "Phone collection"}} for _ in range(25)])
    db.session.commit()
    first = web.get("/notifications", headers=EN).get_data(as_text=True)
    assert first.count("Phone collection") == 20 and "page=2" in first
    second = web.get("/notifications?page=2", headers=EN).get_data(as_text=True)
    assert second.count("Phone collection") == 5 and "page=3" not in second


def test_another_user_cannot_mark_mine(app, new_loan, users):
    new_loan()
    mine = notes(users["am"])[0]
    with pytest.raises(NotFound):
        mark_read(mine.id, users["am2"])
    web = app.test_client()
    login(web, "am2")
    response = web.post(f"/notifications/{mine.id}/read", headers=EN)
    assert response.status_code == 404
    assert web.post("/notifications/99999999999/read").status_code == 404
    assert db.session.get(UserNotification, mine.id).read_at is None
    web.post("/notifications/read-all")  # marks am2's (none), never am's
    assert unread_count(users["am"].id) == (1, False)


def test_pages_need_a_login(app):
    web = app.test_client()
    assert web.get("/notifications").status_code == 302
    assert web.post("/notifications/read-all").status_code in (302, 400)


# ---------------------------------------------------------------- outbox preferences

def test_preferences_send_chosen_kinds_through_the_outbox_in_the_users_language(
        app, new_loan, users):
    am = users["am"]
    am.locale = "en"
    db.session.commit()
    save_preferences(am, ["returned"], "email", "am@example.com")
    loan = new_loan()
    assert Notification.query.count() == 0  # "assigned" was not chosen
    complete_task(task_of(loan, "handover_file").id, am, data=HANDOVER_DATA)
    complete_task(task_of(loan, "check_file").id, users["plo"], data={
        "check_result": "incomplete", "missing_items": ["collateral"], "check_note": "deed"})
    (sent,) = Notification.query.all()
    assert (sent.channel, sent.recipient, sent.loan_id) == ("email", "am@example.com", loan.id)
    assert sent.body == ("[Handover after disbursement] “Hand over the loan file” of loan "
                         "L-001 was sent back to you.")
    am.locale = "zh_CN"
    save_preferences(am, ["returned", "assigned"], "sms", "+86 138 0013 8000")
    new_loan("L-002")
    latest = Notification.query.order_by(Notification.id.desc()).first()
    assert latest.channel == "sms" and "移交贷款档案" in latest.body and "L-002" in latest.body


@pytest.mark.parametrize("kinds_, channel, address", [
    (["assigned"], "email", "not-an-address"),
    (["assigned"], "sms", "call me"),
    (["assigned"], "pigeon", "x"),
    (["nonsense"], "email", "a@b.cn"),
    (["assigned"], "email", "a@b.cn" + "x" * 120),
])
def test_bad_preferences_change_nothing(app, users, kinds_, channel, address):
    save_preferences(users["am"], ["overdue"], "webhook", "")
    with pytest.raises(InvalidData):
        save_preferences(users["am"], kinds_, channel, address)
    db.session.rollback()
    pref = db.session.get(NotificationPreference, users["am"].id)
    assert (pref.kinds, pref.channel, pref.address) == (["overdue"], "webhook", "")


def test_preferences_form(app, users):
    web = app.test_client()
    login(web, "am")
    page = web.get("/notifications", headers=EN).get_data(as_text=True)
    token = csrf_from(page)
    bad = web.post("/notifications/preferences", headers=EN, data={
        "kinds": ["assigned"], "channel": "email", "address": "nope", "csrf_token": token})
    assert bad.status_code == 400
    assert "Give an e-mail address" in bad.get_data(as_text=True)
    assert db.session.get(NotificationPreference, users["am"].id) is None
    ok = web.post("/notifications/preferences", headers=EN, data={
        "kinds": ["assigned", "overdue"], "channel": "email", "address": "am@example.com",
        "csrf_token": token})
    assert ok.status_code == 302
    pref = db.session.get(NotificationPreference, users["am"].id)
    assert pref.kinds == ["assigned", "overdue"] and pref.address == "am@example.com"
    page = web.get("/notifications", headers=EN).get_data(as_text=True)
    assert re.search(r'value="overdue" id="kind-overdue" checked', page)
    web.post("/notifications/preferences", data={"channel": "email", "csrf_token": token})
    assert db.session.get(NotificationPreference, users["am"].id) is None  # none chosen


# ---------------------------------------------------------------- invariants

@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["decision", "visit_decision", "check_result",
                                        "comment", "next_step", "review_result"]),
                       st.sampled_from(["approve", "approved", "reject", "rejected",
                                        "returned", "incomplete", "complete", "go", 3, None])))
def test_outcome_reads_only_decision_fields(values):
    found = outcome(values)
    decisive = {v for k, v in values.items() if k != "comment" and k != "next_step"
                and isinstance(v, str)
                and v in ("approve", "approved", "reject", "rejected", "returned",
                          "incomplete")}
    assert (found is None) == (not decisive)
    assert outcome({"comment": "approve", "next_step": "reject"}) is None


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["am", "am2"]),
                          st.sampled_from(["new", "read_one", "read_all"])), max_size=12))
def test_unread_counts_are_per_user(app, users, steps):
    from notifications.events import notify
    UserNotification.query.delete()
    db.session.commit()
    model = {"am": 0, "am2": 0}  # unread per user
    for who, action in steps:
        user = users[who]
        other = users["am2" if who == "am" else "am"]
        if action == "new":
            notify([{"user_id": user.id, "kind": "assigned", "case_id": None,
                     "task_id": None, "context": {}}])
            db.session.commit()
            model[who] += 1
        elif action == "read_one":
            theirs = [n.id for n in notes(other) if n.read_at is None]
            if theirs:  # trying someone else's is not found and changes nothing
                with pytest.raises(NotFound):
                    mark_read(theirs[0], user)
                db.session.rollback()
            mine = [n.id for n in notes(user) if n.read_at is None]
            if mine:
                mark_read(mine[0], user)
                model[who] -= 1
        else:
            mark_all_read(user)
            model[who] = 0
        for name in model:
            assert unread_count(users[name].id) == (model[name], False)


def test_four_eyes_win_over_a_notification(app, new_loan, users):
    from notifications.events import notify
    from workflows.models import HumanTaskExclusion
    loan = new_loan()
    task = task_of(loan, "handover_file")
    db.session.add(HumanTaskExclusion(task_id=task.id, user_id=users["am2"].id,
                                      reason_task="test"))
    db.session.flush()
    before = UserNotification.query.count()
    notify([{"user_id": who.id, "kind": "assigned", "case_id": loan.id, "task_id": task.id,
             "context": {}} for who in (users["am"], users["am2"])])
    db.session.commit()
    added = UserNotification.query.order_by(UserNotification.id).all()[before:]
    assert [n.user_id for n in added] == [users["am"].id]
