"""Front-end packages served from node_modules (no CDN, no bundler) and the favicon.

Only the files named in VENDOR_FILES are served: the route never maps a request path onto
node_modules, so nothing else installed there (sources, package.json, scripts) is reachable."""
from pathlib import Path

from flask import Blueprint, abort, current_app, send_from_directory

ROOT = Path(__file__).resolve().parent
NODE_MODULES = ROOT / "node_modules"

# (package, file) -> path below node_modules; source maps so the browser's tools stay quiet.
VENDOR_FILES = {
    ("bootstrap", "bootstrap.min.css"): "bootstrap/dist/css/bootstrap.min.css",
    ("bootstrap", "bootstrap.min.css.map"): "bootstrap/dist/css/bootstrap.min.css.map",
    ("bootstrap", "bootstrap.bundle.min.js"): "bootstrap/dist/js/bootstrap.bundle.min.js",
    ("bootstrap", "bootstrap.bundle.min.js.map"): "bootstrap/dist/js/bootstrap.bundle.min.js.map",
    # the portfolio dashboard's charts (its min build ships without a source map)
    ("echarts", "echarts.min.js"): "echarts/dist/echarts.min.js",
}

bp = Blueprint("assets", __name__)


@bp.route("/vendor/<package>/<filename>")
def vendor(package, filename):
    relative = VENDOR_FILES.get((package, filename))
    if relative is None or not (NODE_MODULES / relative).is_file():
        abort(404)
    path = NODE_MODULES / relative
    return send_from_directory(path.parent, path.name, max_age=86400)


@bp.route("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico whatever the page links; answer with the SVG icon."""
    return send_from_directory(current_app.static_folder, "favicon.svg",
                               mimetype="image/svg+xml", max_age=86400)
