"""Roost: a self-hosted agent platform whose agents remember."""

__version__ = "0.1.0"
