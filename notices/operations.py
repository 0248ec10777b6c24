"""The template library: render, save a version, send (issue 16)."""
