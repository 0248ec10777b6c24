"""Process studio: versions, diffs, downloads and batch migration (routes on studio.bp)."""
import io
import json
import zipfile

from flask import Response, abort, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from accounts.auth import deny, roles_required
from cases.models import Loan
from extensions import db
from studio import bp
from i18n import current_language
from workflows import migration, replay
from workflows.errors import InvalidData
from workflows.models import ProcessDefinition
from workflows.versions import diff_versions, form_specs, get_version, version_rows

# Who may read versions and diffs; only process owners migrate.
READERS = ("process_owner", "admin")

PROPERTY_LABELS = {
    "type": _l("Element type"), "name": _l("Element name"), "lane": _l("Lane"),
    "sourceRef": _l("Source element"), "targetRef": _l("Target element"), "default": _l("Default flow"),
    "calledElement": _l("Called process"), "attachedToRef": _l("Attached to"),
    "cancelActivity": _l("Interrupting"), "messageRef": _l("Message"),
    "script": _l("Script"), "preScript": _l("Pre-script"), "postScript": _l("Post-script"),
    "condition": _l("Condition"), "instructions": _l("Instructions"),
    "operation": _l("Service operation"), "resultVariable": _l("Result variable"),
    "timer": _l("Timer"), "event": _l("Event"), "multiInstance": _l("Multi-instance"),
    "label": _l("Label"), "required": _l("Required"), "required_if": _l("Required if"),
    "choices": _l("Choices"), "max_length": _l("Maximum length"),
    "not_past": _l("Not in the past"),
    "title": _l("Title"), "show": _l("Earlier fields shown"), "show_data": _l("Process data shown"),
}


def property_label(key):
    if key.startswith("property:"):
        return _("Property %(name)s", name=key.split(":", 1)[1])
    if key.startswith("parameter:"):
        return _("Parameter %(name)s", name=key.split(":", 1)[1])
    return str(PROPERTY_LABELS.get(key, key))


def reason_text(reason):
    """A migration refusal in the user's language."""
    code = reason.get("code")
    task, state = reason.get("task", ""), reason.get("state", "")
    if code == "done_removed":
        return _("Task %(task)s (%(state)s) was removed in the new version.", task=task,
                 state=state)
    if code == "done_changed":
        return _("Task %(task)s (%(state)s) was changed in the new version: %(changes)s.",
                 task=task, state=state, changes=", ".join(reason.get("changes", [])))
    if code == "open_removed":
        return _("Waiting at %(task)s, which no longer exists in the new version.", task=task)
    if code == "subprocess_removed":
        return _("Subprocess %(task)s no longer exists in the new version.", task=task)
    if code == "not_running":
        return _("The process is no longer running.")
    if code == "same_version":
        return _("The case already runs this version.")
    if code == "other_process":
        return _("The case runs another process.")
    if code == "stale":
        return _("Someone else changed this case at the same moment; try again.")
    if code == "missing":
        return _("No such process instance.")
    if code == "unreadable":
        return _("The state of this case could not be read: %(error)s", error=reason.get("error"))
    if code == "run_failed":
        return _("The process could not continue on the new version: %(error)s",
                 error=reason.get("error"))
    return _("Migration failed: %(error)s", error=reason.get("error") or reason.get("text"))


def _version_or_404(process_key, version):
    definition = get_version(process_key, version)
    if definition is None:
        abort(404)
    return definition


def _loan_numbers(case_ids):
    ids = [i for i in set(case_ids) if i]
    if not ids:
        return {}
    return dict(db.session.query(Loan.id, Loan.loan_no).filter(Loan.id.in_(ids)).all())


@bp.route("/processes/<process_key>/versions")
@login_required
@roles_required(*READERS)
def versions(process_key):
    rows = version_rows(process_key)
    if not rows:
        abort(404)
    return render_template("studio/versions.html", process_key=process_key, rows=rows,
                           latest=rows[0])


@bp.route("/processes/<process_key>/diff")
@login_required
@roles_required(*READERS)
def diff(process_key):
    try:
        old_n, new_n = int(request.args["from"]), int(request.args["to"])
    except (KeyError, ValueError):
        abort(404)
    old, new = _version_or_404(process_key, old_n), _version_or_404(process_key, new_n)
    return render_template("studio/versions_diff.html", process_key=process_key, old=old,
                           new=new, diff=diff_versions(old, new), property_label=property_label,
                           versions=[r["version"] for r in version_rows(process_key)])


@bp.route("/processes/<process_key>/versions/<int:version>/download")
@login_required
@roles_required(*READERS)
def download(process_key, version):
    definition = _version_or_404(process_key, version)
    return Response(definition.bpmn_xml.encode("utf-8"), mimetype="application/xml",
                    headers={"Content-Disposition": "attachment; filename="
                             f"{process_key}-v{version}.bpmn"})


@bp.route("/processes/<process_key>/versions/<int:version>/forms.json")
@login_required
@roles_required(*READERS)
def download_forms(process_key, version):
    definition = _version_or_404(process_key, version)
    body = json.dumps(form_specs(definition), ensure_ascii=False, indent=2, sort_keys=True)
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": "attachment; filename="
                             f"{process_key}-v{version}-forms.json"})


@bp.route("/processes/<process_key>/versions/<int:version>/download.zip")
@login_required
@roles_required(*READERS)
def download_zip(process_key, version):
    """The diagram and its forms laid out as in bpmn/: ready to deploy again."""
    definition = _version_or_404(process_key, version)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(definition.filename or f"{process_key}.bpmn", definition.bpmn_xml)
        for key, form in form_specs(definition).items():
            archive.writestr(f"forms/{key}.json",
                             json.dumps(form["spec"], ensure_ascii=False, indent=2))
    return Response(buffer.getvalue(), mimetype="application/zip",
                    headers={"Content-Disposition": "attachment; filename="
                             f"{process_key}-v{version}.zip"})


@bp.route("/processes/<process_key>/versions/<int:version>/migrate", methods=["GET", "POST"])
@login_required
def migrate(process_key, version):
    if request.method == "POST" and not current_user.has_role("process_owner"):
        deny(current_user, "role")
    if not current_user.has_role(*READERS):
        deny(current_user, "role")
    target = _version_or_404(process_key, version)
    if request.method == "POST":
        selected = [i for i in request.form.getlist("instance_id") if i.isdigit()]
        comment = request.form.get("comment", "")
        try:
            report = migration.migrate(selected, target, current_user, comment)
        except InvalidData as exc:
            error = (_("A comment is required: say why these cases move.")
                     if exc.code == "comment_required"
                     else _("Choose at least one case to migrate."))
            return _render_preview(target, error=error, selected=set(selected),
                                   comment=comment, status=400)
        loans = _loan_numbers(r["case_id"] for r in report)
        return render_template("studio/migrate_report.html", process_key=process_key,
                               target=target, report=report, loans=loans,
                               reason_text=reason_text,
                               moved=sum(1 for r in report if r["migrated"]))
    return _render_preview(target)


REPLAY_OUTCOMES = {"identical": _l("Identical"), "diverges": _l("Diverges"),
                   "fails": _l("Fails")}


def _replay_words(target):
    """replay_text(row) → (outcome, where it differs) of a preview row, in the reader's
    language; the step names are the target's, then the versions the cases run on."""
    names = replay.Names(replay.draft_of(target),
                         ProcessDefinition.query.filter_by(process_key=target.process_key),
                         locale=current_language())

    def replay_text(row):
        found = row.get("replay")
        if not found:
            return None, ""
        return (str(REPLAY_OUTCOMES[found["outcome"]]),
                replay.describe(found["reason"], names, _))
    return replay_text


def _render_preview(target, error=None, selected=None, comment="", status=200):
    rows = migration.preview(target)
    loans = _loan_numbers(r["case_id"] for r in rows)
    if selected is None:
        selected = {str(r["instance_id"]) for r in rows if r["can_move"]}
    return render_template("studio/migrate.html", process_key=target.process_key,
                           target=target, rows=rows, loans=loans, error=error,
                           selected=selected, comment=comment, reason_text=reason_text,
                           replay_text=_replay_words(target), can_migrate=current_user.has_role("process_owner")), status
