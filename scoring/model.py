"""The propensity-to-pay model: banded features, points per band, a fixed logistic mapping.

Every model, the default scorecard as well as one fitted on the lender's history, has the same
shape (ScoringModel.weights): {"pdo": 20, "base": points, "features": {feature: {band: points}}}.
A loan's points are the base plus one band's points per feature; every PDO (20) points double
the odds of paying, so

    probability = 1 / (1 + exp(-points × ln 2 / 20))      (0 points = 50 %).

A fitted logistic model is the same thing with its log-odds coefficients written as points
(× 20 / ln 2), so the case page explains both kinds alike: "2 promises broken in 90 days (−25)".

Default weights (kind "points") and why — what the score predicts is "pays anything within
the next month":
- DPD, the strongest signal: recovery odds fall fast with the age of the debt (DOMAIN.md §4:
  under two months almost always recovered, ~80 % within 100 days, 26.6 % after a year).
  1–7 days +40 (≈ 80 %), 8–30 +25, 31–60 +5, 61–90 −10, 91–180 −25, 181–365 −40, over 365 −55.
- Broken promises in the last 90 days: one −12, two or more −25 (the collection deck: an
  unwilling payer; each broken promise roughly halves what the next one is worth).
- Kept promises in the last 90 days: +15 (a willing payer, work them first).
- Reachability, calls in the last 30 days: none answered −20 (skip risk), under half −5, half or
  more +10; not called: 0 (unknown says nothing).
- A repayment in the last 60 days: +20 (the best sign of intent after DPD).
- Installments paid on time: none −5, 1–5: 0, six or more +10 (a payment history).
- A reachable guarantor: +10 (a second source of payment and of pressure).
- Collateral: loan-to-value ≤ 70 % +10, higher or not valued +5, none 0.
- Amount due: up to ¥5,000 +5, up to ¥50,000 0, more −5 (small sums get paid first).
"""
import functools
import math
from decimal import ROUND_HALF_UP, Decimal

PDO = 20
LN2 = math.log(2)
FEATURES = ("dpd", "broken", "kept", "reach", "paid", "on_time", "guarantor", "collateral",
            "amount")
# Each feature's bands, in the order they are shown.
BANDS = {
    "dpd": ("1_7", "8_30", "31_60", "61_90", "91_180", "181_365", "366_plus"),
    "broken": ("none", "one", "two_plus"),
    "kept": ("none", "one_plus"),
    "reach": ("unknown", "none", "low", "high"),
    "paid": ("no", "yes"),
    "on_time": ("none", "some", "many"),
    "guarantor": ("no", "yes"),
    "collateral": ("none", "low_ltv", "high_ltv", "unvalued"),
    "amount": ("small", "medium", "large"),
}
DEFAULT_WEIGHTS = {"pdo": PDO, "base": 0, "features": {
    "dpd": {"1_7": 40, "8_30": 25, "31_60": 5, "61_90": -10, "91_180": -25, "181_365": -40,
            "366_plus": -55},
    "broken": {"none": 0, "one": -12, "two_plus": -25},
    "kept": {"none": 0, "one_plus": 15},
    "reach": {"unknown": 0, "none": -20, "low": -5, "high": 10},
    "paid": {"no": 0, "yes": 20},
    "on_time": {"none": -5, "some": 0, "many": 10},
    "guarantor": {"no": 0, "yes": 10},
    "collateral": {"none": 0, "low_ltv": 10, "high_ltv": 5, "unvalued": 5},
    "amount": {"small": 5, "medium": 0, "large": -5},
}}
SMALL_AMOUNT, LARGE_AMOUNT = Decimal(5000), Decimal(50000)
LOW_LTV = Decimal("0.7")
SCORE_PLACES, MONEY_PLACES = Decimal("0.0001"), Decimal("0.01")
TOP_REASONS = 3


def bands(raw):
    """{feature: (band, value)} of one loan's raw features (scoring.features); the value is
    what the reason's label shows."""
    dpd = raw["dpd"]
    dpd_band = next(band for band, upper in (("1_7", 7), ("8_30", 30), ("31_60", 60),
                                            ("61_90", 90), ("91_180", 180), ("181_365", 365),
                                            ("366_plus", None)) if upper is None or dpd <= upper)
    broken, kept = raw["broken_90"], raw["kept_90"]
    calls, reached = raw["calls_30"], raw["reached_30"]
    if not calls:
        reach = "unknown"
    elif not reached:
        reach = "none"
    else:
        reach = "high" if 2 * reached >= calls else "low"
    on_time = raw["on_time"]
    ltv = raw["ltv"]
    if not raw["collateral"]:
        collateral = "none"
    elif ltv is None:
        collateral = "unvalued"
    else:
        collateral = "low_ltv" if ltv <= LOW_LTV else "high_ltv"
    amount = raw["amount_due"]
    return {
        "dpd": (dpd_band, {"n": dpd}),
        "broken": ("none" if not broken else "one" if broken == 1 else "two_plus", {"n": broken}),
        "kept": ("one_plus" if kept else "none", {"n": kept}),
        "reach": (reach, {"calls": calls, "reached": reached}),
        "paid": ("yes" if raw["paid_60"] else "no", {}),
        "on_time": ("none" if not on_time else "some" if on_time <= 5 else "many",
                    {"n": on_time}),
        "guarantor": ("yes" if raw["guarantor"] else "no", {}),
        "collateral": (collateral, {"ltv": None if ltv is None else str(ltv)}),
        "amount": ("small" if amount <= SMALL_AMOUNT else "medium" if amount <= LARGE_AMOUNT
                   else "large", {"amount": str(amount)}),
    }


@functools.lru_cache(maxsize=4096)  # a model has few distinct point totals
def probability(points, pdo=PDO):
    """The fixed logistic mapping, rounded to the stored 4 places and kept inside (0, 1)."""
    p = 1 / (1 + math.exp(-points * LN2 / pdo))
    p = Decimal(repr(p)).quantize(SCORE_PLACES, ROUND_HALF_UP)
    return min(max(p, Decimal("0.0001")), Decimal("0.9999"))


def score(weights, raw):
    """(probability, reasons) of one loan: reasons are the TOP_REASONS largest contributions,
    [{"feature", "band", "value", "points"}], largest first (ties in FEATURES order)."""
    banded = bands(raw)
    table = weights["features"]
    parts = [(feature, band, value, table.get(feature, {}).get(band, 0))
             for feature, (band, value) in ((f, banded[f]) for f in FEATURES)]
    points = weights.get("base", 0) + sum(p for *_rest, p in parts)
    ranked = sorted((part for part in parts if part[3]),
                    key=lambda part: (-abs(part[3]), FEATURES.index(part[0])))
    reasons = [{"feature": f, "band": b, "value": v, "points": p}
               for f, b, v, p in ranked[:TOP_REASONS]]
    return probability(points, weights.get("pdo", PDO)), reasons


def expected_recovery(probability_, amount_due):
    return (probability_ * Decimal(amount_due)).quantize(MONEY_PLACES, ROUND_HALF_UP)
