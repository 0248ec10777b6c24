"""Process studio: replay a draft against the recorded history of past cases before it is
deployed (routes on studio.bp).

POST {xml, forms?, completed?} → the draft is checked as deploy would (its problems come back
as the editor's are), then the running cases of its process (and the `completed` most recently
completed ones) are replayed on it (workflows.replay): the counts and one row per case with
the reason in the reader's language. Nothing is written."""
from flask import jsonify, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from i18n import current_language
from studio import bp
from studio.editor import (_draft_or_404, _filename, _json_error, _payload, forms_for,
                           owner_only, problem_dict)
from workflows import replay

OUTCOMES = {"identical": _l("Identical"), "diverges": _l("Diverges"), "fails": _l("Fails")}
STATUSES = {"running": _l("Running"), "completed": _l("Completed"), "error": _l("Stopped by an error")}


def _completed(body):
    value = body.get("completed", 0)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not \
            0 <= value <= replay.COMPLETED_LIMIT:
        return None
    return value


def report_rows(report, names):
    """The report's cases for the browser and the migration preview: words, not codes."""
    rows = []
    for row in report["cases"]:
        rows.append({
            "instance_id": row["instance_id"], "loan_no": row["loan_no"],
            "case_url": url_for("cases.show", loan_no=row["loan_no"]) if row["loan_no"] else None,
            "version": row["version"], "status": str(STATUSES.get(row["status"], row["status"])),
            "outcome": row["outcome"], "outcome_label": str(OUTCOMES[row["outcome"]]),
            "reason": replay.describe(row["reason"], names, _),
            "live_services": [names(s) for s in row["live_services"]],
        })
    return rows


@bp.route("/drafts/<int:draft_id>/replay", methods=["POST"])
@owner_only
def replay_draft(draft_id):
    draft = _draft_or_404(draft_id)
    body, xml, forms = _payload(draft)
    completed = _completed(body)
    if completed is None:
        return _json_error(_("The number of completed cases must be between 0 and "
                             "%(limit)s.", limit=replay.COMPLETED_LIMIT))
    try:
        parsed = replay.load_draft(xml, forms_for(xml, forms), _filename(draft))
    except replay.DraftInvalid as exc:
        return _json_error(_("Not replayed: the draft has problems; fix them first."),
                           status=422, problems=[problem_dict(p) for p in exc.problems])
    # Only the draft's own process (a file may hold others).
    parsed.specs = {k: v for k, v in parsed.specs.items() if k == draft.process_key}
    instances, more = replay.select_instances([draft.process_key], completed=completed)
    report = replay.replay(parsed, instances, more)
    names = replay.Names(parsed, replay.definitions_of(instances), locale=current_language())
    summary = _("Cases replayed: %(total)s. Identical: %(identical)s; diverging: "
                "%(diverges)s; failing: %(fails)s.", total=report["total"], identical=report["identical"],
                diverges=report["diverges"], fails=report["fails"])
    note = _("Running cases not replayed: %(count)s (at most %(limit)s at a time); the "
             "command line can replay chosen cases.", count=more,
             limit=replay.RUNNING_LIMIT) if more else None
    return jsonify({"ok": True, "total": report["total"], "identical": report["identical"],
                    "diverges": report["diverges"], "fails": report["fails"],
                    "summary": summary, "note": note, "cases": report_rows(report, names)})
