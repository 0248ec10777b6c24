"""Process studio: versions (routes on studio.bp)."""
