"""The process studio: edit, validate, version, deploy and migrate BPMN processes and their
forms in the browser (process owners), and see where every case stands (everyone with access).

Routes live in the modules below and register on the one blueprint `bp`."""
from pathlib import Path

from flask import Blueprint, abort, send_from_directory

bp = Blueprint("studio", __name__, url_prefix="/studio")
BPMN_JS_DIST = Path(__file__).resolve().parent.parent / "node_modules" / "bpmn-js" / "dist"


@bp.route("/vendor/bpmn-js/<path:filename>")
def bpmn_js(filename):
    """bpmn-js's ready bundles and CSS, from the pinned npm package (no CDN)."""
    if not BPMN_JS_DIST.is_dir():
        abort(404)
    return send_from_directory(BPMN_JS_DIST, filename, max_age=86400)


from studio import diagrams, editor, replay, versions  # noqa: E402,F401  (routes register on bp)
