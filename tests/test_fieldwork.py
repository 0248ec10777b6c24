"""Field work on a phone (issue 13 item 9): photos from the camera stored as case documents with
the task's completion, and the location recorded only with the user's consent."""
import io
import json
import math

import pytest
from flask import render_template_string
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from werkzeug.datastructures import MultiDict

from audit.models import AuditEvent
from cases.models import Document
from forms.builder import build_form_class, parse_location
from tests.conftest import login
from tests.test_collection import CALL, overdue, ready, staff  # noqa: F401 (fixtures)
from tests.test_servicing import serviced  # noqa: F401 (fixture)
from workflows.errors import InvalidData
from workflows.models import HumanTask
from workflows.tasks import BEFORE_COMPLETE, complete_task

EN = {"Accept-Language": "en"}


def picture(kind, exif=None, size=(8, 6)):
    """A small real picture; `exif` as Pillow's Image.Exif, e.g. with a GPS tag."""
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, kind, **({"exif": exif} if exif else {}))
    return out.getvalue()


def camera_tags():
    """What a phone writes into a photo: its maker and where it was taken (GPS)."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 6  # Orientation: rotated 90°
    exif[0x8825] = {1: "N", 2: (30.0, 16.0, 26.7), 3: "E", 4: (120.0, 9.0, 18.3)}  # GPSInfo
    return exif


JPEG = picture("JPEG")
PNG = picture("PNG")
PDF = b"%PDF-1.4\n%%EOF\n"
REPORT = {"visit_address": "杭州市西湖区文三路 1 号", "visit_met": "借款人",
          "visit_findings": "shop open, stock on the shelves", "visit_situation": "cooperative",
          "visit_photos_note": "shop front, stock"}
FIX = {"visit_location-consent": "y", "visit_location-latitude": "30.274084",
       "visit_location-longitude": "120.155070", "visit_location-accuracy": "12.5",
       "visit_location-captured_at": "2026-05-08T02:15:00.000Z"}


@pytest.fixture
def docs_dir(app, tmp_path, monkeypatch):
    folder = tmp_path / "documents"
    monkeypatch.setitem(app.config, "DOCUMENTS_DIR", str(folder))
    return folder


@pytest.fixture
def visit(overdue, staff):
    """A collection case whose on-site visit the leader approved: the visit report is open."""
    loan = overdue()
    complete_task(ready(loan, "phone_collection").id, staff["collector"], data=dict(
        CALL, answered_by="nobody", collection_result="no_answer", next_step="propose_visit",
        visit_reason="no answer for a week"))
    complete_task(ready(loan, "approve_visit").id, staff["leader"],
                  data={"visit_decision": "approve", "visit_comment": "go"})
    return loan, ready(loan, "visit_report")


def collector(app):
    client = app.test_client()
    login(client, "collector")
    return client


def post_report(client, task, files=(), **extra):
    data = MultiDict(dict(REPORT, **extra))
    for content, name in files:
        data.add("visit_photos", (io.BytesIO(content), name))
    return client.post(f"/tasks/{task.id}", data=data, headers=EN,
                       content_type="multipart/form-data")


def stored_files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------- the form builder

SPEC = {"key": "t", "fields": [
    {"name": "phone", "type": "text", "input": "tel", "label": "Phone"},
    {"name": "count", "type": "integer", "label": "Count", "group": {"en": "Numbers"}},
    {"name": "amount", "type": "decimal", "label": "Amount", "group": {"en": "Numbers"}},
    {"name": "on", "type": "date", "label": "Day"},
    {"name": "pics", "type": "photos", "label": "Photos", "max_files": 2},
    {"name": "where", "type": "location", "label": "Where"}]}


def test_the_builder_renders_phone_inputs_photos_and_location(app):
    with app.test_request_context(headers=EN):
        form = build_form_class(SPEC)(meta={"csrf": False})
        html = render_template_string(
            '{% include "workflows/_field_capture.html" %}', form=form)
    assert 'type="tel"' in html and 'inputmode="tel"' in html
    assert 'inputmode="numeric"' in html and 'inputmode="decimal"' in html
    assert 'type="date"' in html
    # One fieldset for the two fields of the group, with its legend.
    assert html.count('<fieldset class="field-group">') == 1
    assert "<legend>Numbers</legend>" in html
    photo_input = html[html.index('id="pics"') - 200:html.index('id="pics"') + 200]
    for attribute in ('type="file"', 'accept="image/jpeg,image/png,image/*"',
                      'capture="environment"', "multiple"):
        assert attribute in photo_input
    assert 'name="where-consent"' in html and "Record my location for this visit" in html
    for part in ("latitude", "longitude", "accuracy", "captured_at"):
        assert f'type="hidden" id="where-{part}" name="where-{part}" value=""' in html
    assert 'id="where-button"' in html and "disabled" in html  # nothing asked before consent
    assert "fieldwork.js" in html and "<script>" not in html  # CSP: a file, never inline


def test_the_new_types_are_checked_in_specs():
    from forms.builder import check_spec
    assert check_spec({"fields": [{"name": "p", "type": "photos", "max_files": 0}]}) == [
        "field p: max_files must be 1 to 10"]
    assert check_spec({"fields": [{"name": "p", "type": "text", "input": "fax"}]})
    assert check_spec({"fields": [{"name": "p", "type": "location"}]}) == []


# ---------------------------------------------------------------- photos with the completion

def test_two_photos_become_case_documents_linked_from_the_task(app, visit, docs_dir):
    loan, task = visit
    response = post_report(collector(app), task, [(JPEG, "IMG_0001.jpg"), (PNG, "shelf")],
                           **FIX)
    assert response.status_code == 302, response.get_data(as_text=True)
    documents = Document.query.filter_by(loan_id=loan.id).order_by(Document.id).all()
    assert [(d.kind, d.filename, d.content_type) for d in documents] == [
        ("visit_photo", "IMG_0001.jpg", "image/jpeg"), ("visit_photo", "shelf.png", "image/png")]
    done = HumanTask.query.get(task.id)
    assert done.state == "completed"
    assert done.data["visit_photos"] == [d.id for d in documents]  # ids, never the bytes
    assert done.data["visit_location"] == {"latitude": 30.274084, "longitude": 120.15507,
                                           "accuracy": 12.5,
                                           "captured_at": "2026-05-08T02:15:00+00:00"}
    assert sorted(d.stored_name for d in documents) == stored_files(docs_dir)
    assert AuditEvent.query.filter_by(action="document.uploaded").count() == 2
    # The case page shows them in the documents and the visit's place in the history.
    page = collector(app).get(f"/cases/{loan.loan_no}", headers=EN).get_data(as_text=True)
    assert "IMG_0001.jpg" in page and "shelf.png" in page
    assert "30.274084, 120.155070 (± 12.5 m" in page
    assert "2 photos (in the documents)" in page


@pytest.mark.parametrize("files, message", [
    ([(JPEG, "a.jpg"), (PDF, "b.jpg")], "“b.jpg” is not a JPEG or PNG picture."),
    ([(b"GIF89a" + b"\x00" * 40, "c.gif")], "“c.gif” is not a JPEG or PNG picture."),
    ([(JPEG, "a.jpg"), (JPEG + b"\x00" * 4096, "big.jpg")], "“big.jpg” is too large"),
    ([(JPEG, f"{n}.jpg") for n in range(11)], "At most 10 photos."),
])
def test_a_bad_photo_is_refused_and_nothing_is_stored(app, visit, docs_dir, monkeypatch,
                                                      files, message):
    monkeypatch.setitem(app.config, "MAX_DOCUMENT_BYTES", 2048)
    loan, task = visit
    response = post_report(collector(app), task, files, **FIX)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page and 'id="visit_photos-error"' in page
    assert Document.query.count() == 0 and stored_files(docs_dir) == []
    assert HumanTask.query.get(task.id).state == "ready"
    assert not AuditEvent.query.filter_by(action="document.uploaded").count()


def test_a_refusal_after_the_photos_were_written_removes_them(app, visit, docs_dir):
    """A rule checked after the photos were stored (a later BEFORE_COMPLETE hook) refuses the
    completion: the transaction rolls back and the files go with it."""
    loan, task = visit

    def refuse(row, values):
        raise InvalidData("no", code="invalid", field_errors={"visit_findings": ["Too short."]})
    BEFORE_COMPLETE.append(refuse)
    try:
        response = post_report(collector(app), task, [(JPEG, "a.jpg"), (PNG, "b.png")])
    finally:
        BEFORE_COMPLETE.remove(refuse)
    assert response.status_code == 400
    assert Document.query.count() == 0 and stored_files(docs_dir) == []
    assert HumanTask.query.get(task.id).state == "ready"


def test_a_second_completion_stores_nothing(app, visit, docs_dir):
    loan, task = visit
    client = collector(app)
    assert post_report(client, task, [(JPEG, "a.jpg")]).status_code == 302
    post_report(client, task, [(JPEG, "b.jpg")])  # refused: the task is no longer open
    assert [d.filename for d in Document.query.all()] == ["a.jpg"]
    assert len(stored_files(docs_dir)) == 1


def test_the_report_without_photos_or_location_still_works(app, visit, docs_dir):
    loan, task = visit
    assert post_report(collector(app), task).status_code == 302
    done = HumanTask.query.get(task.id)
    assert done.data["visit_photos"] == [] and done.data["visit_location"] is None
    assert Document.query.count() == 0


def test_the_api_completes_with_photos_in_a_multipart_body(app, visit, docs_dir, token_for):
    loan, task = visit
    client = app.test_client()
    body = MultiDict({"data": json.dumps(dict(REPORT, visit_location={
        "consent": True, "latitude": -33.8688, "longitude": 151.2093, "accuracy": 30,
        "captured_at": "2026-05-08T10:00:00+08:00"}))})
    body.add("visit_photos", (io.BytesIO(JPEG), "one.jpg"))
    body.add("visit_photos", (io.BytesIO(PNG), "two.png"))
    response = client.post(f"/api/v1/tasks/{task.id}/complete", data=body,
                           content_type="multipart/form-data", headers=token_for("collector"))
    assert response.status_code == 200, response.get_json()
    done = HumanTask.query.get(task.id)
    assert done.data["visit_photos"] == [d.id for d in Document.query.order_by(Document.id)]
    assert len(done.data["visit_photos"]) == 2
    assert done.data["visit_location"]["captured_at"] == "2026-05-08T02:00:00+00:00"


def test_the_api_refuses_a_bad_photo_with_a_field_error(app, visit, docs_dir, token_for):
    loan, task = visit
    body = MultiDict({"data": json.dumps(REPORT)})
    body.add("visit_photos", (io.BytesIO(PDF), "scan.pdf"))
    response = app.test_client().post(f"/api/v1/tasks/{task.id}/complete", data=body,
                                      content_type="multipart/form-data",
                                      headers=token_for("collector"))
    assert response.status_code == 400
    assert "visit_photos" in json.dumps(response.get_json())
    assert Document.query.count() == 0 and stored_files(docs_dir) == []


def test_the_api_json_completion_ignores_photo_values(app, visit, docs_dir, token_for):
    """Photos come only as files: ids or bytes in the JSON values are not taken."""
    loan, task = visit
    response = app.test_client().post(
        f"/api/v1/tasks/{task.id}/complete", headers=token_for("collector"),
        json={"data": dict(REPORT, visit_photos=[1, 2], visit_location={"latitude": 1,
                                                                        "longitude": 2,
                                                                        "accuracy": 3})})
    assert response.status_code == 200
    done = HumanTask.query.get(task.id)
    # No consent in the location object: nothing kept.
    assert done.data["visit_photos"] == [] and done.data["visit_location"] is None


# ---------------------------------------------------------------- location and consent

def test_location_without_consent_is_dropped(app, visit, docs_dir):
    loan, task = visit
    fix = {k: v for k, v in FIX.items() if not k.endswith("consent")}
    assert post_report(collector(app), task, **fix).status_code == 302
    assert HumanTask.query.get(task.id).data["visit_location"] is None
    events = AuditEvent.query.filter_by(action="task.completed", task_id=task.id).all()
    assert "120.15" not in json.dumps([e.data for e in events])


@pytest.mark.parametrize("change, message", [
    ({"visit_location-latitude": "91"}, "The coordinates are not valid"),
    ({"visit_location-longitude": "-180.5"}, "The coordinates are not valid"),
    ({"visit_location-latitude": "nan"}, "The coordinates are not valid"),
    ({"visit_location-accuracy": "0"}, "The accuracy of the location must be a positive"),
    ({"visit_location-accuracy": ""}, "The accuracy of the location must be a positive"),
    ({"visit_location-captured_at": "yesterday"}, "The time of the location is not valid."),
    ({"visit_location-latitude": "", "visit_location-longitude": ""},
     "The location was not recorded"),
])
def test_bad_coordinates_are_refused(app, visit, docs_dir, change, message):
    loan, task = visit
    response = post_report(collector(app), task, [(JPEG, "a.jpg")], **dict(FIX, **change))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert HumanTask.query.get(task.id).state == "ready" and Document.query.count() == 0


def _raw(lat, lon, acc):
    return {"consent": "y", "latitude": repr(lat), "longitude": repr(lon), "accuracy": repr(acc),
            "captured_at": "2026-05-08T02:15:00Z"}


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lat=st.floats(allow_nan=True, allow_infinity=True, width=64),
       lon=st.floats(allow_nan=True, allow_infinity=True, width=64),
       acc=st.floats(allow_nan=True, allow_infinity=True, width=64))
def test_a_location_is_kept_exactly_when_it_is_on_earth(app, lat, lon, acc):
    with app.test_request_context(headers=EN):
        valid = (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon)
                 and -180 <= lon <= 180 and math.isfinite(acc) and 0 < acc <= 100_000)
        try:
            kept = parse_location(_raw(lat, lon, acc))
        except ValueError:
            assert not valid
        else:
            assert valid
            assert -90 <= kept["latitude"] <= 90 and -180 <= kept["longitude"] <= 180
            assert kept["accuracy"] >= 0 and abs(kept["latitude"] - lat) <= 5e-7


def test_photos_over_the_request_limit_send_the_user_back_to_the_form(app, visit, docs_dir,
                                                                     monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024 * 1024)
    loan, task = visit
    client = collector(app)
    response = post_report(client, task, [(JPEG + b"\x00" * 1024 * 1024, "big.jpg")])
    assert response.status_code == 302 and response.location.endswith(f"/tasks/{task.id}")
    page = client.get(response.location, headers=EN).get_data(as_text=True)
    assert "The photos are too large together (at most 1 MB in one submission)" in page
    assert Document.query.count() == 0 and HumanTask.query.get(task.id).state == "ready"


def test_photos_lose_the_cameras_tags_before_they_are_stored(app, visit, docs_dir):
    """PIPL: the place a photo was taken is recorded only through the consented location
    field; the GPS and maker tags of the camera never reach the documents. The picture is
    turned upright first, as its orientation tag said."""
    loan, task = visit
    tagged = picture("JPEG", camera_tags(), size=(40, 20))
    with Image.open(io.BytesIO(tagged)) as sent:
        assert sent.getexif().get_ifd(0x8825)  # the GPS is there in what the phone sends
    response = post_report(collector(app), task, [(tagged, "gps.jpg"), (PNG, "plain.png")],
                           **FIX)
    assert response.status_code == 302, response.get_data(as_text=True)
    stored = {d.filename: (docs_dir / d.stored_name).read_bytes()
              for d in Document.query.filter_by(loan_id=loan.id)}
    with Image.open(io.BytesIO(stored["gps.jpg"])) as kept:
        assert dict(kept.getexif()) == {} and not kept.getexif().get_ifd(0x8825)
        assert kept.size == (20, 40)  # upright
        assert b"PhoneMaker" not in stored["gps.jpg"]
    assert Document.query.filter_by(filename="gps.jpg").one().sha256 == \
        __import__("hashlib").sha256(stored["gps.jpg"]).hexdigest()


def test_a_file_that_only_looks_like_a_picture_is_refused(app, visit, docs_dir):
    """The right first bytes are not enough: the picture must decode; nothing is stored."""
    loan, task = visit
    fake = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 200 + b"\xff\xd9"
    response = post_report(collector(app), task, [(JPEG, "good.jpg"), (fake, "fake.jpg")], **FIX)
    assert response.status_code == 400
    assert "“fake.jpg” is not a JPEG or PNG picture." in response.get_data(as_text=True)
    assert Document.query.filter_by(loan_id=loan.id).count() == 0
    assert stored_files(docs_dir) == []
    assert HumanTask.query.get(task.id).state == "ready"
