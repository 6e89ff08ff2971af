"""observe: health, metrics, alerts, notifiers."""
