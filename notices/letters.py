"""Printable letters (reportlab, Chinese through STSong-Light as compliance/pdf.py): the
lender's header, the date, the recipient, the subject, the body and the signature block."""
import io
from xml.sax.saxutils import escape

from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import HRFlowable, Paragraph, SimpleDocTemplate, Spacer

from compliance.pdf import FONT, pdf_text
from notices.placeholders import format_date, lender

_HEAD = ParagraphStyle("head", fontName=FONT, fontSize=15, leading=20, alignment=TA_CENTER)
_HEAD_SMALL = ParagraphStyle("head_small", fontName=FONT, fontSize=8.5, leading=12,
                             alignment=TA_CENTER)
_TITLE = ParagraphStyle("title", fontName=FONT, fontSize=14, leading=20, alignment=TA_CENTER,
                        spaceBefore=8, spaceAfter=10)
_BODY = ParagraphStyle("body", fontName=FONT, fontSize=10.5, leading=17)
_RIGHT = ParagraphStyle("right", fontName=FONT, fontSize=10.5, leading=17, alignment=TA_RIGHT)
_SMALL = ParagraphStyle("small", fontName=FONT, fontSize=7, leading=9)

WORDS = {
    "zh_CN": {"to": "收件人：", "date": "日期：", "phone": "电话：", "address": "地址：",
              "seal": "（盖章）", "ref": "贷款编号：", "draft": "预览（未发出）",
              "number": "文书编号：{number}", "version": "模板第{version}版"},
    "en": {"to": "To: ", "date": "Date: ", "phone": "Phone: ", "address": "Address: ",
           "seal": "(seal)", "ref": "Loan: ", "draft": "Preview (not sent)",
           "number": "Notice no. {number}", "version": "template version {version}"},
}


def reference(language, version, number=None):
    """The small print of a letter in its own language: the notice's number (none on a
    preview) and the template version it came from, which traces the letter."""
    words = WORDS.get(language, WORDS["en"])
    parts = [words["number"].format(number=f"{number:06d}")] if number is not None else []
    return " · ".join(parts + [words["version"].format(version=version)])


def _p(text, style=_BODY):
    return Paragraph(escape(pdf_text(text)).replace("\n", "<br/>"), style)


def letter_pdf(subject, body, recipient, day, language="zh_CN", loan_no="", footer="",
               draft=False):
    """One letter as PDF bytes. `day`: the date printed on it; `footer`: small print
    (`reference`)."""
    words = WORDS.get(language, WORDS["en"])
    who = lender(language)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=22 * mm, rightMargin=22 * mm,
                            topMargin=16 * mm, bottomMargin=16 * mm, title=pdf_text(subject),
                            author=pdf_text(who["lender_name"]))
    story = [_p(who["lender_name"], _HEAD),
             _p(f"{words['address']}{who['lender_address']}    "
                f"{words['phone']}{who['lender_phone']}", _HEAD_SMALL),
             Spacer(1, 2 * mm), HRFlowable(width="100%", thickness=1.2),
             Spacer(1, 4 * mm)]
    if draft:
        story.append(_p(words["draft"], _RIGHT))
    story += [_p(f"{words['to']}{recipient}"),
              _p(f"{words['ref']}{loan_no}") if loan_no else Spacer(1, 0),
              _p(f"{words['date']}{format_date(day, language)}"),
              _p(subject, _TITLE)]
    for paragraph in (body or "").split("\n\n"):
        story += [_p(paragraph), Spacer(1, 3 * mm)]
    story += [Spacer(1, 12 * mm), _p(who["lender_name"], _RIGHT), _p(words["seal"], _RIGHT),
              _p(format_date(day, language), _RIGHT)]
    if footer:
        story += [Spacer(1, 10 * mm), _p(footer, _SMALL)]
    doc.build(story)
    return buffer.getvalue()
