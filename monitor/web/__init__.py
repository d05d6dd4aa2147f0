"""The web service: ingest collector, JSON API, dashboard pages, /metrics and /healthz."""
