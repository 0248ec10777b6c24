"""The case in full: the case page's sections and the staff records (contacts, contact log,
documents) with their permissions."""
import datetime as dt
import hashlib
import io
import zipfile
from decimal import Decimal

import pytest

from accounts.operations import create_user
from audit.models import AuditEvent
from cases.models import (CaseProblem, Collateral, Contact, ContactLogEntry, Document,
                          Guarantor, Loan, StageChange)
from extensions import db
from guarantees.models import CollateralValuation
from ledger.models import Repayment
from tests.conftest import login

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64
CONTACT = {"contact-name": "王芳", "contact-relationship": "spouse",
           "contact-phone": "138 0013 8000", "contact-address": "杭州市西湖区文三路 1 号",
           "contact-knows_about_loan": "y"}
CALL = {"log-kind": "call", "log-number": "13800138000", "log-answered_by": "borrower",
        "log-outcome": "promised_to_pay", "log-note": "will pay on Friday",
        "log-promised_on": "2026-03-06", "log-promised_amount": "20000.00"}


@pytest.fixture
def docs_dir(app, tmp_path, monkeypatch):
    folder = tmp_path / "documents"
    monkeypatch.setitem(app.config, "DOCUMENTS_DIR", str(folder))
    return folder


def client_for(app, username):
    client = app.test_client()
    login(client, username)
    return client


def upload(client, loan_no, content, filename, kind="contract"):
    return client.post(f"/cases/{loan_no}/documents", headers=EN,
                       data={"document-kind": kind,
                             "document-file": (io.BytesIO(content), filename)},
                       content_type="multipart/form-data")


def events(action):
    return AuditEvent.query.filter_by(action=action).all()


def close(loan):
    loan.status = "closed"
    db.session.commit()


def test_case_page_shows_the_case_in_full(app, new_loan, users):
    loan = new_loan()
    loan.dpd, loan.stage, loan.stage_since = 5, "dpd_4_7", dt.date(2026, 3, 1)
    db.session.add_all([
        Contact(loan_id=loan.id, name="李四", relationship="brother", phone="13900000000",
                knows_about_loan=False),
        Guarantor(loan_id=loan.id, name="担保人甲", id_number="330100199001011234"),
        Repayment(loan_id=loan.id, external_ref="CB-0001", amount=Decimal("1234.56"),
                  paid_at=dt.datetime(2026, 2, 27, 2, tzinfo=dt.timezone.utc),
                  interest=Decimal("1234.56")),
        ContactLogEntry(loan_id=loan.id, kind="sms", number="13800138000",
                        note="reminder sent", user_id=users["collector"].id),
        StageChange(loan_id=loan.id, changed_on=dt.date(2026, 3, 1), from_stage="dpd_1_3",
                    to_stage="dpd_4_7", dpd=4),
        CaseProblem(loan_id=loan.id, kind="calendar_year_missing", year=2027),
        CaseProblem(loan_id=loan.id, kind="calendar_year_missing", year=2031,
                    resolved_at=dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)),
    ])
    # Collateral as intake writes it: the item and its first valuation.
    item = Collateral(loan_id=loan.id, kind="mortgage", description="厂房", location="萧山",
                      area=Decimal("1200.50"), valuation=Decimal("3000000"),
                      registration_no="浙(2024)萧山不动产权第001号")
    db.session.add(item)
    db.session.flush()
    db.session.add(CollateralValuation(collateral_id=item.id, loan_id=loan.id,
                                       value=item.valuation, valued_on=dt.date(2026, 1, 5),
                                       source="intake"))
    db.session.commit()
    response = client_for(app, "plo").get(f"/cases/{loan.loan_no}", headers=EN)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for expected in ('id="open-tasks"', 'id="history"', 'href="#calls"',
                     "Term loan", "DPD 4–7", "Outstanding balance", "李四", "担保人甲",
                     "萧山", "1,200.50", "3,000,000.00", "浙(2024)萧山不动产权第001号",
                     "CB-0001", "1,234.56", "reminder sent", "DPD 1–3",
                     "The working-day calendar of 2027 has not been entered",
                     'id="contact-form"', 'id="log-form"', 'id="document-form"',
                     "PDF, JPEG, PNG, DOCX or XLSX, at most 10 MB."):
        assert expected in html, expected
    assert "calendar of 2031" not in html  # resolved problems are not listed


def test_add_contact(app, new_loan, users):
    loan = new_loan()
    response = client_for(app, "am").post(f"/cases/{loan.loan_no}/contacts", data=CONTACT,
                                          headers=EN, follow_redirects=True)
    assert response.status_code == 200
    assert "Contact 王芳 added." in response.get_data(as_text=True)
    contact = Contact.query.filter_by(loan_id=loan.id).one()
    assert (contact.name, contact.relationship, contact.phone, contact.knows_about_loan) == \
        ("王芳", "spouse", "138 0013 8000", True)
    [event] = events("contact.added")
    assert (event.case_id, event.actor_id) == (loan.id, users["am"].id)
    assert event.data["contact_id"] == contact.id and event.data["knows_about_loan"] is True


@pytest.mark.parametrize("changes, field", [
    ({"contact-name": ""}, "contact-name"),
    ({"contact-name": "   "}, "contact-name"),
    ({"contact-relationship": ""}, "contact-relationship"),
    ({"contact-phone": "call me maybe"}, "contact-phone"),
    ({"contact-phone": "", "contact-address": ""}, "contact-phone"),
    ({"contact-name": "x" * 121}, "contact-name"),
])
def test_bad_contact_is_refused(app, new_loan, users, changes, field):
    loan = new_loan()
    response = client_for(app, "plo").post(f"/cases/{loan.loan_no}/contacts",
                                           data=CONTACT | changes, headers=EN)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Please correct the errors below." in html
    # The form is shown open again, the field marked.
    assert '<details class="record-form" id="contact-form" open>' in html
    assert f'id="{field}"' in html.split('class="field has-error"', 1)[1].split("</div>", 1)[0]
    assert Contact.query.count() == 0 and not events("contact.added")


def test_errors_in_the_users_language(app, new_loan, users):
    loan = new_loan()
    response = client_for(app, "plo").post(f"/cases/{loan.loan_no}/contacts",
                                           data=CONTACT | {"contact-name": "  "}, headers=ZH)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "此字段为必填项。" in html and "请更正以下错误。" in html


def test_log_a_call_with_a_promise(app, new_loan, users):
    loan = new_loan()
    response = client_for(app, "collector").post(f"/cases/{loan.loan_no}/contact-log",
                                                 data=CALL, headers=EN, follow_redirects=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Contact logged." in html and "Promised to pay" in html and "20,000.00" in html
    entry = ContactLogEntry.query.filter_by(loan_id=loan.id).one()
    assert (entry.kind, entry.number, entry.answered_by, entry.outcome, entry.promised_on,
            entry.promised_amount, entry.user_id) == (
        "call", "13800138000", "borrower", "promised_to_pay", dt.date(2026, 3, 6),
        Decimal("20000.00"), users["collector"].id)
    [event] = events("contact.logged")
    assert event.case_id == loan.id and event.actor_id == users["collector"].id
    assert event.data["entry_id"] == entry.id and event.data["promised_amount"] == "20000.00"


def test_log_a_visit_keeps_the_address(app, new_loan, users):
    loan = new_loan()
    visit = {"log-kind": "visit", "log-address": "萧山区市心路 8 号", "log-outcome": "reached",
             "log-answered_by": "妻子", "log-note": "shop closed"}
    client = client_for(app, "collector")
    assert client.post(f"/cases/{loan.loan_no}/contact-log", data=visit).status_code == 302
    html = client.get(f"/cases/{loan.loan_no}", headers=EN).get_data(as_text=True)
    log = html.split('id="contact-log"', 1)[1].split("</table>", 1)[0]
    assert "萧山区市心路 8 号" in log and ">shop closed<" in log and "Visit" in log
    assert events("contact.logged")[0].data["address"] == "萧山区市心路 8 号"


@pytest.mark.parametrize("changes", [
    {"log-kind": "fax"},
    {"log-outcome": "bogus"},
    {"log-number": ""},  # a call needs the number called
    {"log-outcome": ""},  # and an outcome
    {"log-promised_amount": ""},  # a promise needs both
    {"log-promised_on": ""},
    {"log-promised_on": "2026-02-27"},  # in the past
    {"log-promised_on": "not a date"},
    {"log-promised_amount": "-5"},
    {"log-kind": "visit", "log-address": ""},
    {"log-kind": "note", "log-note": "", "log-outcome": "", "log-promised_on": "",
     "log-promised_amount": ""},
])
def test_bad_contact_log_is_refused(app, new_loan, users, changes):
    loan = new_loan()
    response = client_for(app, "collector").post(f"/cases/{loan.loan_no}/contact-log",
                                                 data=CALL | changes, headers=EN)
    assert response.status_code == 400
    assert '<details class="record-form" id="log-form" open>' in response.get_data(as_text=True)
    assert ContactLogEntry.query.count() == 0 and not events("contact.logged")


def test_upload_and_download_a_document(app, new_loan, users, docs_dir):
    loan = new_loan()
    response = upload(client_for(app, "am"), loan.loan_no, PDF, "借款合同.pdf")
    assert response.status_code == 302
    document = Document.query.filter_by(loan_id=loan.id).one()
    assert (document.kind, document.filename, document.content_type, document.size,
            document.sha256, document.uploaded_by_id) == (
        "contract", "借款合同.pdf", "application/pdf", len(PDF),
        hashlib.sha256(PDF).hexdigest(), users["am"].id)
    stored = docs_dir / document.stored_name
    assert stored.read_bytes() == PDF
    assert [p.name for p in docs_dir.iterdir()] == [document.stored_name]
    assert "借款合同" not in document.stored_name and "." not in document.stored_name
    [event] = events("document.uploaded")
    assert event.case_id == loan.id and event.data["sha256"] == document.sha256

    # Listed on the case, and downloadable by anyone who may see the case.
    page = client_for(app, "compliance").get(f"/cases/{loan.loan_no}", headers=EN)
    html = page.get_data(as_text=True)
    url = f"/cases/{loan.loan_no}/documents/{document.id}"
    assert url in html and "借款合同.pdf" in html and "Loan contract" in html
    download = client_for(app, "compliance").get(url)
    assert download.status_code == 200
    assert download.data == PDF
    assert download.mimetype == "application/pdf"
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''%E5%80%9F%E6%AC%BE%E5%90%88%E5%90%8C.pdf" in disposition
    # Not by an account manager of another loan; not under another case's number.
    assert client_for(app, "am2").get(url).status_code == 403
    other = new_loan(loan_no="L-002")
    assert client_for(app, "plo").get(
        f"/cases/{other.loan_no}/documents/{document.id}").status_code == 404


def test_upload_default_directory_is_under_the_instance_path(app, new_loan, users, tmp_path,
                                                            monkeypatch):
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    loan = new_loan()
    assert upload(client_for(app, "plo"), loan.loan_no, PDF, "iou.pdf",
                  kind="iou").status_code == 302
    document = Document.query.one()
    assert (tmp_path / "documents" / document.stored_name).read_bytes() == PDF


@pytest.mark.parametrize("content, filename", [
    (EXE, "invoice.pdf"),  # an executable renamed .pdf
    (EXE, "setup.exe"),
    (PDF, "contract.exe"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "photo.pdf"),  # content and name disagree
    (PDF, "no-extension"),
    (b"PK\x03\x04not really a zip", "sheet.xlsx"),
    (b"", "empty.pdf"),
])
def test_upload_of_a_wrong_type_is_refused(app, new_loan, users, docs_dir, content, filename):
    loan = new_loan()
    response = upload(client_for(app, "plo"), loan.loan_no, content, filename)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert '<details class="record-form" id="document-form" open>' in html
    assert Document.query.count() == 0 and not events("document.uploaded")
    assert not docs_dir.exists() or not any(docs_dir.iterdir())


def test_office_and_image_types_are_accepted(app, new_loan, users, docs_dir):
    def office(part):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            z.writestr("[Content_Types].xml", "<Types/>")
            z.writestr(part, "<x/>")
        return buffer.getvalue()
    loan = new_loan()
    client = client_for(app, "plo")
    files = [(office("word/document.xml"), "report.docx"), (office("xl/workbook.xml"), "a.xlsx"),
             (b"\xff\xd8\xff\xe0" + b"\x00" * 16, "visit.JPG"),
             (b"\x89PNG\r\n\x1a\n" + b"\x00" * 16, "map.png")]
    for content, name in files:
        assert upload(client, loan.loan_no, content, name, kind="other").status_code == 302, name
    assert upload(client, loan.loan_no, office("word/document.xml"), "r.xlsx").status_code == 400
    assert sorted(d.content_type for d in Document.query) == [
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "image/jpeg", "image/png"]


def test_upload_too_big_is_refused(app, new_loan, users, docs_dir, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_DOCUMENT_BYTES", 1024)
    loan = new_loan()
    client = client_for(app, "plo")
    big = PDF + b"0" * 1024
    response = upload(client, loan.loan_no, big, "big.pdf")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "The file is too large." in html
    assert Document.query.count() == 0
    assert upload(client, loan.loan_no, PDF, "small.pdf").status_code == 302
    # A body over the application's MAX_CONTENT_LENGTH, when one is set, gets a message too.
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 2048)
    response = upload(client, loan.loan_no, PDF + b"0" * 4096, "huge.pdf")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/cases/{loan.loan_no}#documents")
    assert Document.query.count() == 1


@pytest.mark.parametrize("role", ["post_loan_officer", "back_office", "collector",
                                  "risk_manager", "dept_head", "legal", "admin"])
def test_roles_that_may_add_records(app, new_loan, users, role):
    loan = new_loan()
    create_user("someone", "secret-pass", [role])
    response = client_for(app, "someone").post(f"/cases/{loan.loan_no}/contacts", data=CONTACT)
    assert response.status_code == 302
    assert Contact.query.count() == 1


def test_compliance_reads_but_may_not_change(app, new_loan, users, docs_dir):
    loan = new_loan()
    client = client_for(app, "compliance")
    page = client.get(f"/cases/{loan.loan_no}").get_data(as_text=True)
    assert "record-form" not in page and "/contacts" not in page
    for response in (client.post(f"/cases/{loan.loan_no}/contacts", data=CONTACT),
                     client.post(f"/cases/{loan.loan_no}/contact-log", data=CALL),
                     upload(client, loan.loan_no, PDF, "x.pdf")):
        assert response.status_code == 403
    assert Contact.query.count() == ContactLogEntry.query.count() == Document.query.count() == 0
    denials = events("permission.denied")
    assert len(denials) == 3 and {e.actor_id for e in denials} == {users["compliance"].id}


def test_process_owner_and_other_account_manager_get_403(app, new_loan, users, docs_dir):
    loan = new_loan()
    create_user("owner", "secret-pass", ["process_owner"])
    for username in ("owner", "am2"):
        client = client_for(app, username)
        assert client.get(f"/cases/{loan.loan_no}").status_code == 403
        for response in (client.post(f"/cases/{loan.loan_no}/contacts", data=CONTACT),
                         client.post(f"/cases/{loan.loan_no}/contact-log", data=CALL),
                         upload(client, loan.loan_no, PDF, "x.pdf")):
            assert response.status_code == 403
    assert Contact.query.count() == ContactLogEntry.query.count() == Document.query.count() == 0


def test_closed_case_is_read_only(app, new_loan, users, docs_dir):
    loan = new_loan()
    close(loan)
    client = client_for(app, "plo")
    page = client.get(f"/cases/{loan.loan_no}", headers=EN).get_data(as_text=True)
    assert "record-form" not in page and 'id="read-only"' in page
    case_url = f"/cases/{loan.loan_no}"
    headers = EN | {"Referer": case_url}
    posts = [lambda: client.post(f"{case_url}/contacts", data=CONTACT, headers=headers),
             lambda: client.post(f"{case_url}/contact-log", data=CALL, headers=headers),
             lambda: client.post(f"{case_url}/documents", headers=headers,
                                 data={"document-kind": "contract",
                                       "document-file": (io.BytesIO(PDF), "x.pdf")},
                                 content_type="multipart/form-data")]
    for post in posts:
        response = post()
        assert response.status_code == 302 and response.headers["Location"].endswith(case_url)
        shown = client.get(case_url, headers=EN).get_data(as_text=True)
        assert ('role="alert">This case is closed: its records can no '
                'longer be changed.') in shown
    assert Contact.query.count() == ContactLogEntry.query.count() == Document.query.count() == 0
    assert not docs_dir.exists() or not any(docs_dir.iterdir())
    assert not events("contact.added") and not events("document.uploaded")


def test_operations_refuse_a_closed_case(app, new_loan, users):
    from cases.records import add_contact
    from workflows.errors import Conflict
    loan = new_loan()
    close(loan)
    with pytest.raises(Conflict):
        add_contact(loan, users["plo"], "王芳", "spouse", "13800138000")
    assert Contact.query.count() == 0 and Loan.query.one().is_closed
