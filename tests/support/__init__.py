"""Helpers for Roost's tests: real database servers on loopback, free ports."""
