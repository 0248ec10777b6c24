"""Process studio: the editor (routes on studio.bp).

Process owners open a deployed process (or their draft of it) in bpmn-js, edit the diagram and
its form specs, save drafts, validate and deploy a new version. The JSON endpoints take and
return {xml, forms}; problems come back as a list of {element_id, process_id, code, message,
hint}, all at once. Deploying goes through workflows' deploy_xml, which audits it."""
import json
from pathlib import Path

from flask import abort, jsonify, redirect, render_template, request, url_for
from flask_babel import force_locale, gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from lxml import etree

from accounts.auth import roles_required
from accounts.models import User
from accounts.roles import ROLES
from audit.operations import record
from extensions import db
from forms.builder import FormSpecError, build_form_class, check_spec, localized
from studio import bp
from workflows import definitions, hygiene, validation
from workflows.clock import now
from workflows.errors import DeployError
from workflows.models import FormDefinition, ProcessDefinition, ProcessDraft

ROOT = Path(__file__).resolve().parent.parent
FORMS_DIR = ROOT / "bpmn" / "forms"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
PREVIEW_LOCALES = ("zh_CN", "en")


def owner_only(view):
    return login_required(roles_required("process_owner")(view))


# --- reading ----------------------------------------------------------------------------------

def _latest_definitions():
    """The latest version of every deployed process, by key."""
    latest = (db.session.query(ProcessDefinition.process_key,
                               db.func.max(ProcessDefinition.version).label("version"))
              .group_by(ProcessDefinition.process_key).subquery())
    rows = (ProcessDefinition.query
            .join(latest, db.and_(ProcessDefinition.process_key == latest.c.process_key,
                                  ProcessDefinition.version == latest.c.version))
            .order_by(ProcessDefinition.process_key).all())
    return rows


def _definition_forms(definition):
    """{form key: spec} of the form versions deployed with a process version."""
    ids = list((definition.forms or {}).values())
    if not ids:
        return {}
    by_id = {f.id: f for f in FormDefinition.query.filter(FormDefinition.id.in_(ids))}
    return {key: by_id[fid].spec for key, fid in definition.forms.items() if fid in by_id}


def known_forms():
    """Every form spec the studio knows: bpmn/forms/ files, then the latest deployed versions."""
    specs = {}
    for path in sorted(FORMS_DIR.glob("*.json")):
        try:
            specs[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
    latest = (db.session.query(FormDefinition.form_key,
                               db.func.max(FormDefinition.version).label("version"))
              .group_by(FormDefinition.form_key).subquery())
    for form in FormDefinition.query.join(
            latest, db.and_(FormDefinition.form_key == latest.c.form_key,
                            FormDefinition.version == latest.c.version)):
        specs[form.form_key] = form.spec
    return specs


def referenced_form_keys(xml):
    """formKey values of the diagram (empty when it does not parse)."""
    try:
        tree = etree.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml)
    except etree.XMLSyntaxError:
        return set()
    return {el.get("value") for el in tree.iter(f"{{{SPIFF_NS}}}property")
            if el.get("name") == "formKey" and el.get("value")}


def forms_for(xml, draft_forms):
    """The draft's forms plus the known specs of the other form keys the diagram uses."""
    forms = dict(draft_forms or {})
    known = None
    for key in referenced_form_keys(xml):
        if key not in forms:
            known = known if known is not None else known_forms()
            if key in known:
                forms[key] = known[key]
    return forms


def _draft_or_404(draft_id):
    draft = db.session.get(ProcessDraft, draft_id)
    if draft is None:
        abort(404)
    return draft


def _new_draft(process_key):
    definition = definitions.latest_definition(process_key)
    if definition is None:
        abort(404)
    draft = ProcessDraft(process_key=process_key, bpmn_xml=definition.bpmn_xml,
                         forms=_definition_forms(definition), based_on_id=definition.id,
                         updated_by_id=current_user.id, updated_at=now())
    db.session.add(draft)
    db.session.flush()
    record("draft.created", actor=current_user,
           data={"process": process_key, "draft": draft.id, "based_on": definition.version})
    db.session.commit()
    return draft


# --- validation and deploy ------------------------------------------------------------------

# What each kind of problem means, in the user's language; the detail stays as the checker
# wrote it (it quotes element ids, expressions and library messages).
PROBLEM_TITLES = {
    "not_xml": _l("Not an XML file"),
    "not_bpmn": _l("Not a BPMN diagram"),
    "no_process": _l("No executable process"),
    "bpmn_invalid": _l("Invalid BPMN"),
    "duplicate_id": _l("The same id is used twice"),
    "id_missing": _l("An element without an id"),
    "id_whitespace": _l("An id with spaces around it"),
    "broken_flow": _l("A sequence flow points at a missing element"),
    "process_id_collision": _l("The process id is already taken"),
    "too_long": _l("An id or name is too long"),
    "no_lane": _l("A task outside every lane"),
    "unknown_lane": _l("A lane that is not a role"),
    "no_start_event": _l("No start event"),
    "unreachable": _l("An element that can never be reached"),
    "due_not_number": _l("The due date is not a number of working days"),
    "priority_invalid": _l("Unknown priority"),
    "unknown_reference": _l("A four-eyes or stay-with rule names an unknown task"),
    "same_and_not_same": _l("A task both stays with and may not be taken by the same step's "
                            "person"),
    "unknown_form": _l("Unknown form"),
    "form_invalid": _l("The form has errors"),
    "unknown_service": _l("Unknown service operation"),
    "gateway_no_default": _l("A gateway path without a condition or default"),
    "script_syntax": _l("A script or condition does not compile"),
    "script_forbidden": _l("A forbidden construct in a script"),
    "timer_invalid": _l("A timer expression that does not evaluate"),
    "code_too_expensive": _l("A script or expression over the time or memory limit"),
    "called_process_missing": _l("A call activity names a process that is not deployed"),
    "call_cycle": _l("A process that calls itself"),
    "name_missing": _l("A task without a name"),
    "name_zh_missing": _l("No Chinese name"),
    # Modelling hygiene (workflows/hygiene.py): warnings unless the process owner chose that
    # they block deploy.
    "label_required": _l("An element without a name"),
    "implicit_end": _l("A path that ends without an end event"),
    "implicit_start": _l("A path that starts without a start event"),
    "no_end_event": _l("No end event"),
    "fake_join": _l("Parallel paths meet at a task, not at a gateway"),
    "implicit_split": _l("A task that splits the flow without a gateway"),
    "gateway_join_fork": _l("A gateway that both joins and splits"),
    "superfluous_gateway": _l("A gateway that does nothing"),
    "duplicate_flow": _l("A duplicate sequence flow"),
    "link_unpaired": _l("A link event without its pair"),
    "disconnected": _l("An element connected to nothing"),
    "complex_gateway": _l("A complex gateway"),
    "blank_start_events": _l("More than one start event without a trigger"),
    "event_definitions": _l("An event with more than one trigger"),
    "warnings_block_deploy": _l("Warnings block the deploy of this process"),
    "script_not_python": _l("A script not written in Python"),
    "script_missing": _l("A script task without a script"),
    "lane_reference_spaces": _l("A lane reference with spaces around the id"),
    "called_element_spaces": _l("A called process id with spaces around it"),
    "multi_instance_stuck": _l("A sequential multi-instance that stops after its first "
                               "instance"),
    "message_flow_between_processes": _l("A message flow between two executable processes"),
    "process_id_missing": _l("A process without an id"),
    "chain_too_long": _l("Too many elements in a row"),
    "data_association_unresolved": _l("A data association to something that is not data"),
    "task_multiple_outgoing": _l("Several flows leave an element without a gateway"),
    "event_reference_missing": _l("An event refers to an undefined message, signal, error or "
                                  "escalation"),
    "multi_instance_no_input": _l("A multi-instance without a clear number of instances"),
    "multi_instance_io_missing": _l("A multi-instance collection that is not declared"),
    "loop_unbounded": _l("A loop that never ends"),
    "cancel_outside_transaction": _l("A cancel event outside a transaction"),
    "element_unsupported": _l("An element the engine does not support"),
    "data_store_unknown": _l("An unknown data store"),
    "definition_id_missing": _l("A definition without an id"),
    "correlation_incomplete": _l("An incomplete message correlation"),
    "condition_missing": _l("An event without its condition"),
}


def problem_dict(problem):
    """A workflows.validation.Problem as JSON for the browser."""
    title = PROBLEM_TITLES.get(problem.code)
    message, hint = problem.localized()
    return {"element_id": problem.element_id, "process_id": problem.process_id,
            "code": problem.code, "title": str(title) if title else None,
            "message": message, "hint": hint}


def _filename(draft):
    """The file name the process was last deployed from (deploy refuses another one)."""
    definition = definitions.latest_definition(draft.process_key)
    return (definition.filename if definition and definition.filename
            else f"{draft.process_key}.bpmn")


def findings(xml: str, forms: dict, filename: str):
    """(problems, warnings) of a diagram and its forms, as dicts; nothing is written. The
    warnings of a process whose owner chose that they block deploy are among the problems,
    as deploy would refuse them."""
    refusing, others = hygiene.review(xml)
    problems = validation.validate(xml.encode("utf-8"), forms_for(xml, forms),
                                   filename=filename) + refusing
    return [problem_dict(p) for p in problems], [problem_dict(p) for p in others]


def validate(xml: str, forms: dict, filename: str):
    """Every problem of a diagram and its forms, as dicts."""
    return findings(xml, forms, filename)[0]


def warnings(xml: str):
    """What may deploy but should be fixed (workflows/hygiene.py), as dicts; without those
    that block the deploy (see findings)."""
    return [problem_dict(p) for p in hygiene.review(xml)[1]]


def deploy(xml: str, forms: dict, filename: str, comment: str):
    """Deploy the draft's diagram with its own form specs; raises DeployError."""
    return definitions.deploy_xml(xml.encode("utf-8"), filename, forms_dir=None,
                                  actor=current_user, comment=comment,
                                  forms=forms_for(xml, forms))


# --- pages ------------------------------------------------------------------------------------

@bp.route("/")
@owner_only
def index():
    drafts = {}
    newest_first = (ProcessDraft.updated_at.desc(), ProcessDraft.id.desc())
    for draft in ProcessDraft.query.order_by(*newest_first):
        drafts.setdefault(draft.process_key, []).append(draft)
    processes = _latest_definitions()
    deployers = {u.id: u for u in User.query.filter(
        User.id.in_({p.deployed_by_id for p in processes if p.deployed_by_id}))}
    known = {p.process_key for p in processes}
    orphans = sorted(k for k in drafts if k not in known)
    return render_template("studio/index.html", processes=processes, drafts=drafts,
                           deployers=deployers, orphans=orphans)


@bp.route("/processes/<key>/edit")
@owner_only
def edit_process(key):
    """The latest draft of the process, or a new one from its latest deployed version."""
    draft = (ProcessDraft.query.filter_by(process_key=key)
             .order_by(ProcessDraft.updated_at.desc(), ProcessDraft.id.desc()).first())
    if draft is None:
        draft = _new_draft(key)
    return redirect(url_for("studio.edit_draft", draft_id=draft.id))


@bp.route("/processes/<key>/drafts", methods=["POST"])
@owner_only
def new_draft(key):
    """A fresh draft from the latest deployed version (other drafts stay)."""
    draft = _new_draft(key)
    return redirect(url_for("studio.edit_draft", draft_id=draft.id))


@bp.route("/drafts/<int:draft_id>/edit")
@owner_only
def edit_draft(draft_id):
    draft = _draft_or_404(draft_id)
    based_on = db.session.get(ProcessDefinition, draft.based_on_id) if draft.based_on_id else None
    known = known_forms()
    refusing, others = hygiene.review(draft.bpmn_xml)
    strings = {
        "saved": _("Draft saved."), "saving": _("Saving…"), "validating": _("Validating…"),
        "deploying": _("Deploying…"), "no_problems": _("No problems found."),
        "problems": _("Problems"), "deployed": _("Deployed as version %(version)s."),
        "comment_required": _("A comment is required to deploy."),
        "deploy_refused": _("Not deployed: fix the problems listed."),
        "failed": _("The request failed: %(error)s"),
        "nothing_selected": _("Select an element of the diagram to edit its properties."),
        "name": _("Name (English)"), "name_zh": _("Name (Chinese)"),
        "process_name": _("Process name (English)"),
        "process_name_zh": _("Process name (Chinese)"), "id": _("Id"), "type": _("Type"), "lane_role": _("Lane (role)"),
        "form_key": _("Form"), "none": _("(none)"), "due": _("Due in working days"),
        "priority": _("Priority"), "high": _("High"), "normal": _("Normal"), "low": _("Low"),
        "not_same_user_as": _("Not the same user as (task ids, comma-separated)"),
        "candidate_user_variable": _("Candidate user variable"),
        "not_user_variable": _("Not the user in variable"),
        "timer_kind": _("Timer"), "time_date": _("Date (timeDate)"),
        "time_duration": _("Duration (timeDuration)"), "time_cycle": _("Cycle (timeCycle)"),
        "timer_expression": _("Timer expression"),
        "condition": _("Condition of this path"),
        "condition_help": _("A Python expression on the case's data, e.g. dpd >= 90. The "
                            "gateway takes this path when it is true."),
        "unknown_role": _("Not a role: %(name)s"), "import_warnings": _("Diagram warnings"),
        "import_failed": _("The diagram could not be opened: %(error)s"),
        "new_form_key": _("Key of the new form (letters, digits, underscores)"),
        "bad_form_key": _("A form key must be an identifier not used yet."),
        "invalid_json": _("Not valid JSON: %(error)s"),
        "edit_form": _("Edit this form"), "unsaved": _("Unsaved changes"),
        "form_problems": _("Form problems"),
        "title_en": _("Title (English)"), "title_zh": _("Title (Chinese)"),
        "field_name": _("Field name"), "field_type": _("Type"), "required": _("Required"),
        "label_en": _("Label (English)"), "label_zh": _("Label (Chinese)"),
        "remove": _("Remove"), "move_up": _("Move up"), "add_field": _("Add a field"),
        "warnings_block_deploy": _("Warnings block deploy"),
        "warnings_block_deploy_help": _("When checked, this process is not deployed while "
                                        "the diagram has warnings. The choice is saved in "
                                        "the diagram."),
        "element_problems": _("Problems of this element"),
        "element_warnings": _("Warnings of this element"),
    }
    return render_template(
        "studio/editor.html", draft=draft, based_on=based_on,
        config={
            "draftId": draft.id, "processKey": draft.process_key, "xml": draft.bpmn_xml,
            "forms": draft.forms or {}, "knownForms": known,
            # Shown on the elements as soon as the diagram opens (the full check, with its
            # sandboxed scripts, waits for Validate).
            "warnings": [problem_dict(p) for p in others],
            "blocking": [problem_dict(p) for p in refusing],
            "roles": {k: str(v) for k, v in ROLES.items()},
            "urls": {"save": url_for("studio.save_draft", draft_id=draft.id),
                     "validate": url_for("studio.validate_draft", draft_id=draft.id),
                     "deploy": url_for("studio.deploy_draft", draft_id=draft.id),
                     "preview": url_for("studio.preview_form"),
                     "index": url_for("studio.index")},
            "strings": strings,
        })


# --- JSON endpoints ---------------------------------------------------------------------------

def _payload(draft):
    """xml and forms of the request, defaulting to the draft's; 400 on a malformed body."""
    body = request.get_json(silent=True)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        abort(_json_error(_("The request body must be a JSON object.")))
    xml = body.get("xml", draft.bpmn_xml)
    forms = body.get("forms", draft.forms or {})
    if not isinstance(xml, str) or not xml.strip():
        abort(_json_error(_("The diagram is missing.")))
    if not isinstance(forms, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in forms.items()):
        abort(_json_error(_("Forms must be an object of form specs by key.")))
    return body, xml, forms


def _json_error(message, status=400, **extra):
    response = jsonify({"ok": False, "error": message, **extra})
    response.status_code = status
    return response


@bp.route("/drafts/<int:draft_id>", methods=["POST"])
@owner_only
def save_draft(draft_id):
    draft = _draft_or_404(draft_id)
    _body, xml, forms = _payload(draft)
    problems, warned = findings(xml, forms, _filename(draft))
    draft.bpmn_xml, draft.forms = xml, forms
    draft.updated_by_id, draft.updated_at = current_user.id, now()
    record("draft.saved", actor=current_user,
           data={"process": draft.process_key, "draft": draft.id, "problems": len(problems)})
    db.session.commit()
    return jsonify({"ok": True, "problems": problems, "warnings": warned,
                    "updated_at": draft.updated_at.isoformat()})


@bp.route("/drafts/<int:draft_id>/validate", methods=["POST"])
@owner_only
def validate_draft(draft_id):
    draft = _draft_or_404(draft_id)
    _body, xml, forms = _payload(draft)
    problems, warned = findings(xml, forms, _filename(draft))
    return jsonify({"ok": not problems, "problems": problems, "warnings": warned})


@bp.route("/drafts/<int:draft_id>/deploy", methods=["POST"])
@owner_only
def deploy_draft(draft_id):
    draft = _draft_or_404(draft_id)
    body, xml, forms = _payload(draft)
    comment = (body.get("comment") or "").strip() if isinstance(body.get("comment"), str) else ""
    if not comment:
        return _json_error(_("A comment is required to deploy."), problems=[])
    try:
        deployed = deploy(xml, forms, _filename(draft), comment)
    except DeployError as exc:
        db.session.rollback()
        return _json_error(_("Not deployed: fix the problems listed."), status=422,
                           problems=[problem_dict(p) for p in exc.problems])
    versions = [{"process_key": d.process_key, "version": d.version} for d in deployed]
    key = draft.process_key
    # The draft is now a deployed version; the next edit starts from it.
    db.session.delete(draft)
    db.session.commit()
    mine = next((v for v in versions if v["process_key"] == key), versions[0])
    return jsonify({"ok": True, "problems": [], "deployed": versions,
                    "version": mine["version"],
                    "edit_url": url_for("studio.edit_process", key=key)})


@bp.route("/forms/preview", methods=["POST"])
@owner_only
def preview_form():
    body = request.get_json(silent=True)
    spec = body.get("spec") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        return _json_error(_("The form spec must be a JSON object."))
    problems = check_spec(spec)
    if problems:
        return jsonify({"ok": False, "problems": problems, "html": {}})
    html = {}
    for locale in PREVIEW_LOCALES:
        with force_locale(locale):
            try:
                form = build_form_class(spec, locale=locale)(formdata=None, meta={"csrf": False})
            except (FormSpecError, KeyError, TypeError, ValueError) as exc:
                return jsonify({"ok": False, "problems": [str(exc)], "html": {}})
            html[locale] = render_template(
                "studio/_form_preview.html", form=form, locale=locale,
                title=localized(spec.get("title"), locale),
                instructions=localized(spec.get("instructions"), locale))
    return jsonify({"ok": True, "problems": [], "html": html})
