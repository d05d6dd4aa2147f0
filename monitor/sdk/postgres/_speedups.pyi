"""Types of the C twin of the fast encoder (monitor/sdk/postgres/_speedups.c); see fast.py."""

from collections.abc import Callable
from typing import Any

def encode_rows(
    feats: list[Any],
    ids: list[Any],
    times: list[Any],
    preds: list[Any],
    lats: list[Any],
    probas: list[Any] | None,
    segments: list[Any] | None,
    numeric: tuple[str, ...],
    categorical: tuple[str, ...],
    head: bytes,
    version_num_head: bytes,
    cat_head: bytes,
    texts: dict[Any, bytes],
    format_id: Callable[[Any], str],
    order: tuple[str, ...] | None,
    segment_field: Callable[[Any], bytes],
    micros_of: Callable[[Any], int],
    n_keys: int,
    /,
) -> list[bytes | None]: ...
