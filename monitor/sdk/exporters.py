"""Exporters: where the worker sends batches. One protocol, two sinks (Postgres, HTTP collector).

An exporter raises :class:`RetryableError` when the sink is unavailable (connection lost,
timeout, HTTP 5xx or 429): the worker then spools the batch and retries with backoff. Anything
else is the data's problem and is handled inside the exporter (dead letters, rejections), so a
bad record never blocks its neighbours.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from monitor.sdk.records import MAX_RECORD_BYTES, WriteResult, record_to_wire
from monitor.sdk.watchdog import Watchdog
from monitor.sdk.wire import finite, json_default

log = logging.getLogger(__name__)


def unavailable(exc: BaseException) -> bool:
    """A psycopg error that means the database (or the way to it) failed, not the data: retry
    later. Class 54 (program limit exceeded: an index row or a statement too large) is an
    ``OperationalError`` too, but the data's fault: retrying would spool it forever."""
    import psycopg

    if isinstance(exc, psycopg.errors.ProgramLimitExceeded):
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


class DataRefused(Exception):
    """The database refused a batch for its content (the worker isolates the record)."""


class RetryableError(Exception):
    """The sink is unavailable; try again later (``retry_after`` seconds, if the sink said)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Exporter(Protocol):
    target: str  # identifies the sink (no secrets): spools are shared per target

    def export(
        self, model: str, version: str, predictions: Sequence[Any], actuals: Sequence[Any]
    ) -> WriteResult: ...

    def report(self, model: str, instance: str, stats: Mapping[str, Any]) -> None: ...

    def dead_letter(self, model: str, kind: str, record: Any, error: BaseException) -> None:
        """Keep one record the sink refused, with the error, where a person can look at it;
        raises when it cannot."""

    def close(self) -> None: ...

    def abandon(self) -> None:
        """After fork, in the child: drop the parent's connection without closing its socket."""


# --- Postgres ----------------------------------------------------------------------------------


class PostgresExporter:
    """COPY straight into the tables (:class:`~monitor.sdk.postgres.writer.PostgresWriter`)."""

    def __init__(
        self,
        dsn: str,
        *,
        synchronous_commit: bool = True,
        timeout: float = 10.0,
        max_record_bytes: int = MAX_RECORD_BYTES,
        bulk_connections: int = 2,
        max_features: int | None = None,
    ) -> None:
        """``bulk_connections``: 2 (the default) lets ``log_batch`` blocks stream over two
        connections: two server processes parse and index in parallel (see
        PostgresWriter._stream_predictions). The server process is the bottleneck of the bulk
        path; with the caller on the same 2 cores, over 20 runs of
        benchmarks/ingest_throughput.py two connections reached a median 56% of the raw COPY
        rate (50% or more in 17 runs) against 52.5% with one (16 of 25), for a primary-key
        index ~30% larger (table and index ~4%; see pgwriter._chunk_order). 1: one."""
        import psycopg.conninfo

        if bulk_connections not in (1, 2):
            raise ValueError("bulk_connections must be 1 or 2")

        params = psycopg.conninfo.conninfo_to_dict(dsn)  # raises on a malformed DSN
        self.dsn = dsn
        self.synchronous_commit = synchronous_commit
        self.max_record_bytes = max_record_bytes
        self.timeout = timeout
        self.target = "pg:{}@{}:{}/{}".format(
            params.get("user", ""),
            params.get("host", ""),
            params.get("port", ""),
            params.get("dbname", ""),
        )
        self.bulk_connections = bulk_connections
        self.max_features = max_features
        self._conn: Any = None
        self._writer: Any = None
        self._watchdog = Watchdog()

    def _sockets(self) -> list[int]:
        """The descriptors of the open connections (for the watchdog)."""
        fds = []
        for conn in (self._conn, self._writer.lane_connection if self._writer else None):
            with contextlib.suppress(Exception):
                if conn is not None and not conn.closed:
                    fds.append(int(conn.pgconn.socket))
        return fds

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(
            self.dsn,
            autocommit=True,
            connect_timeout=max(1, int(self.timeout)),
            # A black-holed network must not hang the worker forever.
            tcp_user_timeout=int(self.timeout * 1000),
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
            application_name="monitor-sdk",
        )

    def _connected(self) -> Any:
        import psycopg

        from monitor.sdk.postgres.writer import PostgresWriter

        if self._conn is None or self._conn.closed:
            if self._writer is not None:
                self._writer.close_lane()
            try:
                self._conn = self._connect()
                self._writer = PostgresWriter(
                    self._conn,
                    synchronous_commit=self.synchronous_commit,
                    max_record_bytes=self.max_record_bytes,
                    connect_lane=self._connect if self.bulk_connections == 2 else None,
                    max_features=self.max_features,
                )
            except psycopg.Error as exc:
                self._conn = None
                raise RetryableError(f"cannot connect: {exc}".strip()) from exc
        return self._writer

    def _retryable(self, exc: Exception) -> RetryableError:
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn = None
        if self._writer is not None:
            self._writer.close_lane()
        if self._watchdog.tripped:
            return RetryableError(f"no answer from the database within {self.timeout:g} s")
        return RetryableError(f"{type(exc).__name__}: {exc}".strip())

    def export(
        self, model: str, version: str, predictions: Sequence[Any], actuals: Sequence[Any]
    ) -> WriteResult:
        import psycopg

        writer = self._connected()
        result = WriteResult()
        hook = getattr(predictions, "while_committing", None)
        if hook is not None:  # log_batch reads its next rows: the caller's time, not the sink's
            watchdog, timeout = self._watchdog, self.timeout

            def unguarded() -> None:
                with watchdog.suspended(timeout):
                    hook()

            predictions.while_committing = unguarded  # type: ignore[attr-defined]
        try:
            with self._watchdog.guard(self._sockets, self.timeout):
                if predictions:
                    result.add(writer.write_predictions(model, version, predictions))
                if actuals:
                    result.add(writer.write_actuals(model, actuals))
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if not unavailable(exc):
                raise DataRefused(f"{type(exc).__name__}: {exc}") from exc
            raise self._retryable(exc) from exc
        return result

    def report(self, model: str, instance: str, stats: Mapping[str, Any]) -> None:
        import psycopg

        writer = self._connected()
        try:
            with self._watchdog.guard(self._sockets, self.timeout):
                writer.report(model, instance, finite(dict(stats)))
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._retryable(exc) from exc

    def dead_letter(self, model: str, kind: str, record: Any, error: BaseException) -> None:
        import psycopg

        writer = self._connected()
        try:
            with self._watchdog.guard(self._sockets, self.timeout):
                writer.dead_letter_record(model, kind, record, error)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._retryable(exc) from exc

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close_lane()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def abandon(self) -> None:
        # Kept alive: their finalisers would close our parent's connections.
        self._watchdog = Watchdog()  # the parent's thread does not exist in the child
        if self._writer is not None:
            lane = self._writer.abandon_lane()
            if lane is not None:
                _ABANDONED.append(lane)
        if self._conn is not None:
            _ABANDONED.append(self._conn)
            self._conn = None


# --- HTTP --------------------------------------------------------------------------------------


class HttpExporter:
    """POST batches to the collector (``/v1/models/{model}/predictions`` and ``/actuals``)."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 10.0) -> None:
        import httpx

        parsed = httpx.URL(url)  # raises on a malformed URL
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"collector url must be http(s)://host[:port]: {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.target = f"http:{parsed.host}:{parsed.port or ''}{parsed.path}"
        self._client: Any = None

    def _http(self) -> Any:
        import httpx

        if self._client is None:
            headers = {"User-Agent": "monitor-sdk"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._client = httpx.Client(
                base_url=self.url,
                headers=headers,
                timeout=httpx.Timeout(self.timeout, connect=min(5.0, self.timeout)),
                follow_redirects=False,
            )
        return self._client

    def _post(self, path: str, params: dict[str, str], body: Any) -> Any:
        import httpx

        try:
            response = self._http().post(
                path,
                params=params,
                content=json.dumps(finite(body), default=json_default).encode(),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}".strip()) from exc
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            raise RetryableError(f"HTTP {response.status_code}", retry_after)
        return response

    def _send(
        self, path: str, params: dict[str, str], records: list[dict[str, Any]], result: WriteResult
    ) -> None:
        if not records:
            return
        response = self._post(path, params, records)
        if response.status_code == 413 and len(records) > 1:
            mid = len(records) // 2
            self._send(path, params, records[:mid], result)
            self._send(path, params, records[mid:], result)
            return
        if response.status_code in (401, 403):
            # A token problem (expired, revoked, not allowed for this model): the records are
            # fine, so they wait in the spool (counted, the reason in last_error) until an
            # operator fixes the token, instead of being thrown away.
            raise RetryableError(
                f"HTTP {response.status_code} from the collector: {_detail(response)}",
                retry_after=BACKOFF_AUTH,
            )
        if response.status_code >= 400:
            # The collector refused the whole request for its content: counted as rejected.
            log.warning(
                "collector refused %d records: HTTP %s %s",
                len(records),
                response.status_code,
                _detail(response),
            )
            result.rejected += len(records)
            return
        try:
            body = response.json()
        except ValueError:
            body = {}
        result.inserted += int(body.get("inserted", 0))
        result.duplicates += int(body.get("duplicates", 0))
        result.dead_letters += int(body.get("dead_letters", 0))
        rejected = body.get("rejected") or []  # the first 1,000; rejected_count counts all
        count = body.get("rejected_count")
        result.rejected += int(count) if isinstance(count, int) else len(rejected)
        if rejected:
            first = rejected[0]
            log.warning(
                "collector rejected %d of %d records (first: %s)",
                result.rejected,
                len(records),
                first.get("error") if isinstance(first, dict) else first,
            )

    def export(
        self, model: str, version: str, predictions: Sequence[Any], actuals: Sequence[Any]
    ) -> WriteResult:
        result = WriteResult()
        base = f"/v1/models/{quote(model, safe='')}"
        self._send(
            f"{base}/predictions",
            {"version": version},
            [record_to_wire(r) for r in predictions],
            result,
        )
        self._send(f"{base}/actuals", {}, [record_to_wire(r) for r in actuals], result)
        return result

    def report(self, model: str, instance: str, stats: Mapping[str, Any]) -> None:
        self._post("/v1/sdk/report", {}, {"model": model, "instance": instance, "stats": stats})

    def dead_letter(self, model: str, kind: str, record: Any, error: BaseException) -> None:
        raise RuntimeError("the collector keeps no dead letters for the SDK")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def abandon(self) -> None:
        self._client = None  # httpx pools hold sockets shared with the parent: just drop it


BACKOFF_AUTH = 60.0  # seconds between retries while the collector refuses our token


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail", ""))[:200]
    except Exception:
        return ""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


_ABANDONED: list[Any] = []
