"""Converter test helpers (the tiny model and its bundle are shared: tests/conftest.py)."""
