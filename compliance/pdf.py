"""The case dossier as a PDF (reportlab; Chinese through the built-in STSong-Light CID font,
so no system font is needed). That font's Unicode map (UniGB-UCS2-H) follows GB2312's
table: punctuation outside it ("·", "—", "–", "¥", "✓") would print as a missing glyph, so
text is normalized to characters it has (pdf_text)."""
import io
import unicodedata
from xml.sax.saxutils import escape

from flask_babel import _
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from accounts.models import utc
from audit.labels import action_label
from cases.models import STAGE_LABELS, STATUS_LABELS
from compliance.timeline import KIND_LABELS
from pii.rules import ID_NUMBER, PHONE, shown
from workflows.clock import BEIJING

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

_BODY = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12)
_SMALL = ParagraphStyle("small", fontName=FONT, fontSize=6, leading=8)
_H1 = ParagraphStyle("h1", fontName=FONT, fontSize=16, leading=20, spaceAfter=6)
_H2 = ParagraphStyle("h2", fontName=FONT, fontSize=12, leading=16, spaceBefore=8, spaceAfter=4)


# What GB2312 writes these as (A1A4, A1AA, A3A4…); anything else outside it: its plain
# letter when it has one (é -> e), else "?".
SUBSTITUTES = {"\u00b7": "\u30fb", "\u2022": "\u30fb", "\u2014": "\u2015",
               "\u2013": "-", "\u2212": "-", "\u00a5": "\uffe5", "\u2713": "\u221a",
               "\u2714": "\u221a", "\u2717": "\u00d7", "\u2718": "\u00d7",
               "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\ufffd": "?"}


def _has_glyph(ch):
    if ch.isascii():
        return True
    try:
        ch.encode("gb2312")
        return True
    except UnicodeEncodeError:
        pass
    # Ideographs beyond GB2312 (GBK, rarer names) are in Adobe-GB1 too.
    if unicodedata.category(ch) == "Lo":
        try:
            ch.encode("gbk")
            return True
        except UnicodeEncodeError:
            return False
    return False


def pdf_text(text):
    out = []
    for ch in str(text):
        ch = SUBSTITUTES.get(ch, ch)
        if not _has_glyph(ch):
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            ch = plain or "?"
        out.append(ch)
    return "".join(out)


def _p(text, style=_BODY):
    return Paragraph(escape(pdf_text(text)), style)


def _when(value):
    return utc(value).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _details(entry):
    e = entry["event"]
    head = action_label(e.action) + (f": {entry['title']}" if entry["title"] else "")
    body = "; ".join(f"{label}: {value}" for label, value in entry["pairs"])
    return [_p(head), _p(body, _SMALL)] if body else [_p(head)]


def _money(value):
    return "" if value is None else f"¥{value:,.2f}"


def _parties(loan):
    """The borrower's ID and phone numbers as the exporter may see them."""
    b = loan.borrower
    if b is None:
        return []
    return [(_("ID number"), shown(b.id_number, ID_NUMBER, None, loan) or "—"),
            (_("Phones"), ", ".join(str(shown(p, PHONE, None, loan)) for p in b.phones or [])
             or "—")]


def dossier_pdf(loan, entries, chain):
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=15 * mm,
                            title=_("Case dossier %(loan_no)s", loan_no=loan.loan_no))
    story = [_p(_("Case dossier %(loan_no)s", loan_no=loan.loan_no), _H1)]
    summary = [
        (_("Loan number"), loan.loan_no), (_("Borrower"), loan.borrower_name),
        *_parties(loan),
        (_("Principal"), _money(loan.principal)),
        (_("Interest rate"), f"{loan.interest_rate * 100:.2f}%"),
        (_("Disbursed on"), loan.disbursed_on), (_("Maturity"), loan.maturity_on),
        (_("Account manager"), loan.account_manager.label),
        (_("Status"), STATUS_LABELS.get(loan.status, loan.status)),
        (_("Outstanding"), _money(loan.outstanding)), (_("DPD"), loan.dpd),
        (_("Stage"), STAGE_LABELS.get(loan.stage, loan.stage)),
    ]
    story.append(_p(_("Loan summary"), _H2))
    table = Table([[_p(k), _p(v)] for k, v in summary], colWidths=[45 * mm, 130 * mm])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, "#999999"),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story.append(table)
    story.append(_p(_("Audit chain"), _H2))
    if chain["ok"]:
        story.append(_p(_("Chain verified: %(n)s events, no break.", n=chain["checked"])))
    else:
        story.append(_p(_("Chain broken at event %(id)s after %(n)s valid events.",
                          id=chain["bad_id"], n=chain["checked"])))
    story.append(_p(_("Timeline"), _H2))
    rows = [[_p(_("When")), _p(_("Who")), _p(_("Kind")), _p(_("What")), _p(_("Hash"))]]
    for entry in entries:
        e = entry["event"]
        rows.append([_p(_when(e.at)), _p(e.actor.label if e.actor else _("system")),
                     _p(KIND_LABELS[entry["kind"]]), _details(entry),
                     [_p(e.hash[:16]), _p(e.hash, _SMALL)]])
    table = Table(rows, colWidths=[24 * mm, 18 * mm, 18 * mm, 70 * mm, 50 * mm],
                  repeatRows=1)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, "#999999"),
                               ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("BACKGROUND", (0, 0), (-1, 0), "#eeeeee")]))
    story.append(table)
    if not entries:
        story.append(_p(_("No events.")))
    doc.build(story)
    return out.getvalue()
