"""The case dossier as a PDF (reportlab; Chinese through the built-in STSong-Light CID font,
so no system font is needed)."""
import io
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
from cases.staging import BEIJING
from compliance.timeline import KIND_LABELS

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

_BODY = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12)
_SMALL = ParagraphStyle("small", fontName=FONT, fontSize=6, leading=8)
_H1 = ParagraphStyle("h1", fontName=FONT, fontSize=16, leading=20, spaceAfter=6)
_H2 = ParagraphStyle("h2", fontName=FONT, fontSize=12, leading=16, spaceBefore=8, spaceAfter=4)


def _p(text, style=_BODY):
    return Paragraph(escape(str(text)), style)


def _when(value):
    return utc(value).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _details(entry):
    e = entry["event"]
    head = action_label(e.action) + (f": {entry['title']}" if entry["title"] else "")
    if entry["pairs"]:
        body = " · ".join(f"{label}: {value}" for label, value in entry["pairs"])
    else:
        body = " · ".join(f"{k}: {v}" for k, v in (e.data or {}).items())
    return [_p(head), _p(body, _SMALL)] if body else [_p(head)]


def dossier_pdf(loan, entries, chain):
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=15 * mm,
                            title=_("Case dossier %(loan_no)s", loan_no=loan.loan_no))
    story = [_p(_("Case dossier %(loan_no)s", loan_no=loan.loan_no), _H1)]
    summary = [
        (_("Loan number"), loan.loan_no), (_("Borrower"), loan.borrower_name),
        (_("Principal"), loan.principal), (_("Interest rate"), loan.interest_rate),
        (_("Disbursed on"), loan.disbursed_on), (_("Maturity"), loan.maturity_on),
        (_("Account manager"), loan.account_manager.username), (_("Status"), str(STATUS_LABELS.get(loan.status, loan.status))),
        (_("Outstanding"), loan.outstanding), (_("DPD"), loan.dpd),
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
        rows.append([_p(_when(e.at)), _p(e.actor.username if e.actor else _("system")),
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
