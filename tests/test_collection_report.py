"""The daily collection report (issue 14 item 6): a day's figures per collector and the team's
total against the targets in force, the leader's target form, who sees which rows, CSV."""
import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from scorecards.models import CollectionTarget
from scorecards.report import collectors_of, daily_report, share
from scorecards.targets import set_target, targets_on
from tests.conftest import login
from tests.test_scorecards import deployed, month, people  # noqa: F401
from workflows import clock
from workflows.errors import InvalidData, NotAllowed

EN = {"Accept-Language": "en"}
DAY = dt.date(2026, 3, 2)  # conftest.T0 is 10:00 that day in Beijing


@pytest.fixture
def targets(people):
    set_target(people["coll"], DAY, 4, 2, 1, Decimal("1000"), people["head"])
    set_target(people["coll"], dt.date(2026, 3, 3), 10, 5, 2, Decimal("2000.50"),
               people["head"])


def by_user(rows):
    return {(r.user.username if r.user else None): r for r in rows}


def test_the_days_figures_against_the_targets(app, people, month, targets):
    rows = daily_report(collectors_of(people["north"]), DAY)
    assert [r.user.username if r.user else None for r in rows] == ["coll", "coll2", None]
    coll, coll2, total = (by_user(rows)[k] for k in ("coll", "coll2", None))
    assert {k: coll.figures[k] for k in ("calls", "contacts", "promises_made",
                                          "promises_kept", "collected")} == {
        "calls": 3, "contacts": 2, "promises_made": 2, "promises_kept": 1,
        "collected": Decimal("1200.00")}
    assert [coll.share_of(f, c) for f, c in (("calls", "calls"), ("contacts", "contacts"),
                                              ("promises_made", "promises"),
                                              ("collected", "amount"))] == \
        [Decimal(75), Decimal(100), Decimal(200), Decimal(120)]
    assert (coll2.figures["calls"], coll2.figures["contacts"], coll2.figures["collected"]) == \
        (1, 1, Decimal("1500.00"))
    assert coll2.target is None and coll2.share_of("calls", "calls") is None
    # the total counts R1 (credited to both) once: 1200 + 300
    assert (total.figures["calls"], total.figures["contacts"], total.figures["promises_made"],
            total.figures["promises_kept"], total.figures["collected"]) == \
        (4, 3, 2, 1, Decimal("1500.00"))
    assert total.target_of("calls") == 4 and total.share_of("collected", "amount") == 150
    # the next day the newer target holds
    on_third = targets_on([people["coll"].id], dt.date(2026, 3, 3))[people["coll"].id]
    assert (on_third.calls, on_third.amount) == (10, Decimal("2000.50"))
    assert targets_on([people["coll"].id], dt.date(2026, 3, 1)) == {}
    third = by_user(daily_report(collectors_of(people["north"]), dt.date(2026, 3, 3)))
    assert third["coll"].figures["calls"] == 1 and third["coll"].share_of("calls", "calls") == 10


def test_share():
    assert share(3, 4) == 75 and share(1, 3) == 33 and share(2, 3) == 67
    assert share(5, 0) is None and share(5, None) is None
    assert share(Decimal("1500.00"), Decimal("1000.00")) == 150


def test_target_rules(app, people):
    head, coll = people["head"], people["coll"]
    with pytest.raises(NotAllowed):
        set_target(coll, DAY, 1, 1, 1, 1, people["head2"])  # not their leader
    with pytest.raises(InvalidData) as caught:
        set_target(coll, DAY, -1, 1.5, True, "-3", head)
    assert caught.value.field_errors == {"calls": ["not_a_count"],
                                         "contacts": ["not_a_count"],
                                         "promises": ["not_a_count"],
                                         "amount": ["not_an_amount"]}
    with pytest.raises(InvalidData) as caught:
        set_target(coll, DAY - dt.timedelta(days=1), 1, 1, 1, 1, head)
    assert caught.value.field_errors == {"effective_from": ["target_in_past"]}
    with pytest.raises(InvalidData):
        set_target(coll, DAY, 1, 1, 1, "1.005", head)  # more than two places
    set_target(coll, DAY, 1, 1, 1, 0, head)
    set_target(coll, DAY, 6, 3, 2, "500", head)  # the same day again: replaced
    (row,) = CollectionTarget.query.all()
    assert (row.calls, row.contacts, row.promises, row.amount) == (6, 3, 2, Decimal("500.00"))
    events = AuditEvent.query.filter_by(action="collection_target.set") \
        .order_by(AuditEvent.id).all()
    assert [e.data["calls"] for e in events] == [1, 6]


def test_the_leaders_target_form(app, people):
    client = app.test_client()
    login(client, "head")
    page = client.get("/scorecards/targets/coll", headers=EN)
    assert page.status_code == 200 and 'value="2026-03-02"' in page.get_data(as_text=True)
    bad = client.post("/scorecards/targets/coll", data={
        "effective_from": "2026-03-01", "calls": "-2", "contacts": "1", "promises": "1",
        "amount": "-1"}, headers=EN)
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "A whole number from 0 to" in html
    assert "An amount of 0 or more." in html
    past = client.post("/scorecards/targets/coll", data={
        "effective_from": "2026-03-01", "calls": "2", "contacts": "1", "promises": "1",
        "amount": "10"}, headers=EN)
    assert past.status_code == 400 and "A target starts today or later." in \
        past.get_data(as_text=True)
    assert CollectionTarget.query.count() == 0
    good = client.post("/scorecards/targets/coll", data={
        "effective_from": "2026-03-02", "calls": "20", "contacts": "8", "promises": "3",
        "amount": "5000.00"}, headers=EN)
    assert good.status_code == 302
    assert CollectionTarget.query.one().calls == 20
    assert client.get("/scorecards/targets/outsider", headers=EN).status_code == 403
    login(client, "head2")
    assert client.post("/scorecards/targets/coll", data={
        "effective_from": "2026-03-02", "calls": "1", "contacts": "1", "promises": "1",
        "amount": "1"}, headers=EN).status_code == 403
    login(client, "coll")
    assert client.get("/scorecards/targets/coll", headers=EN).status_code == 403


def test_who_sees_which_rows(app, people, month, targets):
    client = app.test_client()
    north = people["north"].id
    login(client, "head")
    html = client.get(f"/scorecards/collection-report?day=2026-03-02&team={north}",
                      headers=EN).get_data(as_text=True)
    assert 'data-username="coll"' in html and 'data-username="coll2"' in html
    assert 'data-total="yes"' in html and "Set targets" in html
    assert 'data-share="amount">120%<' in html
    # the leader's default team is theirs
    assert 'data-username="coll2"' in client.get("/scorecards/collection-report?day=2026-03-02",
                                                 headers=EN).get_data(as_text=True)
    login(client, "coll")
    html = client.get("/scorecards/collection-report?day=2026-03-02",
                      headers=EN).get_data(as_text=True)
    assert 'data-username="coll"' in html and 'data-username="coll2"' not in html
    assert 'data-total="yes"' not in html and "Set targets" not in html
    assert client.get(f"/scorecards/collection-report?team={north}",
                      headers=EN).status_code == 200  # their own team: own row
    login(client, "outsider")
    assert client.get(f"/scorecards/collection-report?team={north}",
                      headers=EN).status_code == 403
    login(client, "gm")
    html = client.get(f"/scorecards/collection-report?day=2026-03-02&team={north}",
                      headers=EN).get_data(as_text=True)
    assert 'data-username="coll2"' in html and "Set targets" not in html
    assert client.get("/scorecards/collection-report?day=2026-02-30",
                      headers=EN).status_code == 400


def test_csv_export(app, people, month, targets):
    client = app.test_client()
    login(client, "head")
    response = client.get(f"/scorecards/collection-report.csv?day=2026-03-02"
                          f"&team={people['north'].id}", headers=EN)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:4] == ["Date", "Team", "Collector", "Calls made"]
    assert rows[1] == ["2026-03-02", "North", "COLL", "3", "4", "2", "2", "2", "1", "1",
                       "1200.00", "1000.00"]
    assert rows[2] == ["2026-03-02", "North", "COLL2", "1", "", "1", "", "0", "", "0",
                       "1500.00", ""]
    assert rows[3] == ["2026-03-02", "North", "Team total", "4", "4", "3", "2", "2", "1", "1",
                       "1500.00", "1000.00"]
    assert AuditEvent.query.filter_by(action="export.collection_report").count() == 1
    login(client, "outsider")
    assert client.get(f"/scorecards/collection-report.csv?team={people['north'].id}",
                      headers=EN).status_code == 403


def test_clock_today_is_the_default_day(app, people):
    clock.set_now(dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.timezone.utc))  # 01:00 on the 3rd
    client = app.test_client()
    login(client, "head")
    html = client.get("/scorecards/collection-report", headers=EN).get_data(as_text=True)
    assert "Daily collection report, 2026-03-03" in html
