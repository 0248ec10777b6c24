"""Every CSV the application writes goes through `safe_writer`: a cell that a spreadsheet
would run as a formula (one starting with =, +, -, @, a tab or a carriage return — a loan
number or a user name can) is written with a leading single quote, so Excel, LibreOffice and
Numbers show it as text (CSV formula injection, OWASP)."""
import csv

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer whose rows are neutralised cell by cell."""

    def __init__(self, stream, **options):
        self._writer = csv.writer(stream, **options)

    def writerow(self, row):
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def safe_writer(stream, **options):
    return SafeWriter(stream, **options)
