"""Names of the five categories and of the DPD buckets, in the reader's language, and the
bucket of a DPD. Every package of issue 14 reads them from here."""
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext

from portfolio.models import CATEGORIES

# "Normal" and "Current" are also a risk group and a stage, with other Chinese words.
CATEGORY_LABELS = {"normal": lazy_pgettext("five categories", "Normal"),
                   "special_mention": _l("Special mention"),
                   "substandard": _l("Substandard"), "doubtful": _l("Doubtful"),
                   "loss": _l("Loss")}
# The three lower categories are non-performing (NPL).
NON_PERFORMING = ("substandard", "doubtful", "loss")

# The industry's buckets (DOMAIN.md §7): M1 is DPD 1-30, M2 31-60, M3 61-90, M3+ over 90.
BUCKETS = ("current", "M1", "M2", "M3", "M3+")
BUCKET_LABELS = {"current": lazy_pgettext("DPD bucket", "Current"), "M1": _l("M1 (1–30 days)"),
                 "M2": _l("M2 (31–60 days)"), "M3": _l("M3 (61–90 days)"),
                 "M3+": _l("M3+ (over 90 days)"), "closed": _l("Closed")}
_BOUNDS = ((0, "current"), (30, "M1"), (60, "M2"), (90, "M3"))


def bucket_of(dpd):
    for upper, bucket in _BOUNDS:
        if dpd <= upper:
            return bucket
    return "M3+"


def category_label(category):
    return CATEGORY_LABELS.get(category, category)


def rank_of(category):
    return CATEGORIES.index(category)
