"""The portfolio dashboard (/portfolio): buckets, categories, NPL ratio, roll rates, flow rate,
collection rates, recovery by age of debt, late follow-ups and the model's back-test, each
with a chart, its table and CSV/XLSX exports of that table. Thin: parse the filters, authorise,
call the figures, render.

Department heads, the general manager and risk managers see it; compliance reads it (it
changes nothing). A department head sees the teams they lead and may pick no other."""
from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from accounts.auth import deny, roles_required
from portfolio import exports
from portfolio.dashboard import VIEWERS, FilterError, TeamRefused, options_for, parse_filters
from portfolio.figures import buckets, categories, npl_over_time
from portfolio.rates import collection_rates, flow_rate, recovery, roll_rates
from portfolio.work_figures import backtest, late_followups

bp = Blueprint("portfolio", __name__, url_prefix="/portfolio")

# (section id, builder): a builder gives one table or a tuple of them, in page order.
SECTIONS = (("buckets", buckets), ("categories", categories), ("npl", npl_over_time),
            ("roll", roll_rates), ("flow", flow_rate), ("collection", collection_rates),
            ("recovery", recovery), ("late", late_followups), ("backtest", backtest))
# Which builder makes the table of each export key.
EXPORTS = {"buckets": buckets, "categories": categories, "npl": npl_over_time,
           "roll_rates": roll_rates, "roll_counts": roll_rates, "flow": flow_rate,
           "collection_stage": collection_rates, "collection_collector": collection_rates,
           "recovery": recovery, "late": late_followups, "backtest": backtest}


def _tables(builder, filters):
    found = builder(filters)
    return list(found) if isinstance(found, tuple) else [found]


def _filters():
    """(options, filters, error): a bad value gives its message instead of filters; a team a
    department head does not lead is refused (403, recorded)."""
    options = options_for(current_user)
    try:
        return options, parse_filters(request.args, current_user, options), None
    except TeamRefused:
        deny(current_user, "team")
    except FilterError as exc:
        return options, None, str(exc)


@bp.get("")
@login_required
@roles_required(*VIEWERS)
def dashboard():
    options, filters, error = _filters()
    sections = []
    if filters is not None and filters.month is not None and filters.team_ids != ():
        sections = [(key, _tables(builder, filters)) for key, builder in SECTIONS]
    return render_template("portfolio/dashboard.html", options=options, filters=filters,
                           error=error, sections=sections, empty=no_figures_reason(filters),
                           selected=request.args), 400 if error else 200


@bp.get("/export/<figure>.<any(csv, xlsx):fmt>")
@login_required
@roles_required(*VIEWERS)
def export(figure, fmt):
    builder = EXPORTS.get(figure)
    if builder is None:
        abort(404)
    _options, filters, error = _filters()
    if error:
        return Response(error, status=400, mimetype="text/plain")
    table = next(t for t in _tables(builder, filters) if t.key == figure)
    month = filters.month.strftime("%Y-%m") if filters.month else "none"
    name = f"{figure}-{month}.{fmt}"
    body, mimetype = ((exports.as_csv(table), "text/csv") if fmt == "csv"
                      else (exports.as_xlsx(table), exports.XLSX_TYPE))
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f"attachment; filename={name}"})


def no_figures_reason(filters):
    """Why the page shows no figures (for the template)."""
    if filters is None:
        return ""
    if filters.month is None:
        return _("No month has been closed yet: the figures start with the first month-end "
                 "snapshot.")
    if filters.team_ids == ():
        return _("You lead no team yet, so there is nothing to show. An administrator assigns "
                 "the teams.")
    return ""

