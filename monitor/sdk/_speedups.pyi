"""Types of the C encoder (monitor/sdk/_speedups.c); see pgbinary.encode_columns."""

from collections.abc import Callable
from typing import Any

def encode_columns(
    feats: list[Any],
    ids: list[Any],
    times: list[Any],
    preds: list[Any],
    lats: list[Any],
    numeric: tuple[str, ...],
    categorical: tuple[str, ...],
    head: bytes,
    version_num_head: bytes,
    cat_head: bytes,
    texts: dict[Any, bytes],
    format_id: Callable[[Any], str],
    probas: list[Any] | None = None,
    order: tuple[str, ...] | None = None,
    segments: list[Any] | None = None,
    segment_field: Callable[[Any], bytes] | None = None,
    micros_of: Callable[[Any], int] | None = None,
    partial: bool = False,
    n_keys: int = -1,
    /,
) -> list[bytes | None] | None: ...
