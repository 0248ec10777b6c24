"""Pages of the collateral and guarantor watch: one blueprint, routes in collateral_views and
guarantor_views."""
from flask import Blueprint

bp = Blueprint("guarantees", __name__)

from guarantees import collateral_views, guarantor_views  # noqa: E402,F401  (their routes)
