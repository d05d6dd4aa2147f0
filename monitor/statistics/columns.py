"""A reference/current column pair, cleaned once, with the derived arrays methods share.

Every method of one column reads the same pair, so sorting, category counting and integer
coding are done at most once per column (they dominate the cost at a million rows) and only
when a method asks for them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from monitor.errors import InputError

from .profiles import _is_null, as_1d, split_numeric
from .results import ColumnKind


@dataclass(frozen=True)
class Categories:
    """Union of the non-null values of both sides and their counts on each side.

    ``keys`` lists reference values first (in order of first appearance), then values only
    seen in the current window ("unseen" categories).
    """

    keys: list[Any]
    ref: NDArray[np.int64]
    cur: NDArray[np.int64]

    @property
    def n_unseen(self) -> int:
        """Current rows whose category the reference never had."""
        return int(self.cur[self.ref == 0].sum())


def count_values(values: Any) -> tuple[dict[Any, int], int]:
    """Non-null value counts and the number of nulls (NaN, None, NA).

    A pandas Series is counted with its own hash table (``value_counts``), duck-typed so that
    this package never imports pandas; it is about four times faster than a Counter on object
    strings, which matters at a million rows.
    """
    if hasattr(values, "value_counts") and hasattr(values, "__len__"):
        vc = values.value_counts(sort=False, dropna=True)
        counts = dict(zip(vc.index.tolist(), vc.to_numpy().tolist(), strict=True))
        return counts, len(values) - sum(counts.values())
    arr = as_1d(values)
    if arr.dtype.kind in "fc":
        nan = np.isnan(arr)
        vals, cnt = np.unique(arr[~nan], return_counts=True)
        return dict(zip(vals.tolist(), cnt.tolist(), strict=True)), int(nan.sum())
    if arr.dtype.kind in "iub":
        vals, cnt = np.unique(arr, return_counts=True)
        return dict(zip(vals.tolist(), cnt.tolist(), strict=True)), 0
    try:
        raw = Counter(arr.tolist())
    except TypeError as exc:
        raise InputError(f"categorical values must be hashable scalars: {exc}") from exc
    nulls = 0
    for k in [k for k in raw if _is_null(k)]:
        nulls += raw.pop(k)
    return dict(raw), nulls


class ColumnPair:
    """Cleaned reference and current values of one column.

    Numeric columns keep finite floats (None/NaN/inf dropped, as Evidently drops them;
    non-numbers counted in ``invalid_*``). Categorical columns keep raw non-null values and
    count them lazily with a hash table, which beats sorting object arrays by far.
    """

    def __init__(
        self,
        kind: ColumnKind,
        reference: Any,
        current: Any,
        name: str = "",
        current_counts: tuple[dict[Any, int], int] | None = None,
    ) -> None:
        if kind not in ("num", "cat"):
            raise InputError(f"column kind must be 'num' or 'cat', not {kind!r}")
        self.kind: ColumnKind = kind
        self.name = name
        self.cache: dict[str, Any] = {}  # results shared between methods of this column
        self.invalid_ref = self.invalid_cur = 0
        self.has_values = True  # False for pairs built from counts only
        if kind == "num":
            self.ref, self.nulls_ref, self.invalid_ref = split_numeric(reference)
            self.cur, self.nulls_cur, self.invalid_cur = split_numeric(current)
            self._ref_counts: dict[Any, int] | None = None
            self._cur_counts: dict[Any, int] | None = None
        else:
            self.ref = as_1d(reference)
            self.cur = as_1d(current)
            self._ref_counts, self.nulls_ref = count_values(reference)
            self._cur_counts, self.nulls_cur = current_counts or count_values(current)

    @classmethod
    def from_counts(
        cls, ref_counts: dict[Any, int], cur_counts: dict[Any, int], name: str = ""
    ) -> ColumnPair:
        """A categorical pair known only by its counts (e.g. from profiles).

        Every count-based method works on it; methods that need the individual values
        (``codes``) do not, and Evidently's TVD falls back to drawing permuted counts.
        """
        pair = cls("cat", np.empty(0, dtype=object), np.empty(0, dtype=object), name=name)
        pair._ref_counts = {k: int(v) for k, v in ref_counts.items() if v > 0}
        pair._cur_counts = {k: int(v) for k, v in cur_counts.items() if v > 0}
        pair.has_values = False
        return pair

    @property
    def n_ref(self) -> int:
        """Non-null reference values."""
        if self.kind == "num":
            return int(self.ref.size)
        assert self._ref_counts is not None
        return sum(self._ref_counts.values())

    @property
    def n_cur(self) -> int:
        """Non-null current values."""
        if self.kind == "num":
            return int(self.cur.size)
        assert self._cur_counts is not None
        return sum(self._cur_counts.values())

    @cached_property
    def sorted_ref(self) -> NDArray[np.float64]:
        """Sorted reference values (numeric columns)."""
        return np.sort(self._numeric(self.ref))

    @cached_property
    def sorted_cur(self) -> NDArray[np.float64]:
        """Sorted current values (numeric columns)."""
        return np.sort(self._numeric(self.cur))

    def _numeric(self, arr: NDArray[Any]) -> NDArray[np.float64]:
        if self.kind != "num":
            raise InputError(f"column {self.name!r} is categorical; this method needs numbers")
        return arr

    @cached_property
    def categories(self) -> Categories:
        """Counts of every distinct non-null value on both sides."""
        if self.kind == "num":
            rv, rc = _unique_sorted(self.sorted_ref)
            cv, cc = _unique_sorted(self.sorted_cur)
            ref_counts = dict(zip(rv.tolist(), rc.tolist(), strict=True))
            cur_counts = dict(zip(cv.tolist(), cc.tolist(), strict=True))
        else:
            assert self._ref_counts is not None and self._cur_counts is not None
            ref_counts, cur_counts = self._ref_counts, self._cur_counts
        keys = list(ref_counts) + [k for k in cur_counts if k not in ref_counts]
        return Categories(
            keys=keys,
            ref=np.fromiter((ref_counts.get(k, 0) for k in keys), np.int64, len(keys)),
            cur=np.fromiter((cur_counts.get(k, 0) for k in keys), np.int64, len(keys)),
        )

    @cached_property
    def ref_nunique(self) -> int:
        """Distinct non-null reference values (pandas' ``nunique``)."""
        if self.kind == "num":
            s = self.sorted_ref
            return int(s.size and 1 + np.count_nonzero(s[1:] != s[:-1]))
        assert self._ref_counts is not None
        return len(self._ref_counts)

    @cached_property
    def cur_nunique(self) -> int:
        """Distinct non-null current values."""
        if self.kind == "num":
            s = self.sorted_cur
            return int(s.size and 1 + np.count_nonzero(s[1:] != s[:-1]))
        assert self._cur_counts is not None
        return len(self._cur_counts)

    @cached_property
    def codes(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Integer codes into ``categories.keys`` of the non-null values of each side."""
        index = {k: i for i, k in enumerate(self.categories.keys)}
        out = []
        for arr in (self.ref, self.cur):
            if self.kind == "num" or arr.dtype.kind in "iub":
                vals = arr
            elif arr.dtype.kind in "fc":
                vals = arr[~np.isnan(arr)]
            else:
                vals = np.asarray([v for v in arr.tolist() if not _is_null(v)], dtype=object)
            lookup = index.__getitem__
            out.append(np.fromiter(map(lookup, vals.tolist()), np.int64, len(vals)))
        return out[0], out[1]

    def nunique_union_at_most(self, limit: int) -> int:
        """Distinct values of both sides together, exact up to ``limit`` (then ``limit + 1``).

        Evidently's method choice only asks whether the union has <= 2 or <= 5 values; a column
        whose reference alone has more needs no union at all.
        """
        if self.ref_nunique > limit:
            return limit + 1
        if self.cur_nunique > limit:
            return limit + 1
        return len(self.categories.keys)


def _unique_sorted(s: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """``np.unique(s, return_counts=True)`` for an already sorted array, without a sort."""
    if s.size == 0:
        return s, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    counts = np.diff(np.r_[starts, s.size]).astype(np.int64)
    return s[starts], counts
