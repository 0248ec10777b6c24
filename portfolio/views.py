"""The portfolio dashboard: buckets, categories, NPL ratio, roll rates, collection rates, with charts, tables and exports."""
from flask import Blueprint

bp = Blueprint("portfolio", __name__, url_prefix="/portfolio")
