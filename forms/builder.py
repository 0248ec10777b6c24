"""Turn a form spec (bpmn/forms/<key>.json) into a WTForms class.

The same class validates browser posts and API submissions, so the two can never disagree.
Spec: {"key", "title": {lang: text}, "instructions": {lang: text}, "show": [data keys],
"fields": [{"name", "type", "label": {lang: text}, "required", "choices": [{"value", "label"}],
"help", "min", "max", "max_length"}]}
"""
import datetime as dt
import json
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import (BooleanField, DateField, DecimalField, IntegerField, SelectField,
                     SelectMultipleField, StringField, TextAreaField, validators, widgets)

from i18n import current_language
from workflows.clock import now

FIELD_TYPES = ("text", "textarea", "integer", "decimal", "date", "boolean", "select",
               "multiselect")


class FormSpecError(ValueError):
    pass


def localized(value, locale=None):
    """Pick the user's language from a {lang: text} dict (plain strings pass through)."""
    if not isinstance(value, dict):
        return value or ""
    lang = locale or current_language()
    return value.get(lang) or value.get("en") or next(iter(value.values()), "")


class _OptionalCheckbox(widgets.CheckboxInput):
    """One box of a checkbox group. A required group must not mark every box `required`:
    browsers would then refuse the form until all boxes are ticked. The server still
    requires at least one (InputRequired on the group)."""
    validation_attrs = ["disabled"]


class _MultiCheckbox(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = _OptionalCheckbox()


def check_spec(spec):
    """Problems with a form spec, as a list of messages (empty when it is fine)."""
    problems = []
    if not isinstance(spec, dict) or not isinstance(spec.get("fields"), list):
        return ["form spec must be an object with a list of fields"]
    seen = set()
    for i, field in enumerate(spec["fields"]):
        name = field.get("name") if isinstance(field, dict) else None
        if not name or not str(name).isidentifier():
            problems.append(f"field {i + 1}: name must be an identifier")
            continue
        if name in seen:
            problems.append(f"field {name}: duplicate name")
        seen.add(name)
        if field.get("type") not in FIELD_TYPES:
            problems.append(f"field {name}: type must be one of {', '.join(FIELD_TYPES)}")
        cond = field.get("required_if")
        if cond and (not isinstance(cond, dict) or cond.get("field") not in
                     {f.get("name") for f in spec["fields"] if isinstance(f, dict)}):
            problems.append(f"field {name}: required_if must name another field")
        if field.get("type") in ("select", "multiselect") and not field.get("choices"):
            problems.append(f"field {name}: a {field['type']} needs choices")
    return problems


class _RequiredIf:
    """Required when another field has a given value (e.g. what is missing, if incomplete)."""

    def __init__(self, other, value):
        self.other, self.value = other, value

    def __call__(self, form, field):
        if form[self.other].data == self.value and not field.data:
            raise validators.StopValidation(str(_l("This field is required for this choice.")))


class _NotPast:
    """A date that may not lie before today (Beijing), e.g. a promised payment date."""

    def __call__(self, form, field):
        today = now().astimezone(dt.timezone(dt.timedelta(hours=8))).date()
        if field.data is not None and field.data < today:
            raise validators.ValidationError(str(_l("This date cannot be in the past.")))


# Bounds of every numeric and date field (issue 10): a value a script, a timer or a Numeric
# column cannot take is a field error, not a 500 later. Decimal fields are amounts: at most
# `places` decimals (2 unless the spec says otherwise).
MAX_NUMBER = Decimal(10) ** 12
MIN_DATE = dt.date(1990, 1, 1)
MAX_DATE = dt.date(2100, 12, 31)


class _Bounded:
    """A finite number of magnitude at most MAX_NUMBER (and, for decimals, at most `places`
    decimals). Runs before NumberRange, which cannot compare NaN or sNaN."""

    def __init__(self, places=None):
        self.places = places

    def __call__(self, form, field):
        value = field.data
        if value is None:
            return
        if isinstance(value, Decimal) and not value.is_finite():
            raise validators.StopValidation(str(_l("Not a valid decimal value.")))
        if (value.copy_abs() if isinstance(value, Decimal) else abs(value)) > MAX_NUMBER:
            raise validators.StopValidation(str(_l("The number is too large.")))
        if self.places is not None and value.as_tuple().exponent < -self.places:
            raise validators.StopValidation(str(_l("Too many decimal places.")))


class _DateBounds:
    """A date within MIN_DATE and MAX_DATE."""

    def __call__(self, form, field):
        if field.data is not None and not MIN_DATE <= field.data <= MAX_DATE:
            raise validators.StopValidation(str(_l(
                "The date must lie between 1990-01-01 and 2100-12-31.")))


def _validators(field):
    found = []
    if field.get("required_if"):
        found.append(_RequiredIf(field["required_if"]["field"], field["required_if"]["value"]))
    if field.get("required") and field["type"] == "boolean":
        # A required confirmation ("identity checked") must be given to continue.
        found.append(validators.DataRequired(message=_l("Must be confirmed to continue.")))
    elif field.get("required"):
        found.append(validators.InputRequired())
    else:
        found.append(validators.Optional())
    if field["type"] in ("integer", "decimal"):
        found.append(_Bounded(field.get("places", 2) if field["type"] == "decimal" else None))
    if field["type"] == "date":
        found.append(_DateBounds())
    if field["type"] in ("integer", "decimal") and ("min" in field or "max" in field):
        found.append(validators.NumberRange(min=field.get("min"), max=field.get("max")))
    if field["type"] == "date" and field.get("not_past"):
        found.append(_NotPast())
    if field["type"] in ("text", "textarea"):
        found.append(validators.Length(max=field.get("max_length", 4000)))
    return found


def _make_field(field, locale):
    label = localized(field.get("label") or field["name"], locale)
    kwargs = {"label": label, "validators": _validators(field),
              "description": localized(field.get("help"), locale)}
    kind = field["type"]
    if kind in ("select", "multiselect"):
        kwargs["choices"] = [(c["value"], localized(c.get("label", c["value"]), locale))
                             for c in field["choices"]]
        return (SelectField if kind == "select" else _MultiCheckbox)(**kwargs)
    return {"text": StringField, "textarea": TextAreaField, "integer": IntegerField,
            "decimal": DecimalField, "date": DateField, "boolean": BooleanField}[kind](**kwargs)


# Built classes by (spec as JSON, language): a spec is content, so equal keys build equal
# classes; building one costs more than the rest of a submission's validation.
_FORM_CLASSES = {}
_FORM_CLASSES_MAX = 512


def build_form_class(spec, locale=None):
    language = locale or current_language()
    key = (json.dumps(spec, sort_keys=True, ensure_ascii=False, default=str), language)
    cls = _FORM_CLASSES.get(key)
    if cls is None:
        problems = check_spec(spec)
        if problems:
            raise FormSpecError("; ".join(problems))
        attrs = {f["name"]: _make_field(f, language) for f in spec["fields"]}
        cls = type("SpecForm", (FlaskForm,), attrs)
        if len(_FORM_CLASSES) >= _FORM_CLASSES_MAX:
            _FORM_CLASSES.clear()
        _FORM_CLASSES[key] = cls
    return cls


def to_json_value(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def form_data(form, spec):
    """The submitted values, JSON-safe, in spec order."""
    return {f["name"]: to_json_value(form[f["name"]].data) for f in spec["fields"]}


def api_formdata(data, spec):
    """Translate a JSON object to form data so the WTForms class validates it unchanged."""
    md = MultiDict()
    for field in spec["fields"]:
        value = data.get(field["name"])
        if value is None:
            continue
        if field["type"] == "boolean":
            if value is True or str(value).lower() in ("true", "1", "y", "yes"):
                md.add(field["name"], "y")
        elif isinstance(value, list):
            for item in value:
                md.add(field["name"], str(item))
        else:
            md.add(field["name"], str(value))
    return md


def describe_fields(spec, locale=None):
    """Field list for API clients: name, type, label, required, choices."""
    return [{"name": f["name"], "type": f["type"], "label": localized(f.get("label"), locale),
             "required": bool(f.get("required")),
             "choices": [c["value"] for c in f.get("choices", [])] or None}
            for f in spec["fields"]]
