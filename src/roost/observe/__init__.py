"""Observability used by every layer: structured logs, Prometheus metrics, OpenTelemetry traces."""
