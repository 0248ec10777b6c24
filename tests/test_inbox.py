"""The inbox at scale: keyset pages, bounded counts, four eyes, links, statement count."""
import datetime as dt
import re
from html import unescape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from cases.models import Loan
from extensions import db
from tests.conftest import HANDOVER_DATA, T0, login
from workflows import inbox
from workflows.errors import InvalidData
from workflows.inbox import bounded_count, decode_key, inbox_page, inbox_query
from workflows.models import HumanTask, HumanTaskExclusion, ProcessDefinition, ProcessInstance
from workflows.tasks import complete_task

LANES = ("account_manager", "post_loan_officer", "collector")
# Few distinct due dates so that many tasks tie on due_at; None is "no due date".
DUES = [None] + [T0 + dt.timedelta(days=d, hours=h) for d in (0, 1, 3) for h in (0, 5)]

# Weighted so that most tasks are visible to the viewer and there are several pages.
task_strategy = st.fixed_dictionaries({
    "lane": st.sampled_from(LANES[:2] * 3 + LANES[2:]),
    "due": st.sampled_from(DUES),
    "priority": st.integers(1, 3),
    "state": st.sampled_from(["ready"] * 5 + ["completed"]),
    "claimed": st.sampled_from([None] * 4 + ["viewer"] * 3 + ["other"]),
    "candidate": st.sampled_from([None] * 4 + ["viewer", "other"]),
    "excluded": st.sampled_from([False] * 4 + [True]),
    "loan": st.integers(0, 1),
})


@pytest.fixture
def world(deployed, users):
    """Two loans and an instance of each, to hang generated tasks on; the viewer holds two
    lanes (account manager and post-loan officer)."""
    definition_id = db.session.scalar(select(ProcessDefinition.id).limit(1))
    loans, instances = [], []
    for n in range(2):
        loan = Loan(loan_no=f"IB-{n}", borrower_name="x", principal=1, interest_rate=0,
                    disbursed_on=T0.date(), maturity_on=T0.date(),
                    account_manager_id=users["am"].id)
        db.session.add(loan)
        db.session.flush()
        instance = ProcessInstance(definition_id=definition_id, case_id=loan.id,
                                   status="running", state_json="{}",
                                   serializer_version="test", lock_version=1)
        db.session.add(instance)
        db.session.flush()
        loans.append(loan)
        instances.append(instance)
    db.session.commit()
    return {"viewer": users["dual"], "other": users["am2"], "loans": loans,
            "instances": instances}


def insert_tasks(world, specs):
    db.session.execute(HumanTaskExclusion.__table__.delete())
    db.session.execute(HumanTask.__table__.delete())
    people = {None: None, "viewer": world["viewer"].id, "other": world["other"].id}
    rows, exclusions = [], []
    for n, spec in enumerate(specs, 1):
        rows.append({"id": n, "instance_id": world["instances"][spec["loan"]].id,
                     "case_id": world["loans"][spec["loan"]].id,
                     "task_guid": f"guid-{n}", "process_key": "handover",
                     "bpmn_id": "step", "name": f"task {n}", "lane": spec["lane"],
                     "candidate_user_id": people[spec["candidate"]],
                     "claimed_by_id": people[spec["claimed"]], "due_at": spec["due"],
                     "priority": spec["priority"], "state": spec["state"], "created_at": T0})
        if spec["excluded"]:
            exclusions.append({"task_id": n, "user_id": world["viewer"].id,
                               "reason_task": "step"})
    if rows:
        db.session.execute(HumanTask.__table__.insert(), rows)
    if exclusions:
        db.session.execute(HumanTaskExclusion.__table__.insert(), exclusions)
    db.session.commit()


def expected_ids(specs, scope, loan=None):
    """The model of the inbox: which tasks the viewer sees, in page order."""
    seen = []
    for n, spec in enumerate(specs, 1):
        if spec["state"] != "ready" or (loan is not None and spec["loan"] != loan):
            continue
        if scope == "mine":
            visible = spec["claimed"] == "viewer"
        else:
            visible = (spec["claimed"] is None and spec["lane"] in LANES[:2]
                       and spec["candidate"] in (None, "viewer") and not spec["excluded"])
        if visible:
            seen.append((spec["due"] is None, spec["due"] or T0, spec["priority"], n))
    return [key[-1] for key in sorted(seen)]


def walk(viewer, scope, per_page, loan_no=None):
    """Follow `next` from the first page; the pages' ids, each page checked on the way."""
    pages, token = [], None
    while True:
        result = inbox_page(viewer, scope, loan_no=loan_no, per_page=per_page, after=token)
        assert len(result.rows) <= per_page
        pages.append([task.id for task, _loan_no in result.rows])
        assert (result.previous is None) == (token is None) or not result.rows
        if result.next is None:
            return pages
        assert len(result.rows) == per_page
        token = result.next


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(specs=st.lists(task_strategy, max_size=40), per_page=st.integers(1, 4),
       scope=st.sampled_from(["available", "mine"]), loan=st.sampled_from([None, 0, 1]))
def test_keyset_pages_cover_every_visible_task_once_in_order(world, specs, per_page, scope,
                                                             loan):
    insert_tasks(world, specs)
    viewer = world["viewer"]
    loan_no = None if loan is None else world["loans"][loan].loan_no
    expected = expected_ids(specs, scope, loan)
    pages = walk(viewer, scope, per_page, loan_no)
    assert [n for page in pages for n in page] == expected
    # The whole ordered query agrees (exports use it).
    assert [task.id for task, _ in db.session.execute(
        inbox_query(viewer, scope, loan_no=loan_no)).all()] == expected
    # Walking back with `previous` from the last page gives the same pages.
    if len(pages) > 1:
        result = inbox_page(viewer, scope, loan_no=loan_no, per_page=per_page,
                            after=encode_last(pages[-2]))
        back = []
        while result.previous:
            result = inbox_page(viewer, scope, loan_no=loan_no, per_page=per_page,
                                before=result.previous)
            back.append([task.id for task, _ in result.rows])
        assert back[::-1] == pages[:-1]
    # The page numbers (OFFSET) of old links still give the same pages.
    for number, page in enumerate(pages[:3], 1):
        rows = inbox_page(viewer, scope, loan_no=loan_no, page=number, per_page=per_page).rows
        assert [task.id for task, _ in rows] == page
    total, capped = bounded_count(viewer, scope, loan_no=loan_no, bound=5)
    assert (total, capped) == (min(len(expected), 5), len(expected) > 5)


def encode_last(ids):
    return inbox.encode_key(db.session.get(HumanTask, ids[-1]))


def test_bounded_count_and_the_page_total(world, monkeypatch):
    insert_tasks(world, [{"lane": "collector", "due": None, "priority": 2, "state": "ready",
                          "claimed": None, "candidate": None, "excluded": False, "loan": 0}
                         for _ in range(8)])
    collector = world["other"]  # am2 has no collector lane: nothing
    assert bounded_count(collector, "available") == (0, False)
    from accounts.operations import create_user
    col = create_user("col9", "secret-pass", ["collector"])
    assert bounded_count(col, "available") == (8, False)
    assert bounded_count(col, "available", bound=8) == (8, False)
    assert bounded_count(col, "available", bound=7) == (7, True)
    monkeypatch.setattr(inbox, "COUNT_BOUND", 3)
    result = inbox_page(col, "available", per_page=2)
    assert (result.total, result.total_capped, len(result.rows)) == (3, True, 2)


def test_four_eyes_exclusion_still_applies(app, new_loan, users):
    loan = new_loan(manager="dual")
    handover = inbox_page(users["dual"], "mine").rows[0][0]  # the manager's from the start
    complete_task(handover.id, users["dual"], data=HANDOVER_DATA)
    check = HumanTask.query.filter_by(case_id=loan.id, state="ready").one()
    assert check.lane == "post_loan_officer"
    # dual completed the handover: the check is not theirs to take, but plo sees it.
    assert inbox_page(users["dual"], "available").rows == []
    assert bounded_count(users["dual"], "available") == (0, False)
    assert [t.id for t, _ in inbox_page(users["plo"], "available").rows] == [check.id]


def test_a_bad_page_token_is_refused(world):
    for token in ("", "%%%", "bm90IGpzb24", "WzEsMiwzXQ", "WyJ4IiwxLDJd", "W251bGwsdHJ1ZSwxXQ"):
        with pytest.raises(InvalidData):
            decode_key(token or "x")
    with pytest.raises(InvalidData):
        inbox_page(world["viewer"], "available", after="x", before="y")


def links(html, rel):
    found = re.search(rf'<a href="([^"]+)" rel="{rel}"', html)
    return unescape(found.group(1)) if found else None


def task_links(html):
    """The distinct tasks a page links to (a row in "mine" links to its task twice)."""
    return set(re.findall(r'href="/tasks/(\d+)"', html))


def test_web_inbox_next_previous_and_first_links(app, new_loan, users):
    for i in range(25):
        new_loan(loan_no=f"K-{i:03d}")
    client = app.test_client()
    login(client, "am")
    first = client.get("/inbox?tab=mine", headers={"Accept-Language": "en"})
    first = first.get_data(as_text=True)
    assert len(task_links(first)) == 20 and "25 task(s)" in first
    assert links(first, "prev") is None and links(first, "first") is None
    second = client.get(links(first, "next")).get_data(as_text=True)
    assert "after=" in links(first, "next")
    assert len(task_links(second)) == 5 and links(second, "next") is None
    assert "after" not in links(second, "first") and "before" not in links(second, "first")
    back = client.get(links(second, "prev")).get_data(as_text=True)
    ids = re.findall(r'href="/tasks/(\d+)"', back)
    assert ids == re.findall(r'href="/tasks/(\d+)"', first)
    # A mangled token starts again from the first page instead of failing.
    mangled = client.get("/inbox?tab=mine&after=%%%").get_data(as_text=True)
    assert re.findall(r'href="/tasks/(\d+)"', mangled) == ids


def test_web_inbox_shows_a_capped_total(app, new_loan, users, monkeypatch):
    for i in range(4):
        new_loan(loan_no=f"C-{i:03d}")
    monkeypatch.setattr(inbox, "COUNT_BOUND", 3)
    client = app.test_client()
    login(client, "am")
    html = client.get("/inbox?tab=mine", headers={"Accept-Language": "en"})
    assert "3+ task(s)" in html.get_data(as_text=True)


def test_api_next_tokens_walk_the_inbox(app, new_loan, users, token_for):
    for i in range(7):
        new_loan(loan_no=f"A-{i:03d}", manager="am" if i % 2 else "dual")
    client, am = app.test_client(), token_for("am")
    seen, url, pages = [], "/api/v1/tasks?scope=mine&per_page=2", 0
    while url:
        body = client.get(url, headers=am).get_json()
        assert body["total"] == 3 and body["total_capped"] is False
        assert (body["previous"] is None) == (pages == 0)
        seen += [item["loan_no"] for item in body["items"]]
        pages += 1
        url = body["next"] and f"/api/v1/tasks?scope=mine&per_page=2&after={body['next']}"
    assert (seen, pages) == (["A-001", "A-003", "A-005"], 2)
    bad = client.get("/api/v1/tasks?after=nonsense", headers=am)
    assert bad.status_code == 400 and "after" in bad.get_json()["field_errors"]


def test_an_inbox_page_costs_a_constant_number_of_statements(app, new_loan, users):
    for i in range(30):
        new_loan(loan_no=f"S-{i:03d}")
    am = users["am"]
    db.session.expire_all()
    assert am.roles  # loaded with the user by Flask-Login, before the view runs
    statements = []

    def count(*_args):
        statements.append(1)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        result = inbox_page(am, "mine")
        page_cost = len(statements)
        for task, loan_no in result.rows:
            inbox.task_summary(task, loan_no)
            inbox.task_title(task)
        render_cost = len(statements) - page_cost
        later = inbox_page(am, "mine", after=result.next)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(result.rows) == 20 and len(later.rows) == 10
    # the rows, their forms (one query for all), the bounded count; nothing per row
    assert page_cost == 3
    assert render_cost == 0
