"""Partial window profiles: what one Spark task (or one micro-batch) keeps of its rows.

This module is plain pandas and numpy, with no pyspark import: it runs inside the executors'
Python workers (``mapInPandas`` / ``applyInPandas``) and in the driver, and its tests need no
JVM. A task reduces its rows to one :class:`Partial` per (window, segment): the profile of
every reference column (:mod:`monitor.statistics.profiles`, on the baseline's bin edges), the
row count, the non-null counts of columns the reference does not know and, for all traffic, a
uniform row sample for multivariate drift. Partials merge exactly (counts, histograms,
category tables, moments by Chan's update) and their samples merge into uniform samples of the
union, so the merge of a window's partials, in any grouping, is the profile the window job
would have made from the same rows.

Partials travel between executors and to the driver as compressed JSON (never pickle: the
stream sink keeps them in Postgres, and unpickling what a database holds would run code).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from monitor.statistics.profiles import (
    Profile,
    category_label,
    merge_profiles,
    merge_samples,
    profile_categorical,
    profile_from_dict,
    profile_numeric,
)

WINDOW = "__w"
"""Prepared-frame column: the row's window start, epoch seconds (UTC-aligned)."""
SEGMENT = "__seg"
"""Prepared-frame column: the row's canonical segment key (``''`` without segments)."""
PREDICTION_NUM = "__pn"
PREDICTION_CAT = "__pc"
SCORE = "__score"
NO_WINDOW = -(2**62)
"""Window key of rows without a timestamp: counted (the caller reports them), not profiled."""
ALL_TRAFFIC = "\x00all"
"""Segment key of the all-traffic partial while it travels (``''`` is a real key without
segments, and a real segment key is never empty when segments are given)."""


@dataclass(frozen=True)
class ColumnPlan:
    """A reference column and where its values are in the prepared frame."""

    name: str  # the results' column name: the feature, or @prediction / @score
    kind: str  # numeric | categorical (the reference's)
    sources: tuple[str, ...]  # frame columns to take values from, the first present wins
    edges: tuple[float, ...] = ()  # numeric: the baseline's bin edges

    def values(self, frame: pd.DataFrame) -> Any | None:
        for source in self.sources:
            if source in frame.columns:
                return frame[source].to_numpy()
        return None


@dataclass(frozen=True)
class Plan:
    """What the executors profile: the reference's columns, the other columns, the row sample."""

    columns: tuple[ColumnPlan, ...]
    extra: tuple[str, ...] = ()  # frame columns the reference does not know (present check)
    row_features: tuple[tuple[str, str], ...] = ()  # (feature, kind) of the baseline row sample
    window_seconds: int = 3600
    sample_size: int = 2_000
    row_sample_size: int = 2_000
    segmented: bool = False


@dataclass
class Partial:
    """Profiles of some rows of one window and segment; merges exactly (see module doc)."""

    rows: int
    seed: int
    columns: dict[str, Profile] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)
    row_sample: list[list[Any]] = field(default_factory=list)

    def merge(self, other: Partial, *, row_sample_size: int) -> Partial:
        return merge_partials([self, other], row_sample_size=row_sample_size)

    def to_doc(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "seed": self.seed,
            "columns": {name: p.to_dict() for name, p in self.columns.items()},
            "present": self.present,
            "row_sample": self.row_sample,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Partial:
        return cls(
            rows=int(doc["rows"]),
            seed=int(doc["seed"]),
            columns={name: profile_from_dict(p) for name, p in doc["columns"].items()},
            present={k: int(n) for k, n in doc["present"].items()},
            row_sample=doc["row_sample"],
        )

    def to_bytes(self) -> bytes:
        return _pack(self.to_doc())

    @classmethod
    def from_bytes(cls, data: bytes) -> Partial:
        return cls.from_doc(_unpack(data))


def _pack(doc: Any) -> bytes:
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 1)


def _unpack(data: bytes) -> Any:
    return json.loads(zlib.decompress(data))


def window_seed(window_start_epoch: int) -> int:
    """The seed the window job uses for a window's samples (its start, in seconds)."""
    return int(window_start_epoch) & 0x7FFFFFFF


def merge_partials(parts: Sequence[Partial], *, row_sample_size: int) -> Partial:
    """The partial of the union of ``parts`` (in the order given: keep it deterministic)."""
    if len(parts) == 1:
        return parts[0]
    by_column: dict[str, list[Profile]] = {}
    present: dict[str, int] = {}
    for part in parts:
        for name, prof in part.columns.items():
            by_column.setdefault(name, []).append(prof)
        for name, n in part.present.items():
            present[name] = present.get(name, 0) + n
    seed = parts[0].seed
    rows = sum(p.rows for p in parts)
    sample: list[list[Any]] = []
    taken = 0
    if any(p.row_sample for p in parts):
        rng = np.random.default_rng([seed, rows & 0xFFFFFFFF, len(parts)])
        for part in parts:
            # merge_samples takes any sequence; rows are lists, not floats
            sample = cast(
                list[list[Any]],
                merge_samples(
                    cast(Any, sample),
                    taken,
                    cast(Any, part.row_sample),
                    part.rows,
                    row_sample_size,
                    rng,
                ),
            )
            taken += part.rows
    return Partial(
        rows=rows,
        seed=seed,
        columns={name: _merge(profs) for name, profs in by_column.items()},
        present=present,
        row_sample=sample,
    )


def _merge(profs: list[Profile]) -> Profile:
    if len(profs) == 1:
        return profs[0]
    kinds = {type(p) for p in profs}
    if len(kinds) > 1:  # a column read as numbers in one task and as text in another
        raise ValueError("cannot merge numeric and categorical partial profiles")
    return merge_profiles(profs)


# --- one group of rows -> a partial ------------------------------------------------------


def _numeric(values: Any) -> Any:
    """Values as float64 when pandas gave numbers (nulls NaN); anything else as it is."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64, copy=False)
    return arr


def profile_rows(frame: pd.DataFrame, plan: Plan, seed: int, *, all_traffic: bool) -> Partial:
    """The partial of ``frame``'s rows (one window and segment)."""
    n = len(frame)
    columns: dict[str, Profile] = {}
    for col in plan.columns:
        values = col.values(frame)
        if values is None:
            # as the window job sees a baseline column nobody logged: all nulls (the quality
            # checks then report it missing)
            values = np.full(n, np.nan) if col.kind == "numeric" else np.full(n, None, object)
        if col.kind == "numeric":
            columns[col.name] = profile_numeric(
                _numeric(values), col.edges, sample_size=plan.sample_size, seed=seed
            )
        else:
            columns[col.name] = profile_categorical(values)
    part = Partial(rows=n, seed=seed, columns=columns)
    if all_traffic:
        extras = _all_traffic_extras(frame, plan, seed)
        part.present, part.row_sample = extras.present, extras.row_sample
    return part


def _row_sample(frame: pd.DataFrame, plan: Plan, seed: int) -> list[list[Any]]:
    """A uniform sample of whole rows (features of the baseline's row sample), JSON-ready."""
    if not plan.row_features or not len(frame):
        return []
    k = min(plan.row_sample_size, len(frame))
    rng = np.random.default_rng([seed, len(frame)])
    pick = np.sort(rng.choice(len(frame), k, replace=False))
    out: list[list[Any]] = [[] for _ in range(k)]
    for name, kind in plan.row_features:
        if name not in frame.columns:
            cells: list[Any] = [None] * k
        elif kind == "numeric":
            x = _numeric(frame[name].to_numpy()[pick])
            if x.dtype.kind != "f":
                cells = [None] * k
            else:
                cells = [float(v) if math.isfinite(v) else None for v in x.tolist()]
        else:
            cells = [None if _null(v) else category_label(v) for v in frame[name].iloc[pick]]
        for row, cell in zip(out, cells, strict=True):
            row.append(cell)
    return out


def _null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def row_sample_arrays(partial: Partial, plan: Plan) -> dict[str, Any]:
    """The row sample as the window job's multivariate step takes it: one array per feature."""
    out: dict[str, Any] = {}
    if not partial.row_sample:
        return out
    for i, (name, kind) in enumerate(plan.row_features):
        cells = [row[i] for row in partial.row_sample]
        if kind == "numeric":
            out[name] = np.array([np.nan if c is None else c for c in cells], dtype=np.float64)
        else:
            out[name] = np.array(cells, dtype=object)
    return out


# --- a task's rows -> one partial per (window, segment) -----------------------------------


def profile_batches(batches: Iterable[pd.DataFrame], plan: Plan) -> dict[tuple[int, str], Partial]:
    """Reduce a task's batches to one partial per (window, segment key) and all traffic.

    All-traffic partials are keyed :data:`ALL_TRAFFIC` when the plan has segments (the merge
    of the window's segment partials, plus the row sample and present counts), else ``''``.
    """
    state: dict[tuple[int, str], Partial] = {}
    size = plan.row_sample_size
    for batch in batches:
        untimed = batch[WINDOW].isna()
        if untimed.any():
            lost = Partial(rows=int(untimed.sum()), seed=0)
            key0 = (NO_WINDOW, "")
            state[key0] = state[key0].merge(lost, row_sample_size=size) if key0 in state else lost
            batch = batch[~untimed]
        if not len(batch):
            continue
        for (w, seg), index in batch.groupby([WINDOW, SEGMENT], sort=False).indices.items():
            group = batch.iloc[index]
            key = (int(w), str(seg))
            part = profile_rows(group, plan, window_seed(key[0]), all_traffic=not plan.segmented)
            state[key] = state[key].merge(part, row_sample_size=size) if key in state else part
        if plan.segmented:
            for w, index in batch.groupby(WINDOW, sort=False).indices.items():
                group = batch.iloc[index]
                key = (int(w), ALL_TRAFFIC)
                part = _all_traffic_extras(group, plan, window_seed(key[0]))
                state[key] = state[key].merge(part, row_sample_size=size) if key in state else part
    if plan.segmented:
        _fold_segments_into_all_traffic(state, size)
    return state


def _all_traffic_extras(frame: pd.DataFrame, plan: Plan, seed: int) -> Partial:
    """What only all traffic keeps: present counts of unknown columns and the row sample."""
    return Partial(
        rows=len(frame),
        seed=seed,
        present={
            name: count
            for name in plan.extra
            if name in frame.columns and (count := int(frame[name].notna().sum()))
        },
        row_sample=_row_sample(frame, plan, seed),
    )


def _fold_segments_into_all_traffic(state: dict[tuple[int, str], Partial], size: int) -> None:
    """Give each all-traffic partial the merge of its window's segment profiles."""
    by_window: dict[int, list[Partial]] = {}
    for (w, seg), part in sorted(state.items()):
        if seg != ALL_TRAFFIC and w != NO_WINDOW:
            by_window.setdefault(w, []).append(part)
    for w, parts in by_window.items():
        extras = state[(w, ALL_TRAFFIC)]
        merged = merge_partials(parts, row_sample_size=size)
        state[(w, ALL_TRAFFIC)] = Partial(
            rows=extras.rows,
            seed=extras.seed,
            columns=merged.columns,
            present=extras.present,
            row_sample=extras.row_sample,
        )


def partition_rows(
    batches: Iterator[pd.DataFrame], plan: Plan, task: int
) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body: one output row (window, segment, task, partial) per key."""
    state = profile_batches(batches, plan)
    if not state:
        return
    keys = sorted(state)
    yield pd.DataFrame(
        {
            "w": [k[0] for k in keys],
            "seg": [k[1] for k in keys],
            "task": [task] * len(keys),
            "payload": [state[k].to_bytes() for k in keys],
        }
    )


def merge_rows(group: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """``applyInPandas`` body: all tasks' partials of one (window, segment), merged."""
    group = group.sort_values("task", kind="mergesort")
    parts = [Partial.from_bytes(bytes(b)) for b in group["payload"]]
    merged = merge_partials(parts, row_sample_size=plan.row_sample_size)
    return pd.DataFrame(
        {
            "w": [int(group["w"].iloc[0])],
            "seg": [str(group["seg"].iloc[0])],
            "rows": [merged.rows],
            "payload": [merged.to_bytes()],
        }
    )


def encode_window(parts: dict[str, Partial]) -> bytes:
    """An open window's partials (by segment key) as one compressed JSON document."""
    return _pack({seg: p.to_doc() for seg, p in parts.items()})


def decode_window(data: bytes) -> dict[str, Partial]:
    return {seg: Partial.from_doc(doc) for seg, doc in _unpack(data).items()}
