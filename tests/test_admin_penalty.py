"""The administrator's penalty interest page: products' markup and compounding, the legal
ceiling (multiple × one-year LPR); rates shown and entered as percentages."""
import datetime as dt
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from cases.models import CaseProblem, Product
from extensions import db
from ledger.models import LegalRateCap
from tests.conftest import login

EN = {"Accept-Language": "en"}
SEEDED = dt.date(2025, 5, 20)  # migrations/versions/0005_ledger.py


@pytest.fixture
def seeded_cap(app):
    """The ceiling the migration seeds (LPR 3.00% × 4 from 2025-05-20). The suite empties every
    table but products after each test, so later tests put the same row back."""
    row = db.session.get(LegalRateCap, SEEDED)
    if row is None:
        row = LegalRateCap(effective_on=SEEDED, lpr_one_year=Decimal("0.03"),
                           multiple=Decimal(4), entered_at=dt.datetime(2025, 5, 20,
                                                                       tzinfo=dt.timezone.utc))
        db.session.add(row)
        db.session.commit()
    return row


@pytest.fixture
def products(app):
    """Products survive between tests: put their penalty settings back afterwards."""
    saved = {p.code: (p.penalty_markup, p.compound_interest) for p in Product.query}
    yield saved
    db.session.rollback()
    for product in Product.query:
        product.penalty_markup, product.compound_interest = saved[product.code]
    db.session.commit()


@pytest.fixture
def admin_client(app, users):
    users["admin"].display_name = "Wang Admin"
    db.session.commit()
    client = app.test_client()
    login(client, "admin")
    return client


def test_admin_sees_products_and_the_seeded_ceiling(admin_client, seeded_cap, products):
    page = admin_client.get("/admin/penalty", headers=EN)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="/admin/penalty" class="active"' in html  # in the admin nav
    products_table = html.split('id="penalty-products"')[1].split("</table>")[0]
    for name in ("Term loan", "Installment loan", "Short bridge loan"):
        assert name in products_table
    assert "+50%" in products_table and "0.5" not in products_table.replace(
        'data-markup="0.5', "")
    assert 'id="term-markup"' in products_table and 'for="term-markup"' in products_table
    assert 'value="50"' in products_table
    caps = html.split('id="rate-caps"')[1].split("</table>")[0]
    assert "2025-05-20" in caps and "3.00%" in caps and "4×" in caps and "12.00%" in caps
    assert "0.03" not in caps
    assert 'data-status="in_force"' in caps
    assert "In force today: 12.00% a year" in html
    for name in ("effective_on", "lpr", "multiple"):
        assert f'for="{name}"' in html


def test_entering_a_ceiling_adds_it(admin_client, users, seeded_cap):
    response = admin_client.post("/admin/penalty/caps", headers=EN, data={
        "effective_on": "2026-01-01", "lpr": "2.9", "multiple": "4"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/penalty#caps")
    row = db.session.get(LegalRateCap, dt.date(2026, 1, 1))
    assert row.lpr_one_year == Decimal("0.029") and row.multiple == 4
    assert row.entered_by_id == users["admin"].id
    assert AuditEvent.query.filter_by(action="ledger.rate_cap_entered").count() == 1
    html = admin_client.get("/admin/penalty", headers=EN).get_data(as_text=True)
    assert "Legal ceiling from 2026-01-01 entered: 11.60% a year." in html
    new = html.split('data-effective-on="2026-01-01"')[1].split("</tr>")[0]
    assert "2.90%" in new and "11.60%" in new and "Wang Admin" in new
    assert "0.029" not in new
    assert 'data-effective-on="2026-01-01" data-status="in_force"' in html
    assert 'data-effective-on="2025-05-20" data-status="superseded"' in html
    assert "In force today: 11.60% a year" in html

    again = admin_client.post("/admin/penalty/caps", headers=EN, follow_redirects=True, data={
        "effective_on": "2026-01-01", "lpr": "3.05", "multiple": "4.5"})
    assert "The legal ceiling from 2026-01-01 was replaced: 13.725% a year." in \
        again.get_data(as_text=True)
    assert db.session.get(LegalRateCap, dt.date(2026, 1, 1)).multiple == Decimal("4.5")
    assert LegalRateCap.query.count() == 2


@pytest.mark.parametrize("data, field, message", [
    ({"lpr": "150"}, "lpr", "Enter a percentage above 0 and below 100"),
    ({"lpr": "0"}, "lpr", "Enter a percentage above 0 and below 100"),
    ({"lpr": "NaN"}, "lpr", "Enter a percentage above 0 and below 100"),
    ({"lpr": "2.123456"}, "lpr", "At most 4 decimal places."),
    ({"multiple": "11"}, "multiple", "Enter a number above 0 and at most 10."),
    ({"effective_on": ""}, "effective_on", "Enter a date."),
])
def test_a_bad_ceiling_is_refused_next_to_its_field(admin_client, seeded_cap, data, field,
                                                    message):
    body = {"effective_on": "2026-01-01", "lpr": "2.9", "multiple": "4", **data}
    response = admin_client.post("/admin/penalty/caps", headers=EN, data=body)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Please correct the errors below." in html
    form = html.split('id="rate-cap-form"')[1].split("</form>")[0]
    field_html = form.split(f'for="{field}"')[1].split('<div class="field')[0]
    assert message in field_html
    assert f'value="{body[field]}"' in form or not body[field]  # the entry is kept
    assert LegalRateCap.query.count() == 1
    assert AuditEvent.query.filter_by(action="ledger.rate_cap_entered").count() == 0


def test_changing_a_products_markup(admin_client, products):
    response = admin_client.post("/admin/penalty/products/term", headers=EN,
                                 data={"term-markup": "30", "term-compound": "y"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/penalty#products")
    product = db.session.get(Product, "term")
    assert product.penalty_markup == Decimal("0.3") and product.compound_interest is True
    assert db.session.get(Product, "installment").penalty_markup == Decimal("0.5")
    event = AuditEvent.query.filter_by(action="ledger.penalty_terms_changed").one()
    assert event.data["after"] == {"penalty_markup": "0.3", "compound_interest": True}
    html = admin_client.get("/admin/penalty", headers=EN).get_data(as_text=True)
    assert ("Penalty interest of Term loan saved: contract rate +30%, compound interest yes."
            in html)
    row = html.split('data-product="term"')[1].split("</tbody>")[0]
    assert "+30%" in row and "Yes" in row and 'value="30"' in row

    off = admin_client.post("/admin/penalty/products/term", data={"term-markup": "12.5"})
    assert off.status_code == 302
    product = db.session.get(Product, "term")
    assert product.penalty_markup == Decimal("0.125") and product.compound_interest is False


@pytest.mark.parametrize("markup, message", [("-5", "Enter a percentage from 0 to 500."),
                                             ("501", "Enter a percentage from 0 to 500."),
                                             ("", "This field is required."),
                                             ("12.345", "At most 2 decimal places.")])
def test_a_bad_markup_is_refused_next_to_its_field(admin_client, products, markup, message):
    response = admin_client.post("/admin/penalty/products/bridge", headers=EN,
                                 data={"bridge-markup": markup})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    row = html.split('data-product="bridge"')[1].split("</tbody>")[0]
    assert 'id="terms-bridge" open' in row
    assert message in row.split('for="bridge-markup"')[1].split('<div class="field')[0]
    assert 'id="terms-term" open' not in html
    assert db.session.get(Product, "bridge").penalty_markup == Decimal("0.5")
    assert AuditEvent.query.filter_by(action="ledger.penalty_terms_changed").count() == 0


def test_an_unknown_product_is_404(admin_client):
    assert admin_client.post("/admin/penalty/products/nope",
                             data={"nope-markup": "30"}).status_code == 404


@pytest.mark.parametrize("username", ["plo", "compliance", "am"])
def test_only_administrators(app, users, seeded_cap, products, username):
    client = app.test_client()
    login(client, username)
    assert client.get("/admin/penalty").status_code == 403
    assert client.post("/admin/penalty/caps", data={
        "effective_on": "2026-01-01", "lpr": "2.9", "multiple": "4"}).status_code == 403
    assert client.post("/admin/penalty/products/term",
                       data={"term-markup": "30"}).status_code == 403
    assert LegalRateCap.query.count() == 1
    assert db.session.get(Product, "term").penalty_markup == Decimal("0.5")
    assert AuditEvent.query.filter(AuditEvent.action.like("ledger.%")).count() == 0


def test_a_ledger_problem_is_shown_readably(admin_client, new_loan):
    loan = new_loan()
    db.session.add(CaseProblem(loan_id=loan.id, kind="ledger_invariant", detail={
        "code": "repayment_allocated", "detail": "repayment R-1: amount 100.00 ≠ allocations 0"}))
    db.session.commit()
    html = admin_client.get("/admin/problems", headers=EN).get_data(as_text=True)
    assert "Ledger check failed: a repayment's allocations do not add up to its amount" in html
    assert "repayment R-1: amount 100.00 ≠ allocations 0" in html
    assert "ledger_invariant" not in html


def test_the_ceiling_in_force_turns_at_midnight_in_beijing(admin_client, seeded_cap):
    """At 01:00 in Beijing (17:00 UTC the day before) a ceiling effective that day is the
    one in force, on the page as in the ledger's penalty accrual (ledger.penalty.cap_on)."""
    from ledger.penalty import cap_on, legal_caps
    from workflows import clock
    db.session.add(LegalRateCap(effective_on=dt.date(2026, 3, 3), lpr_one_year=Decimal("0.029"),
                                multiple=Decimal(4)))
    db.session.commit()
    clock.set_now(dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.timezone.utc))
    html = admin_client.get("/admin/penalty", headers=EN).get_data(as_text=True)
    assert 'data-effective-on="2026-03-03" data-status="in_force"' in html
    assert 'data-effective-on="2025-05-20" data-status="superseded"' in html
    assert "In force today: 11.60% a year" in html
    assert cap_on(legal_caps(), clock.today()) == Decimal("0.116")
