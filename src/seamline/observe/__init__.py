"""Observe: status snapshot (`status`), health against the SLA (`health`), Prometheus metrics
(`metrics`), alert rules and their loop (`alerts`, shapes in `spec`), notifiers (`notify`)."""
