"""Loan intake: the full loan through the API, idempotency on the loan number, the CSV import
and the staff form."""
import copy
import threading
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from cases.intake import differences, parse_intake, resident_id_ok, uscc_ok
from cases.models import Borrower, Collateral, Contact, Guarantor, Loan
from ledger.models import Installment
from tests.conftest import loan_payload, login
from workflows.errors import InvalidData
from workflows.models import ProcessDefinition, ProcessInstance

USCC = "91350100M000100Y43"          # a valid unified social credit code
RESIDENT_ID = "11010519491231002X"   # a valid resident ID number (check character X)


def full_payload(loan_no="F-1", **overrides):
    body = {
        "loan_no": loan_no, "product": "installment", "principal": "300000",
        "interest_rate": "0.06", "disbursed_on": "2026-03-02", "maturity_on": "2026-06-02",
        "account_manager": "am", "purpose": "working capital",
        "repayment_account": "6222 0210 0101 2345",
        "borrower": {"kind": "company", "name": "杭州明远贸易有限公司", "id_number": USCC,
                     "phones": ["13800000000", "0571-88881234"],
                     "addresses": ["杭州市西湖区文三路 1 号"]},
        "contacts": [{"name": "王芳", "relationship": "spouse", "phone": "13900000000",
                      "address": "杭州市上城区", "knows_about_loan": True},
                     {"name": "李强", "relationship": "brother", "phone": "13700000000"}],
        "guarantors": [{"kind": "person", "name": "张伟", "id_number": RESIDENT_ID,
                        "phone": "13600000000", "address": "北京市朝阳区"}],
        "collateral": [{"kind": "mortgage", "description": "商铺一间", "location": "杭州市",
                        "area": "120.5", "valuation": "800000",
                        "registration_no": "浙(2024)杭州市不动产权第0000001号"}],
        "schedule": [{"due_on": "2026-04-02", "principal": "100000", "interest": "1500"},
                     {"due_on": "2026-05-02", "principal": "100000", "interest": "1000"},
                     {"due_on": "2026-06-02", "principal": "100000", "interest": "500"}],
    }
    body.update(overrides)
    return body


def handovers(loan):
    return (ProcessInstance.query.join(ProcessDefinition)
            .filter(ProcessInstance.case_id == loan.id,
                    ProcessDefinition.process_key == "handover").count())


def post(app, token_for, body, user="admin"):
    return app.test_client().post("/api/v1/loans", json=body, headers=token_for(user))


def test_check_characters():
    assert resident_id_ok(RESIDENT_ID) and resident_id_ok("110101199003074477")
    assert not resident_id_ok("110101199003074478")   # wrong check digit
    assert not resident_id_ok("110101199002304471")   # 30 February
    assert not resident_id_ok("11010119900307447")    # 17 characters
    assert uscc_ok(USCC) and uscc_ok("91110000802100433B")
    assert not uscc_ok("91350100M000100Y44")          # wrong check character
    assert not uscc_ok("91350100M000100I43")          # I is not used


def test_full_payload_creates_everything(app, deployed, users, token_for):
    response = post(app, token_for, full_payload())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["product"], body["borrower"]["id_number"], body["contacts"][0]["name"],
            body["guarantors"][0]["name"], body["collateral"][0]["area"]) == (
        "installment", USCC, "王芳", "张伟", "120.50")
    assert [(i["seq"], i["principal"]) for i in body["schedule"]] == [
        (1, "100000.00"), (2, "100000.00"), (3, "100000.00")]
    loan = Loan.query.filter_by(loan_no="F-1").one()
    assert (loan.product, loan.principal, loan.interest_rate, loan.purpose,
            loan.repayment_account, loan.borrower_name) == (
        "installment", Decimal("300000.00"), Decimal("0.06"), "working capital",
        "6222 0210 0101 2345", "杭州明远贸易有限公司")
    borrower = Borrower.query.one()
    assert loan.borrower_id == borrower.id
    assert (borrower.kind, borrower.id_number, borrower.phones, borrower.addresses) == (
        "company", USCC, ["13800000000", "0571-88881234"], ["杭州市西湖区文三路 1 号"])
    contacts = Contact.query.filter_by(loan_id=loan.id).order_by(Contact.id).all()
    assert [(c.name, c.relationship, c.knows_about_loan) for c in contacts] == [
        ("王芳", "spouse", True), ("李强", "brother", False)]
    guarantor = Guarantor.query.filter_by(loan_id=loan.id).one()
    assert (guarantor.name, guarantor.id_number, guarantor.phone) == (
        "张伟", RESIDENT_ID, "13600000000")
    collateral = Collateral.query.filter_by(loan_id=loan.id).one()
    assert (collateral.kind, collateral.area, collateral.valuation) == (
        "mortgage", Decimal("120.50"), Decimal("800000.00"))
    installments = Installment.query.filter_by(loan_id=loan.id).order_by(Installment.seq).all()
    assert [(i.seq, i.due_on.isoformat(), i.principal_due, i.interest_due)
            for i in installments] == [
        (1, "2026-04-02", Decimal("100000.00"), Decimal("1500.00")),
        (2, "2026-05-02", Decimal("100000.00"), Decimal("1000.00")),
        (3, "2026-06-02", Decimal("100000.00"), Decimal("500.00"))]
    # The canonical payload: JSON-safe, normalized.
    assert loan.intake["principal"] == "300000.00"
    assert loan.intake["interest_rate"] == "0.060000"
    assert loan.intake["collateral"][0]["area"] == "120.50"
    assert loan.intake["contacts"][1]["knows_about_loan"] is False
    assert handovers(loan) == 1
    assert AuditEvent.query.filter_by(action="case.created", case_id=loan.id).one().data[
        "borrower"]["id_number"] == USCC


def test_minimal_payload_gets_one_installment_at_maturity(new_loan):
    loan = new_loan()  # borrower_name only, no schedule
    assert (loan.borrower.kind, loan.borrower.name) == ("person", "杭州明远贸易有限公司")
    (only,) = loan.installments
    # 500 000 × 4.35 % × 184 days / 365, rounded to cents.
    assert (only.seq, only.due_on.isoformat(), only.principal_due, only.interest_due) == (
        1, "2026-09-02", Decimal("500000.00"), Decimal("10964.38"))
    assert loan.intake["schedule"] == [{"due_on": "2026-09-02", "principal": "500000.00",
                                        "interest": "10964.38"}]


def test_bad_id_numbers_are_all_reported(app, deployed, users, token_for):
    body = full_payload(borrower={"kind": "company", "name": "明远", "id_number": RESIDENT_ID,
                                  "phones": ["not a phone"]},
                        guarantors=[{"kind": "person", "name": "张伟",
                                     "id_number": "110101199003074478"},
                                    {"kind": "company", "name": "担保公司",
                                     "id_number": "91350100M000100Y44"},
                                    {"name": "李四", "id_number": USCC}],
                        colateral=[])
    response = post(app, token_for, body)
    assert response.status_code == 400
    errors = response.get_json()["field_errors"]
    assert set(errors) == {"borrower.id_number", "borrower.phones[0]", "guarantors[0].id_number",
                           "guarantors[1].id_number", "guarantors[2].id_number", "colateral"}
    assert "GB 32100" in errors["borrower.id_number"][0]
    assert "GB 11643" in errors["guarantors[0].id_number"][0]
    assert Loan.query.count() == 0
    # A lower-case check character is accepted and stored in upper case.
    fine = full_payload(guarantors=[{"name": "张伟", "id_number": RESIDENT_ID.lower()}])
    assert post(app, token_for, fine).status_code == 201
    assert Guarantor.query.one().id_number == RESIDENT_ID


def test_schedule_must_add_up_and_run_to_maturity(app, deployed, users, token_for):
    def errors_of(schedule, **more):
        with pytest.raises(InvalidData) as err:
            parse_intake(full_payload(schedule=schedule, **more))
        return err.value.field_errors

    short = errors_of([{"due_on": "2026-04-02", "principal": "100000"},
                       {"due_on": "2026-06-02", "principal": "150000"}])
    assert set(short) == {"schedule"}
    assert "add up" in short["schedule"][0]
    muddled = errors_of([{"due_on": "2026-03-01", "principal": "100000", "interest": "1"},
                         {"due_on": "2026-05-02", "principal": "100000", "interest": "1"},
                         {"due_on": "2026-04-02", "principal": "100000", "interest": "x"},
                         {"due_on": "2026-07-02", "principal": "0", "interest": "0"}])
    assert set(muddled) == {"schedule[0].due_on", "schedule[2].due_on", "schedule[2].interest",
                            "schedule[3].due_on", "schedule[3].principal"}
    not_at_maturity = errors_of([{"due_on": "2026-05-02", "principal": "300000"}])
    assert "maturity" in not_at_maturity["schedule[0].due_on"][0]
    assert set(errors_of([])) == {"schedule"}
    # The API answers with every error at once.
    response = post(app, token_for, full_payload(schedule=[
        {"due_on": "2026-06-02", "principal": "299999.99", "interest": "1"}], principal=""))
    assert set(response.get_json()["field_errors"]) == {"principal"}
    response = post(app, token_for, full_payload(schedule=[
        {"due_on": "2026-06-02", "principal": "299999.99", "interest": "1"}]))
    assert response.status_code == 400 and set(response.get_json()["field_errors"]) == {
        "schedule"}


def test_same_loan_again_returns_the_same_case(app, deployed, users, token_for):
    first = post(app, token_for, full_payload())
    assert first.status_code == 201
    # Equal once normalized: numbers and case of the check character written differently.
    again = full_payload(principal=300000, interest_rate="0.060")
    again["borrower"] = dict(again["borrower"], id_number=USCC.lower())
    second = post(app, token_for, again, user="plo")
    assert second.status_code == 200, second.get_json()
    assert second.get_json()["loan_no"] == "F-1"
    assert second.get_json()["open_tasks"] == first.get_json()["open_tasks"]
    loan = Loan.query.one()
    assert handovers(loan) == 1
    repeated = AuditEvent.query.filter_by(action="case.intake_repeated").one()
    assert repeated.case_id == loan.id and repeated.actor_id == users["plo"].id


def test_different_loan_under_the_same_number_is_409(app, deployed, users, token_for):
    assert post(app, token_for, full_payload()).status_code == 201
    body = full_payload(interest_rate="0.07")
    body["borrower"] = dict(body["borrower"], phones=["13800000000"])
    body["contacts"] = copy.deepcopy(body["contacts"])
    body["contacts"][1]["knows_about_loan"] = True
    response = post(app, token_for, body)
    assert response.status_code == 409
    assert response.get_json()["error"] == "loan F-1 already exists with different data"
    assert response.get_json()["differences"] == [
        "interest_rate", "borrower.phones", "contacts[1].knows_about_loan"]
    fewer = post(app, token_for, full_payload(guarantors=[]))
    assert fewer.get_json()["differences"] == ["guarantors"]
    assert Loan.query.count() == 1 and handovers(Loan.query.one()) == 1
    assert AuditEvent.query.filter_by(action="case.intake_repeated").count() == 0


def test_differences():
    old = {"a": "1", "b": {"c": ["x"], "d": "2"}, "e": [{"f": 1}, {"f": 2}]}
    new = {"a": "1", "b": {"c": ["y"], "d": "3"}, "e": [{"f": 1}, {"f": 3}]}
    assert differences(old, new) == ["b.c", "b.d", "e[1].f"]
    assert differences(old, dict(new, e=[{"f": 1}])) == ["b.c", "b.d", "e"]
    assert differences(old, old) == []


HEADER = ("loan_no,product,borrower_kind,borrower_name,borrower_id_number,borrower_phone,"
          "borrower_address,principal,interest_rate,disbursed_on,maturity_on,account_manager,"
          "purpose,repayment_account,schedule\n")
GOOD_1 = (f"C-1,term,person,张伟,{RESIDENT_ID},13800000000;0571-88881234,杭州市,100000,0.05,"
          "2026-03-02,2026-09-02,am,stock,6222000011112222,\n")
GOOD_2 = (f"C-2,installment,company,明远贸易,{USCC},13900000000,,200000,0.06,2026-03-02,"
          "2026-05-02,am2,,,2026-04-02:100000:1000;2026-05-02:100000:500\n")
BAD_ID = "C-3,term,person,李四,110101199003074478,,,100000,0.05,2026-03-02,2026-09-02,am,,,\n"
BAD_SCHEDULE = ("C-4,installment,person,王五,,,,100000,0.05,2026-03-02,2026-05-02,plo,,,"
                "2026-04-02:50000:100;2026-05-02\n")


@pytest.fixture
def import_csv(app, tmp_path):
    def run(text, *options, encoding="utf-8"):
        path = tmp_path / "loans.csv"
        path.write_bytes(text.encode(encoding))
        return app.test_cli_runner().invoke(args=["loans", "import", str(path), *options])
    return run


def test_csv_import_is_all_or_nothing(deployed, users, import_csv):
    result = import_csv(HEADER + GOOD_1 + BAD_ID + GOOD_2 + BAD_SCHEDULE)
    assert result.exit_code == 1
    assert "line 3: borrower_id_number: Not a valid resident ID number" in result.stderr
    assert "line 5: " in result.stderr
    line_5 = next(line for line in result.stderr.splitlines() if line.startswith("line 5:"))
    assert "schedule[1]" in line_5 and "account_manager" in line_5
    assert "imported 0, unchanged 0, errors 2" in result.stdout
    assert Loan.query.count() == 0
    assert AuditEvent.query.filter(AuditEvent.case_id.isnot(None)).count() == 0

    result = import_csv(HEADER + GOOD_1 + BAD_ID + GOOD_2 + BAD_SCHEDULE, "--skip-errors")
    assert result.exit_code == 0, result.output
    assert "imported 2, unchanged 0, errors 2" in result.stdout
    assert "line 3:" in result.stderr and "line 5:" in result.stderr
    c1 = Loan.query.filter_by(loan_no="C-1").one()
    assert c1.borrower.phones == ["13800000000", "0571-88881234"]
    assert handovers(c1) == 1 and len(c1.installments) == 1
    c2 = Loan.query.filter_by(loan_no="C-2").one()
    assert (c2.borrower.kind, c2.account_manager.username) == ("company", "am2")
    assert [(i.seq, str(i.interest_due)) for i in c2.installments] == [(1, "1000.00"),
                                                                        (2, "500.00")]


def test_csv_import_unchanged_and_conflicting_rows(deployed, users, import_csv):
    assert import_csv(HEADER + GOOD_1).exit_code == 0
    again = import_csv(HEADER + GOOD_1 + GOOD_2 + GOOD_2)
    assert again.exit_code == 0, again.output
    assert "imported 1, unchanged 2, errors 0" in again.stdout
    assert Loan.query.count() == 2
    assert AuditEvent.query.filter_by(action="case.intake_repeated").count() == 1
    changed = GOOD_1.replace(",100000,0.05,", ",120000,0.05,")
    conflict = import_csv(HEADER + changed + GOOD_2.replace("C-2", "C-5"))
    assert conflict.exit_code == 1
    assert "line 2: loan C-1 already exists with different data: principal, schedule[0]" \
        in conflict.stderr
    assert Loan.query.count() == 2


def test_csv_header_and_encoding(deployed, users, import_csv):
    missing = import_csv("loan_no,borrower_name,pricipal\nX-1,张伟,1\n")
    assert missing.exit_code == 1
    assert "line 1:" in missing.stderr and "unknown column 'pricipal'" in missing.stderr
    assert "missing column 'principal'" in missing.stderr
    # As Excel saves a CSV on a Chinese Windows.
    gbk = import_csv(HEADER + GOOD_1, encoding="gb18030")
    assert gbk.exit_code == 0, gbk.output
    assert Loan.query.one().borrower_name == "张伟"
    extra = import_csv(HEADER + GOOD_2.replace("\n", ",surplus\n"))
    assert extra.exit_code == 1 and "line 2: row: More cells" in extra.stderr


def web_form(**overrides):
    form = {"loan_no": "W-1", "product": "term", "borrower_kind": "company",
            "borrower_name": "明远贸易", "borrower_id_number": USCC,
            "borrower_phone": "13800000000; 0571-88881234", "borrower_address": "杭州市文三路 1 号",
            "principal": "100000", "interest_rate": "0.05", "disbursed_on": "2026-03-02",
            "maturity_on": "2026-09-02", "account_manager": "am", "purpose": "stock",
            "repayment_account": "6222000011112222"}
    form.update(overrides)
    return form


def test_web_form_with_a_borrower(app, deployed, users):
    client = app.test_client()
    login(client, "admin")
    client.post("/language/en")
    page = client.get("/cases/new").get_data(as_text=True)
    assert 'name="borrower_id_number"' in page and 'name="repayment_account"' in page
    refused = client.post("/cases/new", data=web_form(borrower_id_number=RESIDENT_ID))
    assert refused.status_code == 200
    html = refused.get_data(as_text=True)
    assert "Not a valid unified social credit code" in html
    assert Loan.query.count() == 0

    created = client.post("/cases/new", data=web_form())
    assert created.status_code == 302
    loan = Loan.query.one()
    assert (loan.product, loan.purpose, loan.repayment_account) == (
        "term", "stock", "6222000011112222")
    assert (loan.borrower.kind, loan.borrower.id_number, loan.borrower.phones,
            loan.borrower.addresses) == ("company", USCC, ["13800000000", "0571-88881234"],
                                         ["杭州市文三路 1 号"])
    assert len(loan.installments) == 1

    again = client.post("/cases/new", data=web_form(), follow_redirects=True)
    assert "already registered with the same data" in again.get_data(as_text=True)
    assert Loan.query.count() == 1 and handovers(loan) == 1
    different = client.post("/cases/new", data=web_form(principal="90000"))
    assert different.status_code == 200
    html = different.get_data(as_text=True)
    assert "A loan with this number already exists." in html
    assert "Differs from the loan already registered under this number." in html


def test_web_form_errors_in_chinese(app, deployed, users):
    client = app.test_client()
    login(client, "admin")
    refused = client.post("/cases/new", data=web_form(borrower_id_number="123"),
                          headers={"Accept-Language": "zh-CN"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 200 and 'class="error invalid-feedback"' in html
    assert Loan.query.count() == 0


def test_same_loan_posted_twice_at_once(app, deployed, users, token_for):
    headers, results = token_for("admin"), []
    barrier = threading.Barrier(2)

    def send():
        with app.test_client() as client:
            barrier.wait()
            results.append(client.post("/api/v1/loans", json=full_payload(),
                                       headers=headers).status_code)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 201]
    assert Loan.query.count() == 1 and handovers(Loan.query.one()) == 1
