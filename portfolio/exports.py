"""A dashboard table as CSV or XLSX: headings in the reader's language, money as numbers with
two decimals, rates as fractions (0.125 for 12.5%), nothing to divide by as an empty cell.
Text cells go through compliance.csv_export.safe_cell in both formats (a collector's name
starting with = is text, not a formula: openpyxl too would store it as one)."""
import io

from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from compliance.csv_export import safe_cell, safe_writer

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = {"money": "#,##0.00", "rate": "0.00%", "number": "0.000", "count": "0"}


def _value(value, kind):
    if value is None:
        return None
    if kind == "text":
        return safe_cell(str(value))
    return value


def as_csv(table):
    out = io.StringIO()
    out.write("\ufeff")  # BOM: Excel then reads the file as UTF-8 (Chinese headings)
    writer = safe_writer(out)
    writer.writerow([heading for heading, _kind in table.columns])
    for row in table.rows:
        writer.writerow(["" if v is None else _value(v, kind)
                         for v, (_heading, kind) in zip(row, table.columns)])
    return out.getvalue().encode("utf-8")


def as_xlsx(table):
    book = Workbook()
    sheet = book.active
    sheet.title = table.key[:31]
    sheet.append([safe_cell(str(heading)) for heading, _kind in table.columns])
    for row in table.rows:
        sheet.append([_value(v, kind) for v, (_heading, kind) in zip(row, table.columns)])
    for index, (_heading, kind) in enumerate(table.columns, start=1):
        if kind in FORMATS:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = FORMATS[kind]
        sheet.column_dimensions[get_column_letter(index)].width = 18 if kind != "text" else 28
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()

