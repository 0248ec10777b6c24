"""Turn a form spec (bpmn/forms/<key>.json) into a WTForms class.

The same class validates browser posts and API submissions, so the two can never disagree.
Spec: {"key", "title": {lang: text}, "instructions": {lang: text}, "show": [data keys],
"fields": [{"name", "type", "label": {lang: text}, "required", "choices": [{"value", "label"}],
"help", "min", "max", "max_length", "group": {lang: text}, "input": "tel"|"numeric"}]}
Field work (issue 13 item 9): "photos" (camera pictures, stored as case documents on
completion; the task data keeps their ids) and "location" (coordinates the user consented to).
"""
import datetime as dt
import json
import math
from decimal import Decimal

from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from werkzeug.datastructures import FileStorage, MultiDict
from wtforms import (BooleanField, DateField, DecimalField, Field, IntegerField, SelectField,
                     SelectMultipleField, StringField, TextAreaField, validators, widgets)
from wtforms.utils import unset_value

from i18n import current_language
from workflows.clock import BEIJING, now, today as clock_today

FIELD_TYPES = ("text", "textarea", "integer", "decimal", "date", "boolean", "select",
               "multiselect", "photos", "location")
# A phone keyboard per field: "input" in the spec (e.g. "tel" for a phone number), else by type.
INPUT_MODES = {"tel": {"type": "tel", "inputmode": "tel", "autocomplete": "tel"},
               "numeric": {"inputmode": "numeric"}, "decimal": {"inputmode": "decimal"},
               "email": {"type": "email", "inputmode": "email"}}
TYPE_INPUT_MODES = {"integer": "numeric", "decimal": "decimal"}


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
        if field.get("input") is not None and field.get("input") not in INPUT_MODES:
            problems.append(f"field {name}: input must be one of {', '.join(INPUT_MODES)}")
        if field.get("type") == "photos" and not (
                isinstance(field.get("max_files", MAX_PHOTOS), int)
                and 1 <= field.get("max_files", MAX_PHOTOS) <= MAX_PHOTOS):
            problems.append(f"field {name}: max_files must be 1 to {MAX_PHOTOS}")
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
        today = clock_today()
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


# ---------------------------------------------------------------- field work: photos, location

MAX_PHOTOS = 10
PHOTO_KINDS = ("jpeg", "png")  # what a phone's camera gives through a browser (iOS: JPEG)


class Photo:
    """A picture sent with a form: its name as sent and its content (at most the document
    size limit plus one byte, enough to tell it is too large)."""
    __slots__ = ("filename", "data")

    def __init__(self, filename, data):
        self.filename, self.data = filename, data


class PhotoBatch(list):
    """The photos of one field of a submission. They become case documents when the task is
    completed (cases.fieldwork, in its transaction), which puts their ids in the task data."""


def _document_rules():
    # Imported late: cases.records imports the engine facade, which imports this module.
    from cases.records import max_document_bytes, sniff
    return max_document_bytes(), sniff


class PhotosField(MultipleFileField):
    """<input type=file accept=image/* capture=environment multiple>: camera pictures."""

    def process_formdata(self, valuelist):
        files = [x for x in valuelist if isinstance(x, FileStorage) and x]
        if not files:
            self.data = []
            return
        limit = _document_rules()[0]
        batch = PhotoBatch()
        for upload in files:
            batch.append(Photo(upload.filename, upload.stream.read(limit + 1)))
            # The same upload is validated twice on the web (the page's form, then the
            # completion's): leave it readable again.
            upload.stream.seek(0)
        self.data = batch


class _Photos:
    """Every photo a JPEG or PNG within the document size limit, at most `max_files`."""

    def __init__(self, required, max_files):
        self.required, self.max_files = required, max_files
        self.field_flags = {"required": True} if required else {}

    def __call__(self, form, field):
        photos = field.data or []
        if self.required and not photos:
            raise validators.StopValidation(gettext("Take or choose at least one photo."))
        if len(photos) > self.max_files:
            raise validators.StopValidation(ngettext(
                "At most %(num)d photo.", "At most %(num)d photos.", self.max_files))
        limit, sniff = _document_rules()
        errors = []
        for photo in photos:
            if not photo.data:
                errors.append(gettext("“%(name)s” is empty.", name=photo.filename))
            elif len(photo.data) > limit:
                errors.append(gettext("“%(name)s” is too large (at most %(size)s MB).",
                                      name=photo.filename, size=limit // (1024 * 1024)))
            elif sniff(photo.data) not in PHOTO_KINDS:
                errors.append(gettext("“%(name)s” is not a JPEG or PNG picture.",
                                      name=photo.filename))
        if errors:
            field.errors = list(field.errors) + errors[:-1]
            raise validators.StopValidation(errors[-1])


LOCATION_PARTS = ("consent", "latitude", "longitude", "accuracy", "captured_at")
CONSENTED = ("y", "on", "true", "1")


class LocationField(Field):
    """Where the user stood, only with their consent. Posted as <name>-consent and, filled by
    static/fieldwork.js from navigator.geolocation once the box is ticked, <name>-latitude,
    -longitude, -accuracy (metres) and -captured_at (ISO time). Without consent the rest is
    dropped: data is None. With it, data is {"latitude", "longitude", "accuracy",
    "captured_at"} or the field has an error."""

    def process(self, formdata, data=unset_value, extra_filters=None):
        self.process_errors, self.data, self.raw_data = [], None, []
        self.raw = dict.fromkeys(LOCATION_PARTS, "")
        if formdata is not None:
            for part in LOCATION_PARTS:
                self.raw[part] = str(formdata.get(f"{self.name}-{part}") or "").strip()[:64]
            self.raw_data = [v for v in self.raw.values() if v]
        self.consent = self.raw["consent"].lower() in CONSENTED
        if not self.consent:
            self.raw.update(dict.fromkeys(LOCATION_PARTS, ""))
            return
        try:
            self.data = parse_location(self.raw)
        except ValueError as exc:
            self.process_errors.append(exc.args[0])


def parse_location(raw):
    """{"latitude", "longitude", "accuracy", "captured_at"} from posted text, or a ValueError
    with a translated message."""
    if not (raw["latitude"] or raw["longitude"]):
        raise ValueError(gettext("The location was not recorded: tap “Record my location” "
                                 "again, or untick the box to send the report without it."))

    def number(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        return value if math.isfinite(value) else None

    lat, lon, acc = number(raw["latitude"]), number(raw["longitude"]), number(raw["accuracy"])
    if lat is None or not -90 <= lat <= 90 or lon is None or not -180 <= lon <= 180:
        raise ValueError(gettext("The coordinates are not valid (latitude -90 to 90, "
                                 "longitude -180 to 180)."))
    if acc is None or not 0 < acc <= MAX_ACCURACY_METRES:
        raise ValueError(gettext("The accuracy of the location must be a positive number of "
                                 "metres."))
    captured = now()
    if raw["captured_at"]:
        try:
            captured = dt.datetime.fromisoformat(raw["captured_at"].replace("Z", "+00:00"))
        except ValueError:
            captured = None
        if captured is None or captured.tzinfo is None or not (
                MIN_DATE <= captured.date() <= MAX_DATE):
            raise ValueError(gettext("The time of the location is not valid."))
    return {"latitude": round(lat, 6), "longitude": round(lon, 6), "accuracy": round(acc, 1),
            "captured_at": captured.astimezone(dt.timezone.utc).isoformat(timespec="seconds")}


# A fix worse than this says nothing about where the visit was (the phone had no signal).
MAX_ACCURACY_METRES = 100_000


class _LocationRequired:
    field_flags = {"required": True}

    def __call__(self, form, field):
        if field.data is None and not field.errors:
            raise validators.StopValidation(gettext("Record the location to continue."))


def display_field_value(field, value):
    """How a photos or location value reads in a history (None for other types)."""
    if field.get("type") == "photos" and isinstance(value, list):
        return ngettext("%(num)d photo (in the documents)", "%(num)d photos (in the documents)",
                        len(value))
    if field.get("type") == "location" and isinstance(value, dict):
        try:
            at = dt.datetime.fromisoformat(value["captured_at"]).astimezone(BEIJING)
            at = at.strftime("%Y-%m-%d %H:%M")
            return gettext("%(lat)s, %(lon)s (± %(acc)s m, %(at)s Beijing time)",
                           lat=f"{float(value['latitude']):.6f}",
                           lon=f"{float(value['longitude']):.6f}",
                           acc=f"{float(value['accuracy']):g}", at=at)
        except (KeyError, TypeError, ValueError):
            return None
    return None


def _validators(field):
    if field["type"] == "photos":
        return [_Photos(bool(field.get("required")), field.get("max_files", MAX_PHOTOS))]
    if field["type"] == "location":
        return [_LocationRequired()] if field.get("required") else []
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
    mode = field.get("input") or TYPE_INPUT_MODES.get(kind)
    if mode:
        kwargs["render_kw"] = dict(INPUT_MODES[mode])
    if kind == "photos":
        kwargs["render_kw"] = {"accept": "image/jpeg,image/png,image/*",
                               "capture": "environment", "multiple": True}
        return PhotosField(**kwargs)
    if kind == "location":
        return LocationField(**kwargs)
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
        # Labelled groups (a fieldset each, in the spec's order): {field name: legend}.
        attrs["field_groups"] = {f["name"]: localized(f["group"], language)
                                 for f in spec["fields"] if f.get("group")}
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
        if value is None or field["type"] == "photos":
            continue  # photos come as files (multipart), never as values
        if field["type"] == "location":
            # {"consent": true, "latitude": …, …}: without consent nothing is kept.
            for part in LOCATION_PARTS if isinstance(value, dict) else ():
                if part == "consent":
                    if value.get(part) is True:
                        md.add(f"{field['name']}-consent", "y")
                elif value.get(part) is not None:
                    md.add(f"{field['name']}-{part}", str(value[part]))
        elif field["type"] == "boolean":
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
