"""Slow down a client that keeps presenting wrong credentials (tokens, login codes).

A token bucket per client address, in each web process: a client may fail ``burst`` times at
once and then ``per_second`` times a second; past that, its authentication attempts (right or
wrong: a right one must not be testable at full speed either) get 429 with ``Retry-After``
until the bucket refills. Only failures cost: a client whose credentials are right is never
slowed down. The client is the TCP peer, or the address a trusted proxy reports
(``MONITOR_TRUSTED_PROXIES``).

Per process rather than in Postgres (a failure must not cost a database write): with ``N`` web
workers each process refills at ``1/N`` of the setting, so the server as a whole allows the
setting's sustained rate (plus up to ``N`` bursts). Tokens and codes carry 128 to 256 random
bits; this is hygiene and log noise control, not what makes them unguessable.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_CLIENTS = 10_000
"""Clients tracked at once (least recently failed forgotten first): bounded memory."""


class FailureThrottle:
    def __init__(
        self,
        burst: int = 10,
        per_second: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("burst must be >= 1 and per_second > 0")
        self.burst = float(burst)
        self.per_second = per_second
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._lock = threading.Lock()
        self.refused = 0  # attempts answered 429, for tests and logs

    def _tokens(self, client: str, now: float) -> float:
        tokens, at = self._buckets.get(client, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.per_second)

    def retry_after(self, client: str) -> float:
        """0 if ``client`` may try now, else the seconds until it may."""
        with self._lock:
            if client not in self._buckets:
                return 0.0
            tokens = self._tokens(client, self.clock())
            if tokens >= 1.0:
                return 0.0
            self.refused += 1
            return (1.0 - tokens) / self.per_second

    def failed(self, client: str) -> None:
        """Record one wrong credential from ``client``."""
        with self._lock:
            now = self.clock()
            tokens = self._tokens(client, now)
            self._buckets[client] = (max(tokens - 1.0, 0.0), now)
            self._buckets.move_to_end(client)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
