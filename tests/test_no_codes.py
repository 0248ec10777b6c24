"""One language at a time, no codes (issue 13 item 5): after a handover and a collection
escalation walked with the demo's shape of data, every page a user of each role visits, in
zh_CN, shows no process or BPMN id, no code value, no English word and no unformatted money
as visible text (attribute values and URLs are not looked at)."""
import datetime as dt
import re
from pathlib import Path

import pytest
from babel.support import Translations
from lxml import etree, html

from accounts.models import User
from accounts.operations import create_user
from cases.models import (FREQUENCY_LABELS, PRODUCT_LABELS, RISK_GROUP_LABELS, STAGE_LABELS,
                          STATUS_LABELS)
from cases.operations import register_loan
from cases.records import CONTACT_KIND_LABELS, DOCUMENT_KIND_LABELS, OUTCOME_LABELS
from cases.staging import run_daily
from extensions import db
from guarantees.guarantors import record_check
from notices.operations import send as send_notice
from tests.conftest import HANDOVER_DATA, PASSWORD, login
from tests.test_collection import CALL, at, do, staff  # noqa: F401 (fixture)
from tests.test_servicing import three_installment_payload
from workflows.inbox import open_tasks_of_case
from workflows.models import HumanTask
from workflows.tasks import complete_task

ROOT = Path(__file__).resolve().parent.parent
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"

# ASCII words that may stand in a Chinese page: the brand, the other language's name on the
# language switch, units, file formats, keys and abbreviations written in Latin letters.
ALLOWED_WORDS = {"Daihou", "English", "DPD", "LPR", "PDF", "CSV", "SMS", "JSON", "BPMN",
                 "JPEG", "PNG", "DOCX", "XLSX", "M2", "M3", "Ctrl"}
# Built as one "中文 / English" text with the raw situation code by collection/operations.py
# (collection_log_visit), outside this change: reported, left out of the check until fixed.
NAMES = {"am": "王经理", "am2": "李经理", "plo": "赵专员", "plo2": "钱专员", "dual": "孙兼岗",
         "admin": "系统管理员", "collector": "周催收", "compliance": "吴合规", "leader": "郑部长",
         "lawyer": "冯律师", "owner": "陈流程"}


def shipped_ids():
    """Process ids and ids of named elements of the shipped diagrams."""
    ids = set()
    for path in (ROOT / "bpmn").glob("*.bpmn"):
        for el in etree.parse(str(path)).getroot().iter():
            if isinstance(el.tag, str) and etree.QName(el).namespace == BPMN and el.get("id"):
                if etree.QName(el).localname == "process" or el.get("name"):
                    ids.add(el.get("id"))
    return ids


def code_values():
    tables = (STAGE_LABELS, STATUS_LABELS, PRODUCT_LABELS, RISK_GROUP_LABELS, FREQUENCY_LABELS,
              OUTCOME_LABELS, CONTACT_KIND_LABELS, DOCUMENT_KIND_LABELS)
    return {key for table in tables for key in table} | {
        "borrower", "nobody", "spouse", "wilful_default", "propose_visit", "approve"}


OPEN, CLOSE = "\u27e6", "\u27e7"  # around a message the Chinese catalog does not translate yet


@pytest.fixture
def mark_untranslated(monkeypatch):
    """Messages without a Chinese translation come out between ⟦ ⟧: they are the catalog's
    to fill (test_i18n), not codes in a page."""
    original, original_n = Translations.ugettext, Translations.ungettext

    def gettext(self, message):
        result = original(self, message)
        return f"{OPEN}{message}{CLOSE}" if result == message and re.search(
            "[A-Za-z]{2}", message) else result

    def ngettext(self, singular, plural, n):
        result = original_n(self, singular, plural, n)
        return f"{OPEN}{result}{CLOSE}" if result in (singular, plural) else result
    monkeypatch.setattr(Translations, "ugettext", gettext)
    monkeypatch.setattr(Translations, "ungettext", ngettext)


def split_untranslated(text):
    """(the text without the messages still to translate, those messages)."""
    untranslated = re.findall(f"{OPEN}(.*?){CLOSE}", text, flags=re.S)
    return re.sub(f"{OPEN}.*?{CLOSE}", " ", text, flags=re.S), untranslated


def visible_text(page):
    """The text a reader sees: no script or style, no attribute values. Left out too: what a
    page marks as English on purpose (lang="en": the English text of a notice template beside
    its Chinese one), text being edited (textarea) and syntax shown as code ({loan_no})."""
    tree = html.fromstring(page)
    for bad in tree.xpath("//script|//style|//template|//noscript|//*[@lang='en']"
                          "|//textarea|//code"):
        bad.drop_tree()
    main = tree.xpath("//body") or [tree]
    return " ".join(t.strip() for t in main[0].itertext() if t.strip())


def offences(text, ids, codes):
    found = []
    words = set(re.findall(r"[A-Za-z][A-Za-z0-9_]*", text))
    found += sorted(f"id {w}" for w in words & ids)
    found += sorted(f"code {w}" for w in words & codes if w not in ALLOWED_WORDS)
    found += sorted(f"snake_case {w}" for w in words if "_" in w)
    found += sorted(f"English {w}" for w in words
                    if re.fullmatch(r"[A-Za-z]{4,}", w) and w not in ALLOWED_WORDS)
    found += [f"money {m}" for m in re.findall(r"(?<![\d,])\d{4,}\.\d{2}(?!\d)", text)]
    return found


@pytest.fixture
def walked(app, staff, new_loan):  # noqa: F811 (fixtures)
    """A loan in collection up to the litigation proposal after a visit, and a new loan whose
    handover file was handed over (the check waits); every user reads Chinese. Typed text is
    Chinese, as in the demo."""
    staff["owner"] = create_user("owner", PASSWORD, ["process_owner"])
    handover = dict(HANDOVER_DATA, purpose="流动资金", repayment_source="销售回款",
                    risk_points="客户集中")
    # Issue 16: a guarantor and a mortgage whose registration expires within the warning days
    security = {
        "guarantors": [{"kind": "company", "name": "杭州信达担保有限公司", "phone": "057188886666"}],
        "collateral": [{"kind": "mortgage", "description": "厂房", "location": "杭州市余杭区",
                        "valuation": "600000", "registration_no": "浙(2026)余杭不动产第00001号",
                        "asset_type": "real_estate", "registration_office": "杭州市余杭区不动产登记中心",
                        "registered_on": "2026-01-05", "registration_expires_on": "2026-05-20",
                        "insurance_policy": "PQYC000001", "insurer": "某财产保险公司",
                        "insurance_expires_on": "2027-01-05"}]}
    loan = register_loan(three_installment_payload(borrower_name="张伟", **security),
                         staff["admin"])
    for user, data in ((staff["am"], handover), (staff["plo"], {"check_result": "complete"}),
                       (staff["plo"], {"ledger_no": "台账-1", "risk_group": "normal",
                                       "inspection_frequency": "monthly"})):
        complete_task(open_tasks_of_case(loan.id)[0].id, user, data=data)
    at(dt.date(2026, 5, 8), 10)
    assert run_daily(dt.date(2026, 5, 8))["overdue"] == 1
    collector, leader = staff["collector"], staff["leader"]
    propose = dict(CALL, answered_by="nobody", collection_result="no_answer",
                   next_step="propose_visit", visit_reason="一周无人接听")
    do(loan, "phone_collection", collector, **propose)
    do(loan, "approve_visit", leader, visit_decision="approve", visit_comment="同意上门")
    do(loan, "visit_report", collector, visit_address="杭州市西湖区", visit_met="借款人妻子",
       visit_findings="店铺关门，货物已搬空", visit_situation="wilful_default",
       visit_photos_note="空店铺照片四张")
    # …its guarantor found weaker at a check, a written notice from the template library
    record_check(loan.guarantors[0], {"reachable": True, "capacity": "weakened",
                                      "capacity_note": "担保余额已超上限",
                                      "court_enforcement": False, "licence_status": "abnormal"},
                 staff["am"], "staff")
    send_notice("collection_notice", loan, {}, "张伟（杭州市西湖区）")
    db.session.commit()
    fresh = new_loan("L-002", purpose="流动资金")
    complete_task(open_tasks_of_case(fresh.id)[0].id, staff["am"], data=handover)
    for user in User.query:
        user.display_name, user.locale = NAMES.get(user.username, user.username), "zh_CN"
    db.session.commit()
    return {"collection_loan": loan.loan_no, "handover_loan": fresh.loan_no,
            "guarantor_id": loan.guarantors[0].id}


def pages_of(client, username, walked):
    login(client, username)
    urls = ["/inbox?tab=mine", "/inbox?tab=available"]
    user = User.query.filter_by(username=username).one()
    tasks = HumanTask.query.filter_by(state="ready").all()
    urls += [f"/tasks/{t.id}" for t in tasks
             if t.lane in user.roles or t.candidate_user_id == user.id]
    return urls


def test_pages_in_chinese_show_no_codes_and_no_english(app, walked, mark_untranslated):
    ids, codes = shipped_ids(), code_values()
    visits = {
        "am": [f"/cases/{walked['handover_loan']}", f"/cases/{walked['collection_loan']}",
               f"/cases/{walked['collection_loan']}/guarantors/{walked['guarantor_id']}/check"],
        "plo": [f"/cases/{walked['handover_loan']}"],
        "collector": [f"/cases/{walked['collection_loan']}"],
        "leader": [f"/cases/{walked['collection_loan']}", "/manage"],
        "owner": ["/studio/", "/notices",
                  f"/notices/guarantor_demand?loan_no={walked['collection_loan']}"],
        "admin": ["/admin/collateral", "/admin/problems"],
    }
    seen, problems, catalog = 0, {}, set()
    assert HumanTask.query.filter_by(state="ready", process_key="handover").count() == 1
    assert HumanTask.query.filter_by(state="ready", process_key="collection").count() >= 1
    for username, extra in visits.items():
        client = app.test_client()
        for url in pages_of(client, username, walked) + extra:
            response = client.get(url)
            assert response.status_code == 200, (username, url, response.status_code)
            text, untranslated = split_untranslated(
                visible_text(response.get_data(as_text=True)))
            catalog.update(m for m in untranslated if m not in ALLOWED_WORDS)
            found = offences(text, ids, codes)
            seen += 1
            if found:
                problems[f"{username} {url}"] = found
    assert seen >= 14
    assert problems == {}
    # Last: English still waiting for its Chinese in translations/ (make extract, translate).
    assert sorted(catalog) == []


def test_the_checker_finds_what_it_should():
    ids, codes = shipped_ids(), code_values()
    page = ("<html><body><p title='handover'>放款后交接 <a href='/x/check_file'>核对</a></p>"
            "<script>var handover = 1;</script>"
            "<td>check_file</td><td>dpd_8_30</td><td>borrower</td><td>Overdue</td>"
            "<td>34533.33</td><td>¥34,533.33</td><td>L-002 · Daihou</td></body></html>")
    found = offences(visible_text(page), ids, codes)
    assert "id check_file" in found and "snake_case dpd_8_30" in found
    assert "code borrower" in found and "English Overdue" in found
    assert "money 34533.33" in found
    assert not [f for f in found if "handover" in f or "Daihou" in f or "34,533" in f]
