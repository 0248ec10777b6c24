"""The classification pages: the rules and provision rates (risk manager), a loan's category and its overrides."""
from flask import Blueprint

bp = Blueprint("classification", __name__, url_prefix="/portfolio/classification")
