"""Personal data (PIPL): ID and phone numbers masked per role on every surface (the case page's
partial and filters, CSV, the PDF dossier, the API), the audited reveal with a reason, and
the masking functions' invariant."""
import base64
import csv
import io
import re
import zlib

import pytest
from flask import render_template_string
from flask_login import login_user
from hypothesis import given
from hypothesis import strategies as st

from accounts.operations import create_user
from audit.models import AuditEvent
from cases.models import Contact, ContactLogEntry, Guarantor
from pii.rules import (ID_NUMBER, PHONE, RULES, mask_data, mask_id_number, mask_phone,
                       mask_text, may_reveal, revealed, sees_in_full)
from pii.reveal import reveal
from extensions import db
from tests.conftest import PASSWORD, csrf_from, login, token_for  # noqa: F401 (fixture)
from tests.test_collection import overdue, staff  # noqa: F401 (fixtures)
from tests.test_servicing import serviced  # noqa: F401 (fixture)
from workflows.errors import InvalidData, NotAllowed

ID = "11010519491231002X"        # the borrower of tests.test_servicing
ID_MIDDLE = "19491231"
PHONE_NO = "13800138000"
GUARANTOR_ID = "330100199001011234"
CONTACT_PHONE = "13900000001"
EN = {"Accept-Language": "en"}
PARTIAL = ('{% from "cases/_reveal.html" import pii %}'
           '{{ pii(loan.borrower.id_number, "id_number", loan, "borrower.id_number") }}|'
           '{{ pii(loan.borrower.phones[0], "phone", loan, "borrower.phone.0") }}')


# -- the masking functions -------------------------------------------------------------

def test_examples():
    assert mask_id_number("110101199003071234") == "110101********1234"
    assert mask_id_number("91350100M000100Y43") == "913501********0Y43"
    assert mask_id_number("A1234567890") == "*******7890"
    assert mask_id_number("1234") == "****"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("0571-88881234") == "057******1234"
    assert mask_phone("88881234") == "****1234"
    assert mask_phone({"type": "home", "value": "13812345678"}) == {
        "type": "home", "value": "138****5678"}
    assert mask_id_number("") == "" and mask_phone(None) is None


def _kept(n, head, tail):
    return set(range(min(head, n))) | set(range(max(n - tail, 0), n))


@given(st.text(min_size=1, max_size=40))
def test_masked_ids_keep_only_their_ends(value):
    masked = mask_id_number(value)
    n = len(value)
    keep = _kept(n, 6, 4) if n == 18 else (_kept(n, 0, 4) if n > 8 else set())
    assert len(masked) == n
    for i in range(n):
        assert masked[i] == (value[i] if i in keep else "*")


@given(st.text(alphabet="0123456789-+ ()", min_size=1, max_size=40) | st.text(max_size=40))
def test_masked_phones_keep_only_their_ends(value):
    masked = mask_phone(value)
    if not value:
        assert masked == value
        return
    n = len(value)
    keep = _kept(n, 3, 4) if n >= 11 else (_kept(n, 0, 4) if n >= 8 else set())
    assert len(masked) == n
    for i in range(n):
        assert masked[i] == (value[i] if i in keep else "*")
    # the middle digits never appear where they stood
    assert all(masked[i] == "*" for i in range(n) if i not in keep)


# -- the rule --------------------------------------------------------------------------

@pytest.fixture
def people(users):
    for name, roles in {"legal1": ["legal"], "risk": ["risk_manager"], "head": ["dept_head"],
                        "clerk": ["back_office"], "owner": ["process_owner"]}.items():
        users[name] = create_user(name, PASSWORD, roles)
    return users


def test_rule_per_role(app, serviced, people):  # noqa: F811
    loan = serviced()
    expect = {"plo": (True, True, True), "legal1": (True, True, False),
              "collector": (False, True, True), "clerk": (False, True, True),
              "compliance": (False, False, True), "risk": (False, False, True),
              "head": (False, False, True), "admin": (False, False, False),
              "owner": (False, False, False),
              "am": (True, True, False),    # their own borrower
              "am2": (False, False, False)}  # not theirs
    for name, (id_full, phone_full, reveals) in expect.items():
        user = people[name]
        assert (sees_in_full(user, ID_NUMBER, loan), sees_in_full(user, PHONE, loan),
                may_reveal(user)) == (id_full, phone_full, reveals), name
    assert set(RULES) == set(__import__("accounts.roles").roles.ROLES)


def test_readme_table_matches_the_rules():
    text = open("README.md", encoding="utf-8").read()
    section = text.split("## Personal data (PIPL)")[1].split("\n## ")[0]
    for role, (id_rule, phone_rule, reveals) in RULES.items():
        row = next(line for line in section.splitlines() if f"`{role}`" in line)
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2:5] == [id_rule, phone_rule, "yes" if reveals else "no"], role


# -- the case page: the partial and the filters ----------------------------------------

def _partial(app, user, loan, field=None):
    with app.test_request_context("/", headers=EN):
        login_user(user)
        if field:
            revealed().add(field)
        return render_template_string(PARTIAL, loan=loan)


def test_partial_masks_and_offers_the_reveal_per_role(app, serviced, people):  # noqa: F811
    loan = serviced()
    collector = _partial(app, people["collector"], loan)
    assert "110105********002X" in collector and ID not in collector
    assert PHONE_NO in collector  # collectors call
    assert collector.count('name="reason"') == 1  # only the masked ID offers "Show"
    assert 'name="field" value="borrower.id_number"' in collector and "required" in collector
    compliance = _partial(app, people["compliance"], loan)
    assert "138****8000" in compliance and PHONE_NO not in compliance
    assert compliance.count('name="reason"') == 2
    admin = _partial(app, people["admin"], loan)
    assert ID not in admin and 'name="reason"' not in admin  # masked, no reveal
    plo = _partial(app, people["plo"], loan)
    assert ID in plo and PHONE_NO in plo and 'name="reason"' not in plo
    shown = _partial(app, people["compliance"], loan, field="borrower.id_number")
    assert ID in shown and PHONE_NO not in shown  # that one value only


def test_filters(app, serviced, people):  # noqa: F811
    loan = serviced()
    with app.test_request_context("/"):
        login_user(people["risk"])
        out = render_template_string(
            "{{ id|pii_id(current_user, loan) }} {{ p|pii_phone(current_user, loan) }} "
            "{{ d|pii_phone }}", id=ID, p=PHONE_NO, loan=loan,
            d={"type": "home", "value": "13912345678"})
    assert out == "110105********002X 138****8000 home · 139****5678"


# -- the reveal ------------------------------------------------------------------------

def _records(loan):
    contact = Contact(loan_id=loan.id, name="李四", relationship="brother", phone=CONTACT_PHONE)
    guarantor = Guarantor(loan_id=loan.id, name="担保人甲", id_number=GUARANTOR_ID,
                          phone="13700000002")
    entry = ContactLogEntry(loan_id=loan.id, kind="call", number="13600000003")
    db.session.add_all([contact, guarantor, entry])
    db.session.commit()
    return contact, guarantor, entry


def _reveals():
    return AuditEvent.query.filter_by(action="pii.revealed").order_by(AuditEvent.id).all()


def test_reveal_needs_a_reason_and_is_audited_without_value(app, serviced, people):  # noqa: F811
    loan = serviced()
    contact, guarantor, _ = _records(loan)
    client = app.test_client()
    login(client, "compliance")
    url = f"/cases/{loan.loan_no}/reveal"
    for reason in ("", "  ", "abc"):
        refused = client.post(url, data={"field": "borrower.id_number", "reason": reason},
                              headers=EN)
        assert refused.status_code == 400
        assert "Give a reason of 5 to 500 characters" in refused.get_data(as_text=True)
    assert _reveals() == []
    for field in ("borrower.nothing", "borrower.phone.7", "contact.999.phone",
                  "guarantor.x.id_number", "__class__"):
        assert client.post(url, data={"field": field, "reason": "complaint 123"},
                           headers=EN).status_code == 400
    assert _reveals() == []
    ok = client.post(url, data={"field": f"guarantor.{guarantor.id}.id_number",
                                "reason": "Court filing  check"}, headers=EN)
    assert ok.status_code == 200 and ok.headers["Cache-Control"] == "private, no-store"
    (event,) = _reveals()
    assert event.actor_id == people["compliance"].id and event.case_id == loan.id
    assert event.data == {"loan_no": loan.loan_no, "field": f"guarantor.{guarantor.id}.id_number",
                          "kind": "id_number", "reason": "Court filing check"}
    # the value itself is nowhere in the audit log
    for e in AuditEvent.query.filter(AuditEvent.action != "case.created"):
        assert GUARANTOR_ID not in str(e.data)


def test_reveal_shows_the_value_for_that_response_only(app, serviced, people):  # noqa: F811
    loan = serviced()
    contact, _, entry = _records(loan)
    with app.test_request_context("/", headers=EN):
        login_user(people["risk"])
        assert reveal(loan, people["risk"], f"contact.{contact.id}.phone",
                      "called back by the bank") == CONTACT_PHONE
        page = render_template_string(
            '{% from "cases/_reveal.html" import pii %}'
            '{{ pii(c.phone, "phone", loan, "contact." ~ c.id ~ ".phone") }}|'
            '{{ pii(e.number, "phone", loan, "contact_log." ~ e.id ~ ".number") }}',
            loan=loan, c=contact, e=entry)
        assert CONTACT_PHONE in page and "13600000003" not in page
    with app.test_request_context("/", headers=EN):  # the next response: masked again
        login_user(people["risk"])
        assert "contact.%s.phone" % contact.id not in revealed()


def test_reveal_refused_for_roles_that_may_not(app, serviced, people):  # noqa: F811
    loan = serviced()
    client = app.test_client()
    login(client, "admin")
    response = client.post(f"/cases/{loan.loan_no}/reveal",
                           data={"field": "borrower.id_number", "reason": "just curious"},
                           headers=EN)
    assert response.status_code == 403 and _reveals() == []
    assert AuditEvent.query.filter_by(action="permission.denied").count() == 1
    with app.test_request_context("/"):
        with pytest.raises(NotAllowed):
            reveal(loan, people["owner"], "borrower.id_number", "just curious")
    login(client, "am2")  # may not see the case at all
    assert client.post(f"/cases/{loan.loan_no}/reveal",
                       data={"field": "borrower.id_number", "reason": "just curious"}
                       ).status_code == 403
    assert _reveals() == []


def test_reveals_are_capped_per_hour(app, serviced, people):  # noqa: F811
    loan = serviced()
    app.config["PII_REVEALS_PER_HOUR"] = 2
    try:
        with app.test_request_context("/"):
            for _ in range(2):
                reveal(loan, people["head"], "borrower.id_number", "verification")
            with pytest.raises(InvalidData) as capped:
                reveal(loan, people["head"], "borrower.id_number", "verification")
        assert capped.value.code == "pii_rate_limited" and len(_reveals()) == 2
    finally:
        del app.config["PII_REVEALS_PER_HOUR"]


# -- exports and the API ---------------------------------------------------------------

def test_csv_export_is_masked(app, serviced, people):  # noqa: F811
    loan = serviced()
    client = app.test_client()
    for name, json_column in (("compliance", True), ("risk", False)):
        login(client, name)
        response = client.get(f"/compliance/search.csv?loan={loan.loan_no}", headers=EN)
        body = response.data.decode("utf-8-sig")
        assert response.status_code == 200 and ID not in body and ID_MIDDLE not in body
        assert PHONE_NO not in body and "110105********002X" in body
        rows = list(csv.reader(io.StringIO(body)))
        header, created = rows[0], next(r for r in rows[1:] if r[3] == "case.created")
        assert bool(created[header.index("Details (JSON)")]) == json_column
        details = created[header.index("Details")]
        assert "ID number: 110105********002X" in details and "Installment loan" in details


def pdf_text(pdf):
    """The text of a reportlab PDF written with the STSong-Light CID font (UTF-16BE strings
    in the content streams)."""
    text = []
    for raw in re.findall(rb"\bstream\r?\n(.*?)\r?\n?endstream", pdf, re.S):
        raw = raw.strip()
        if raw.endswith(b"~>"):  # reportlab: /Filter [/ASCII85Decode /FlateDecode]
            raw = base64.a85decode(raw[:-2])
        try:
            content = zlib.decompress(raw)
        except zlib.error:
            content = raw
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", content, re.S):
            data = re.sub(rb"\\([0-7]{1,3}|.)", lambda m: bytes([int(m.group(1), 8)])
                          if m.group(1)[:1].isdigit() else {b"n": b"\n", b"r": b"\r",
                                                            b"t": b"\t"}.get(m.group(1),
                                                                             m.group(1)),
                          literal, flags=re.S)
            text.append(data.decode("utf-16-be", errors="replace"))
    return "\n".join(text)


def test_pdf_dossier_is_masked_readable_with_every_glyph(app, serviced, people):  # noqa: F811
    from compliance.pdf import _has_glyph
    loan = serviced()
    client = app.test_client()
    login(client, "compliance")
    zh = {"Accept-Language": "zh-CN"}
    text = pdf_text(client.get(f"/cases/{loan.loan_no}/dossier.pdf", headers=zh).data)
    assert "\ufffd" not in text and "·" not in text and "—" not in text
    assert all(_has_glyph(ch) for ch in text if not ch.isspace()), \
        {ch for ch in text if not _has_glyph(ch)}
    for expected in ("贷款编号", "借款人", "身份证号", "张伟", "110105********002X",
                     "138****8000", "￥300,000.00", "4.35%", "核对结果: 完整"):
        assert expected in text, expected
    assert ID not in text and PHONE_NO not in text
    assert "bpmn_id" not in text and "{'" not in text and "\\u" not in text
    login(client, "legal1")  # files in court: sees the ID in full
    text = pdf_text(client.get(f"/cases/{loan.loan_no}/dossier.pdf", headers=zh).data)
    assert ID in text and PHONE_NO in text


def test_api_masks_per_the_tokens_user(app, serviced, people, token_for):  # noqa: F811
    loan = serviced()
    client = app.test_client()
    url = f"/api/v1/cases/{loan.loan_no}"
    for name, id_full, phone_full in (("plo", True, True), ("collector", False, True),
                                      ("compliance", False, False)):
        headers = token_for(name)
        borrower = client.get(url, headers=headers).get_json()["borrower"]
        assert (borrower["id_number"] == ID, borrower["phones"] == [PHONE_NO]) == (
            id_full, phone_full), name
        if not id_full:
            assert borrower["id_number"] == "110105********002X"
        history = client.get(url + "/history", headers=headers).get_json()["events"]
        created = next(e for e in history if e["action"] == "case.created")
        assert (ID in str(created["data"])) == id_full, name


def test_mask_data_at_any_depth(app, serviced, people):  # noqa: F811
    loan = serviced()
    data = {"borrower": {"id_number": ID, "phones": [PHONE_NO]},
            "contacts": [{"phone": CONTACT_PHONE}], "data": {"number_called": PHONE_NO},
            "amount": "1.00"}
    masked = mask_data(data, people["risk"], loan)
    assert masked == {"borrower": {"id_number": "110105********002X", "phones": ["138****8000"]},
                      "contacts": [{"phone": "139****0001"}],
                      "data": {"number_called": "138****8000"}, "amount": "1.00"}
    assert data["borrower"]["id_number"] == ID  # a copy


def test_case_page_masks_per_role_and_reveals_with_a_reason(app, serviced, people):  # noqa: F811
    """The case page itself: masked for a risk manager with a reveal form, in full for the
    post-loan officer; a reveal through the page shows that one value, audited."""
    loan = serviced()
    client = app.test_client()
    login(client, "risk")
    page = client.get(f"/cases/{loan.loan_no}", headers=EN).get_data(as_text=True)
    assert ID not in page and ID_MIDDLE not in page and PHONE_NO not in page
    assert mask_id_number(ID) in page and mask_phone(PHONE_NO) in page
    assert 'name="field" value="borrower.id_number"' in page
    shown = client.post(f"/cases/{loan.loan_no}/reveal", headers=EN, data={
        "field": "borrower.id_number", "reason": "checking the court filing",
        "csrf_token": csrf_from(page)})
    assert shown.status_code == 200 and ID in shown.get_data(as_text=True)
    assert PHONE_NO not in shown.get_data(as_text=True)  # only the value asked for
    assert len(_reveals()) == 1
    officer = app.test_client()
    login(officer, "plo")
    page = officer.get(f"/cases/{loan.loan_no}", headers=EN).get_data(as_text=True)
    assert ID in page and PHONE_NO in page and 'name="field"' not in page


def test_a_task_page_masks_the_phones_it_shows_for_the_role(app, overdue, staff):  # noqa: F811
    """The phone collection task lists the contacts with their numbers: in full for the
    collector who calls them, masked for a department head looking at the task."""
    from tests.test_collection import ready
    from tests.test_contact_rules import PEOPLE, SPOUSE
    loan = overdue(**PEOPLE)
    task = ready(loan, "phone_collection")
    collector = app.test_client()
    login(collector, "collector")
    assert SPOUSE in collector.get(f"/tasks/{task.id}", headers=EN).get_data(as_text=True)
    leader = app.test_client()
    login(leader, "leader")
    page = leader.get(f"/tasks/{task.id}", headers=EN).get_data(as_text=True)
    assert SPOUSE not in page and mask_phone(SPOUSE) in page


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True), st.from_regex(r"\d{17}[0-9X]", fullmatch=True),
       st.text(alphabet="张王 ，；:()（）-", max_size=6))
def test_numbers_inside_text_are_masked(phone, id_number, glue):
    text = f"{glue}{phone}{glue} {id_number}{glue}+86 {phone}"
    masked = mask_text(text, user=_Nobody(), loan=None)
    assert phone not in masked and id_number not in masked
    assert mask_phone(phone) in masked and mask_id_number(id_number) in masked


class _Nobody:
    """A user without roles: sees no personal data in full."""
    roles = frozenset()
    id = None
