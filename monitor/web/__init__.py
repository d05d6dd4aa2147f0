"""The web service: ingest collector, JSON API, dashboard pages, /metrics and /healthz."""

from monitor.web import routing as _routing  # noqa: F401  (registers the ``{x:name}`` convertor)
