"""What the score's features, bands and reasons say, in the reader's language. Scores keep
codes and values (LoanScore.reasons); these render them."""
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_babel import gettext as _
from flask_babel import ngettext

from formatting import money

FEATURE_LABELS = {
    "dpd": _l("Days past due"), "broken": _l("Promises broken in 90 days"),
    "kept": _l("Promises kept in 90 days"), "reach": _l("Calls answered in 30 days"),
    "paid": _l("Payment in the last 60 days"), "on_time": _l("Installments paid on time"),
    "guarantor": _l("Reachable guarantor"), "collateral": _l("Collateral"),
    "amount": _l("Amount due"),
}
BAND_LABELS = {
    ("dpd", "1_7"): _l("1 to 7 days"), ("dpd", "8_30"): _l("8 to 30 days"),
    ("dpd", "31_60"): _l("31 to 60 days"), ("dpd", "61_90"): _l("61 to 90 days"),
    ("dpd", "91_180"): _l("91 to 180 days"), ("dpd", "181_365"): _l("181 to 365 days"),
    ("dpd", "366_plus"): _l("Over 365 days"),
    ("broken", "none"): _l("None"), ("broken", "one"): _l("One"),
    ("broken", "two_plus"): _l("Two or more"),
    ("kept", "none"): _l("None"), ("kept", "one_plus"): _l("One or more"),
    ("reach", "unknown"): _l("Not called"), ("reach", "none"): _l("No call answered"),
    ("reach", "low"): _l("Under half answered"), ("reach", "high"): _l("Half or more answered"),
    ("paid", "no"): _l("No"), ("paid", "yes"): _l("Yes"),
    ("on_time", "none"): _l("None"), ("on_time", "some"): _l("1 to 5"),
    ("on_time", "many"): _l("6 or more"),
    ("guarantor", "no"): _l("No"), ("guarantor", "yes"): _l("Yes"),
    ("collateral", "none"): _l("None"), ("collateral", "low_ltv"): _l("Loan-to-value up to 70%"),
    ("collateral", "high_ltv"): _l("Loan-to-value over 70%"),
    ("collateral", "unvalued"): _l("Not valued"),
    ("amount", "small"): _l("Up to ¥5,000"), ("amount", "medium"): _l("¥5,000 to ¥50,000"),
    ("amount", "large"): _l("Over ¥50,000"),
}


def _percent(value):
    return f"{(Decimal(value) * 100).quantize(Decimal('1'))}%"


def reason_text(reason):
    """One stored reason ({"feature", "band", "value", "points"}) as a sentence."""
    feature, band, value = reason["feature"], reason["band"], reason.get("value") or {}
    n = value.get("n", 0)
    if feature == "dpd":
        return ngettext("%(num)s day past due", "%(num)s days past due", n)
    if feature == "broken":
        return ngettext("%(num)s promise broken in 90 days", "%(num)s promises broken in 90 days",
                        n)
    if feature == "kept":
        return ngettext("%(num)s promise kept in 90 days", "%(num)s promises kept in 90 days", n)
    if feature == "reach":
        if band == "unknown":
            return _("Not called in 30 days")
        return _("%(reached)s of %(calls)s calls answered in 30 days",
               reached=value.get("reached", 0), calls=value.get("calls", 0))
    if feature == "paid":
        return (_("Paid something in the last 60 days") if band == "yes"
                else _("Nothing paid in the last 60 days"))
    if feature == "on_time":
        return ngettext("%(num)s installment paid on time", "%(num)s installments paid on time",
                        n)
    if feature == "guarantor":
        return _("A reachable guarantor") if band == "yes" else _("No reachable guarantor")
    if feature == "collateral":
        if band == "none":
            return _("No collateral")
        if value.get("ltv") is None:
            return _("Collateral not valued")
        return _("Collateral, loan-to-value %(ltv)s", ltv=_percent(value["ltv"]))
    if feature == "amount":
        return _("Amount due %(amount)s", amount=money(value.get("amount", 0)))
    return str(FEATURE_LABELS.get(feature, feature))


def points_text(points):
    """+12 / −25 (a true minus sign), one decimal only when there is one."""
    points = float(points)
    shown = f"{abs(points):.1f}".rstrip("0").rstrip(".")
    return ("+" if points > 0 else "−" if points < 0 else "") + shown
