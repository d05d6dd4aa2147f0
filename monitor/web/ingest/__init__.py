"""The HTTP collector: predictions, actuals and SDK reports over HTTP, for serving code that
cannot reach Postgres.

``POST /v1/models/{model}/predictions`` and ``/actuals`` take a JSON array or NDJSON (one object
per line), optionally gzip-compressed. Every record is validated on its own: the answer lists
the rejected ones with their index and reason, and the good ones are written through the same
idempotent path as the SDK (:class:`~monitor.sdk.postgres.writer.PostgresWriter`), so a client may
resend a batch safely (rows are keyed by id and timestamp: a record without a timestamp gets the
time it arrived, so only records that carry both, as the SDK's do, are deduplicated on resend).

Modules: :mod:`.body` (limits, gzip, the worker's in-flight budget), :mod:`.parse` (records one
at a time out of the body), :mod:`.validate` (per-record rules), :mod:`.writers` (connections),
:mod:`.routes`.
"""

from monitor.web.ingest.routes import router

__all__ = ["router"]
