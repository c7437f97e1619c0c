"""Deterministic world generation from the bundled real data (``circinus gen``)."""
