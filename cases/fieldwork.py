"""Photos taken with a task's form (issue 13 item 9).

A form's "photos" field holds the pictures of the submission (forms.builder.PhotoBatch). When
the task is completed they become documents of the case in the completion's own transaction,
and the task data keeps their ids, never the pictures: a refused submission stores nothing,
a completed one has its photos. Web and API complete such forms through complete_with_files.
"""
import contextvars
import io

from flask_babel import gettext
from PIL import Image, ImageOps
from sqlalchemy import select
from werkzeug.datastructures import CombinedMultiDict, MultiDict

from cases.models import Document, Loan
from cases.records import clean_filename, sniff, store_document
from extensions import db
from forms.builder import PhotoBatch, api_formdata
from i18n import N_
from workflows.errors import InvalidData
from workflows.tasks import BEFORE_COMPLETE, complete_task, get_task, task_form_spec

PHOTO_DOCUMENT_KIND = "visit_photo"
# Larger pictures are refused before they are decoded (a small file can unpack to gigabytes).
MAX_PHOTO_PIXELS = 50_000_000
EXTENSIONS = {"jpeg": "jpg", "png": "png"}
NAMED = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png"}

# The completion under way in this context: who completes it and the files written so far.
_COMPLETION = contextvars.ContextVar("fieldwork_completion", default=None)


def complete_with_files(task_id, user, files, formdata=None, data=None):
    """complete_task with the files of a multipart request: the web form's fields
    (`formdata`) or the API's JSON values (`data`), plus `files` by field name."""
    if formdata is None:
        formdata = api_formdata(data or {}, task_form_spec(get_task(task_id)))
    formdata = CombinedMultiDict([files or MultiDict(), formdata])
    state = {"actor": user, "written": []}
    token = _COMPLETION.set(state)
    try:
        return complete_task(task_id, user, formdata=formdata)
    except BaseException:
        _discard_uncommitted(state["written"])
        raise
    finally:
        _COMPLETION.reset(token)


def photo_filename(photo, index):
    """The name as sent, with the extension of what the picture really is (a camera may send
    `image` or `blob`; the documents' rule is that the content matches the name)."""
    kind = sniff(photo.data)
    name = clean_filename(photo.filename) or f"photo-{index}"
    stem, dot, extension = name.rpartition(".")
    if dot and stem and NAMED.get(extension.lower()) == kind:
        return name
    return f"{(stem if dot and stem else name)[:190]}.{EXTENSIONS[kind]}"


def without_metadata(data, filename):
    """The picture drawn again without its metadata: a camera's EXIF/XMP tags carry the place
    a photo was taken (GPS), which is recorded only with the user's consent (a location
    field), never behind their back. The orientation tag is applied first, so the picture
    looks as it was taken. A file that is not a readable JPEG or PNG is refused."""
    kind = sniff(data)
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG", "PNG"]) as image:
            width, height = image.size
            if width * height > MAX_PHOTO_PIXELS:
                raise _refused(gettext("“%(name)s” has too many pixels (at most %(count)s "
                                       "million).", name=filename,
                                       count=MAX_PHOTO_PIXELS // 1_000_000))
            image.load()
            upright = ImageOps.exif_transpose(image)
            out = io.BytesIO()
            if kind == "jpeg":
                upright.convert("RGB").save(out, "JPEG", quality=90, optimize=True)
            else:
                upright.save(out, "PNG", optimize=True)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _refused(gettext("“%(name)s” is not a JPEG or PNG picture.",
                               name=filename)) from exc
    return out.getvalue()


def _refused(message):
    return InvalidData(message, code="invalid", field_errors={"file": [message]})


def store_photos(row, values):
    """BEFORE_COMPLETE hook: each photos field's pictures become case documents, replaced in
    the task data by the list of their ids."""
    batches = {name: value for name, value in values.items() if isinstance(value, PhotoBatch)}
    if not batches:
        return
    state = _COMPLETION.get()
    if state is None:
        raise RuntimeError("photos are stored by cases.fieldwork.complete_with_files")
    if row.case_id is None:
        raise InvalidData("photos need a case", code="invalid", field_errors={
            name: [N_("Photos can only be attached to a case.")] for name in batches})
    loan = db.session.get(Loan, row.case_id)
    for name, batch in batches.items():
        ids = []
        for index, photo in enumerate(batch, start=1):
            try:
                filename = photo_filename(photo, index)
                document, path = store_document(loan, state["actor"], PHOTO_DOCUMENT_KIND,
                                                filename, without_metadata(photo.data, filename))
            except InvalidData as exc:  # the form checked the same rules: not expected
                raise InvalidData(str(exc), code="invalid", field_errors={
                    name: [e for errors in exc.field_errors.values() for e in errors]}) from exc
            state["written"].append(path)
            ids.append(document.id)
        values[name] = ids


def _discard_uncommitted(paths):
    """Remove the files whose document rows did not commit (the completion was refused or
    failed before its commit); a failure after the commit keeps them."""
    if not paths:
        return
    db.session.rollback()
    kept = set(db.session.scalars(select(Document.stored_name).where(
        Document.stored_name.in_([p.name for p in paths]))))
    for path in paths:
        if path.name not in kept:
            path.unlink(missing_ok=True)


if store_photos not in BEFORE_COMPLETE:
    BEFORE_COMPLETE.append(store_photos)
