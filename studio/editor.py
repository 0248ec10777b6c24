"""Process studio: editor (routes on studio.bp)."""
