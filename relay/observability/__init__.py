"""Seeing what relay does: JSON logs, Prometheus metrics, heartbeats, `relay status`."""
