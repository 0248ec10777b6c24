"""Numbers as people read them: money as ¥1,234,567.89, rates as 4.35%.

Registered as template filters `money` and `rate` (workflows.views registers them for the
whole app)."""
from decimal import Decimal, InvalidOperation


def _decimal(value):
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value).replace(",", "").replace("¥", "").strip())
    except InvalidOperation:
        return None


def money(value):
    """¥1,234,567.89; '' for nothing; a value that is not a number is shown as it is."""
    number = _decimal(value)
    if number is None:
        return "" if value in (None, "") else str(value)
    sign = "-" if number < 0 else ""
    return f"{sign}¥{abs(number):,.2f}"


def rate(value, places=2):
    """A fraction (0.0435) as a percentage: 4.35%."""
    number = _decimal(value)
    if number is None:
        return "" if value in (None, "") else str(value)
    return f"{number * 100:,.{places}f}%"


def register_filters(state_or_app):
    state_or_app.add_template_filter(money, "money")
    state_or_app.add_template_filter(rate, "rate")
