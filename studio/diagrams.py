"""Process studio: diagrams (routes on studio.bp)."""
