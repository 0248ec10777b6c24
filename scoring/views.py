"""The scoring model: its weights, its fit and its back-test."""
from flask import Blueprint

bp = Blueprint("scoring", __name__, url_prefix="/scoring")
