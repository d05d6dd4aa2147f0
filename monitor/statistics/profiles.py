"""Mergeable column profiles: what a window job keeps instead of raw rows.

A profile is a small, JSON-serialisable summary of one column over one window. Profiles of
adjacent windows merge into the profile of their union, so an hourly job can roll hours into
days without keeping rows. Merging is *exact* for counts, nulls, min/max, moments (Chan et al.'s
parallel update of mean and M2) and histogram/category counts, and *distribution-exact* for the
reservoir sample: the merged sample is again a uniform sample without replacement of the union.

Histogram edges are fixed by the reference (baseline) profile and shared by every current
profile compared against it; that is what makes binned drift methods computable from profiles
at all. Evidently instead bins the *union* of reference and current data (Sturges' rule), which
no profile can reproduce; :mod:`monitor.statistics.profile_drift` documents that approximation
and the error bounds of the non-binned methods computed from profiles.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from monitor.errors import InputError

DEFAULT_N_BINS = 100
"""Quantile bins of the reference: each holds ~1% of it, which bounds the error of KS from
profiles by ~0.01 and keeps Wasserstein's interpolation error small (see profile_drift)."""
DEFAULT_SAMPLE_SIZE = 2_000
"""Reservoir size: enough for exact tests (KS, Anderson...) at a useful power, still small."""
DEFAULT_MAX_CATEGORIES = 10_000
"""Beyond this many distinct categories the rarest are folded into ``other`` (an ID column)."""


def _rng_for_merge(a_seed: int, b_seed: int, a_n: int, b_n: int) -> np.random.Generator:
    """A generator determined by both operands, so ``merge`` is reproducible."""
    return np.random.default_rng([a_seed & 0xFFFFFFFF, b_seed & 0xFFFFFFFF, a_n, b_n])


def _is_null(v: Any) -> bool:
    """None, NaN and pandas' NA/NaT markers (recognised by type name: no pandas import)."""
    if v is None:
        return True
    if isinstance(v, float | np.floating):
        return bool(np.isnan(v))
    return type(v).__name__ in ("NAType", "NaTType")


def as_1d(values: Any) -> NDArray[Any]:
    """A 1-d array of ``values``; ragged lists (a type error inside) become object arrays."""
    if isinstance(values, np.ndarray):
        return values.reshape(-1)
    if hasattr(values, "to_numpy"):  # pandas Series/Index, pyarrow arrays: no pandas import
        return np.asarray(values.to_numpy()).reshape(-1)
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.ndim != 1:
        items = list(values)
        arr = np.empty(len(items), dtype=object)
        for i, v in enumerate(items):
            arr[i] = v
    return arr


def split_numeric(values: Any) -> tuple[NDArray[np.float64], int, int]:
    """Split raw values into (finite float values, nulls, type errors).

    None, NaN and +-inf count as nulls (Evidently also drops infinities as missing); strings,
    containers and other non-numbers count as type errors. Booleans and integers are numbers.
    """
    arr = as_1d(values)
    if arr.dtype.kind in "fiub":
        x = arr.astype(np.float64, copy=False)
        finite = np.isfinite(x)
        return x[finite], int(x.size - finite.sum()), 0
    if arr.dtype.kind in "mM":
        raise InputError("datetime values cannot be profiled as numbers")
    out: list[float] = []
    nulls = invalid = 0
    for v in arr.tolist():
        if _is_null(v):
            nulls += 1
        elif isinstance(v, bool | int | float | np.number) and not isinstance(v, complex):
            f = float(v)
            if math.isfinite(f):
                out.append(f)
            else:
                nulls += 1
        else:
            invalid += 1
    return np.asarray(out, dtype=np.float64), nulls, invalid


_UNHASHABLE = object()


def category_label(value: Any) -> str:
    """The string key of a category: ``str(value)``, with integral floats shown as integers.

    CSV readers turn an integer column with a missing value into floats; ``3.0`` and ``3`` must
    name the same category, so integral floats are written without the ``.0``.
    """
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    return str(value)


def split_categorical(values: Any) -> tuple[dict[str, int], int, int]:
    """Count categories of raw values: (counts by label, nulls, type errors).

    None and NaN are nulls; lists, dicts, sets and other containers are type errors.
    """
    arr = as_1d(values)
    if arr.dtype.kind == "f":
        x = arr.astype(np.float64)
        nan = np.isnan(x)
        labels, freq = np.unique(x[~nan], return_counts=True)
        return (
            {
                category_label(v): int(c)
                for v, c in zip(labels.tolist(), freq.tolist(), strict=True)
            },
            int(nan.sum()),
            0,
        )
    items = arr.tolist()
    raw: Counter[Any]
    try:
        raw = Counter(items)
    except TypeError:  # an unhashable value (a list...): count the hashable ones one by one
        raw = Counter()
        unhashable = 0
        for v in items:
            try:
                raw[v] += 1
            except TypeError:
                unhashable += 1
        raw[_UNHASHABLE] = unhashable
    counts: dict[str, int] = {}
    nulls = invalid = 0
    for v, c in raw.items():
        if _is_null(v):
            nulls += c
        elif v is _UNHASHABLE or isinstance(v, tuple | frozenset | bytes):
            invalid += c
        else:
            key = category_label(v)
            counts[key] = counts.get(key, 0) + c
    return counts, nulls, invalid


def reference_edges(
    values: NDArray[np.float64], n_bins: int = DEFAULT_N_BINS
) -> NDArray[np.float64]:
    """Bin edges from reference quantiles, deduplicated.

    With at most ``n_bins`` distinct values every value gets a bin of its own (edges are the
    distinct values plus the float just above the maximum), so discrete columns bin exactly.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise InputError("cannot choose bin edges: the reference has no finite values")
    if n_bins < 1:
        raise InputError("n_bins must be at least 1")
    distinct = np.unique(x)
    if distinct.size <= n_bins:
        return np.append(distinct, np.nextafter(distinct[-1], np.inf))
    q = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1))
    return np.unique(q)


def bin_counts(values: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.int64]:
    """Counts on ``edges`` plus an underflow (first) and an overflow (last) bin.

    Inner bins are half-open ``[e_i, e_i+1)`` except the last, which is closed as in
    :func:`numpy.histogram`. The result has ``len(edges) + 1`` entries.
    """
    idx = np.searchsorted(edges, values, side="right")
    idx[values == edges[-1]] = len(edges) - 1
    return np.bincount(idx, minlength=len(edges) + 1).astype(np.int64)


def _initial_sample(x: NDArray[np.float64], size: int, seed: int) -> list[float]:
    if x.size <= size:
        return x.tolist()
    rng = np.random.default_rng(seed)
    return x[rng.choice(x.size, size=size, replace=False)].tolist()


def merge_samples(
    a: Sequence[float], n_a: int, b: Sequence[float], n_b: int, size: int, rng: np.random.Generator
) -> list[float]:
    """Merge two uniform samples (without replacement) of populations of size n_a and n_b.

    The merged sample has ``min(size, n_a + n_b)`` elements; the number taken from ``a`` is
    hypergeometric, which is exactly the law of a uniform sample of the union. This needs
    ``len(a) == min(size_a, n_a)`` with ``size_a >= size`` (same for ``b``), which profiles keep.
    """
    k = min(size, n_a + n_b)
    if k == 0:
        return []
    k_a = int(rng.hypergeometric(n_a, n_b, k)) if n_a and n_b else (k if n_a else 0)
    k_a = min(k_a, len(a))
    k_b = min(k - k_a, len(b))
    pick_a = rng.choice(len(a), size=k_a, replace=False) if k_a else np.empty(0, dtype=int)
    pick_b = rng.choice(len(b), size=k_b, replace=False) if k_b else np.empty(0, dtype=int)
    return [a[i] for i in pick_a.tolist()] + [b[i] for i in pick_b.tolist()]


@dataclass
class NumericProfile:
    """Summary of a numeric column over a window; see the module docstring.

    ``hist`` has ``len(edges) + 1`` counts: underflow, the inner bins, overflow. ``mean`` and
    ``m2`` (sum of squared deviations) are merged with Chan's formula, which is exact up to
    rounding and does not lose precision the way sum/sum-of-squares does.
    """

    count: int
    nulls: int
    invalid: int
    min: float | None
    max: float | None
    mean: float
    m2: float
    edges: list[float]
    hist: list[int]
    sample: list[float] = field(default_factory=list)
    sample_size: int = DEFAULT_SAMPLE_SIZE
    seed: int = 0

    @property
    def total(self) -> int:
        """Rows seen, valid or not."""
        return self.count + self.nulls + self.invalid

    @property
    def variance(self) -> float:
        """Population variance (``ddof=0``, as numpy's default), 0 for fewer than 2 values."""
        return self.m2 / self.count if self.count > 1 else 0.0

    @property
    def std(self) -> float:
        """Population standard deviation (``ddof=0``)."""
        return math.sqrt(max(self.variance, 0.0))

    def merge(self, other: NumericProfile) -> NumericProfile:
        """Profile of the union of both windows (exact for counts and moments)."""
        if not isinstance(other, NumericProfile):
            raise InputError("can only merge a NumericProfile with a NumericProfile")
        if len(self.edges) != len(other.edges) or not np.array_equal(self.edges, other.edges):
            raise InputError("cannot merge numeric profiles with different bin edges")
        n = self.count + other.count
        if n == 0:
            mean, m2 = 0.0, 0.0
        else:
            delta = other.mean - self.mean
            mean = self.mean + delta * other.count / n
            m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        size = min(self.sample_size, other.sample_size)
        rng = _rng_for_merge(self.seed, other.seed, self.count, other.count)
        sample = merge_samples(self.sample, self.count, other.sample, other.count, size, rng)
        mins = [v for v in (self.min, other.min) if v is not None]
        maxs = [v for v in (self.max, other.max) if v is not None]
        return NumericProfile(
            count=n,
            nulls=self.nulls + other.nulls,
            invalid=self.invalid + other.invalid,
            min=min(mins) if mins else None,
            max=max(maxs) if maxs else None,
            mean=mean,
            m2=m2,
            edges=list(self.edges),
            hist=[a + b for a, b in zip(self.hist, other.hist, strict=True)],
            sample=sample,
            sample_size=size,
            seed=self.seed,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; ``from_dict`` inverts it."""
        return {
            "type": "numeric",
            "count": self.count,
            "nulls": self.nulls,
            "invalid": self.invalid,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "m2": self.m2,
            "edges": list(self.edges),
            "hist": list(self.hist),
            "sample": list(self.sample),
            "sample_size": self.sample_size,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericProfile:
        """Rebuild a profile from :meth:`to_dict` output."""
        try:
            return cls(
                count=int(d["count"]),
                nulls=int(d["nulls"]),
                invalid=int(d["invalid"]),
                min=None if d["min"] is None else float(d["min"]),
                max=None if d["max"] is None else float(d["max"]),
                mean=float(d["mean"]),
                m2=float(d["m2"]),
                edges=[float(e) for e in d["edges"]],
                hist=[int(c) for c in d["hist"]],
                sample=[float(v) for v in d.get("sample", [])],
                sample_size=int(d.get("sample_size", DEFAULT_SAMPLE_SIZE)),
                seed=int(d.get("seed", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a numeric profile: {exc}") from exc


@dataclass
class CategoricalProfile:
    """Category counts of a window (keys are :func:`category_label` strings).

    Categories never seen in the reference are kept, so unseen-category shares and contingency
    tests work from profiles. Past ``max_categories`` the rarest categories are folded into
    ``other`` (counts stay exact in total; only their labels are lost).
    """

    count: int
    nulls: int
    invalid: int
    counts: dict[str, int]
    other: int = 0
    max_categories: int = DEFAULT_MAX_CATEGORIES

    @property
    def total(self) -> int:
        """Rows seen, valid or not."""
        return self.count + self.nulls + self.invalid

    def _bounded(self) -> CategoricalProfile:
        if len(self.counts) <= self.max_categories:
            return self
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        keep = dict(ranked[: self.max_categories])
        folded = sum(c for _, c in ranked[self.max_categories :])
        return CategoricalProfile(
            self.count, self.nulls, self.invalid, keep, self.other + folded, self.max_categories
        )

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        """Profile of the union of both windows (exact counts)."""
        if not isinstance(other, CategoricalProfile):
            raise InputError("can only merge a CategoricalProfile with a CategoricalProfile")
        counts = dict(self.counts)
        for k, c in other.counts.items():
            counts[k] = counts.get(k, 0) + c
        return CategoricalProfile(
            count=self.count + other.count,
            nulls=self.nulls + other.nulls,
            invalid=self.invalid + other.invalid,
            counts=counts,
            other=self.other + other.other,
            max_categories=min(self.max_categories, other.max_categories),
        )._bounded()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; ``from_dict`` inverts it."""
        return {
            "type": "categorical",
            "count": self.count,
            "nulls": self.nulls,
            "invalid": self.invalid,
            "counts": dict(self.counts),
            "other": self.other,
            "max_categories": self.max_categories,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalProfile:
        """Rebuild a profile from :meth:`to_dict` output."""
        try:
            return cls(
                count=int(d["count"]),
                nulls=int(d["nulls"]),
                invalid=int(d["invalid"]),
                counts={str(k): int(v) for k, v in d["counts"].items()},
                other=int(d.get("other", 0)),
                max_categories=int(d.get("max_categories", DEFAULT_MAX_CATEGORIES)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"not a categorical profile: {exc}") from exc


Profile = NumericProfile | CategoricalProfile


def pool_numeric(
    parts: Sequence[NumericProfile], rng: np.random.Generator | None = None
) -> tuple[NumericProfile, list[int]]:
    """Merge many numeric profiles in one pass, without their samples.

    Returns the merged profile (empty ``sample``) and how many sample values to take from
    each part: the quotas are multivariate-hypergeometric in the parts' counts, which is the
    law of a uniform sample of the union - the same law a chain of pairwise :meth:`merge`
    calls draws, at once. Taking a uniform subset of that size of each part's sample (or a
    prefix, when samples are stored in random order) completes the merged sample.
    Moments are pooled exactly (Chan et al.); counts and histograms are summed.
    """
    if not parts:
        raise InputError("nothing to merge")
    edges = parts[0].edges
    if any(p.edges != edges and not np.array_equal(p.edges, edges) for p in parts[1:]):
        raise InputError("cannot merge numeric profiles with different bin edges")
    n = np.array([p.count for p in parts], dtype=np.int64)
    means = np.array([p.mean for p in parts], dtype=np.float64)
    total = int(n.sum())
    mean = float((n * means).sum() / total) if total else 0.0
    m2 = float(sum(p.m2 for p in parts) + (n * (means - mean) ** 2).sum()) if total else 0.0
    mins = [p.min for p in parts if p.min is not None]
    maxs = [p.max for p in parts if p.max is not None]
    size = min(p.sample_size for p in parts)
    k = min(size, total)
    if rng is None:
        rng = np.random.default_rng([*(p.seed & 0xFFFFFFFF for p in parts), total & 0xFFFFFFFF])
    quotas = rng.multivariate_hypergeometric(n, k).tolist() if k else [0] * len(parts)
    merged = NumericProfile(
        count=total,
        nulls=sum(p.nulls for p in parts),
        invalid=sum(p.invalid for p in parts),
        min=min(mins) if mins else None,
        max=max(maxs) if maxs else None,
        mean=mean,
        m2=m2,
        edges=list(edges),
        hist=np.asarray([p.hist for p in parts], dtype=np.int64).sum(axis=0).tolist(),
        sample=[],
        sample_size=size,
        seed=parts[0].seed,
    )
    return merged, quotas


def merge_numeric(
    parts: Sequence[NumericProfile], rng: np.random.Generator | None = None
) -> NumericProfile:
    """Profile of the union of many numeric profiles (see :func:`pool_numeric`)."""
    merged, quotas = pool_numeric(parts, rng)
    pick = rng or np.random.default_rng([merged.seed & 0xFFFFFFFF, merged.count & 0xFFFFFFFF])
    sample: list[float] = []
    for part, q in zip(parts, quotas, strict=True):
        if q:
            idx = pick.choice(len(part.sample), size=q, replace=False)
            sample += np.asarray(part.sample, dtype=np.float64)[idx].tolist()
    merged.sample = sample
    return merged


def merge_categorical(parts: Sequence[CategoricalProfile]) -> CategoricalProfile:
    """Profile of the union of many categorical profiles (exact counts, bounded once)."""
    if not parts:
        raise InputError("nothing to merge")
    counts: Counter[str] = Counter()
    for p in parts:
        counts.update(p.counts)
    return CategoricalProfile(
        count=sum(p.count for p in parts),
        nulls=sum(p.nulls for p in parts),
        invalid=sum(p.invalid for p in parts),
        counts=dict(counts),
        other=sum(p.other for p in parts),
        max_categories=min(p.max_categories for p in parts),
    )._bounded()


def merge_profiles(parts: Sequence[Profile], rng: np.random.Generator | None = None) -> Profile:
    """Profile of the union of many profiles of one kind, in one pass.

    Same result law as folding :meth:`NumericProfile.merge` / :meth:`CategoricalProfile.merge`
    over the parts (exact for everything but the sample, whose law is the same), at the cost
    of one merge instead of ``len(parts) - 1``.
    """
    if parts and all(isinstance(p, NumericProfile) for p in parts):
        return merge_numeric(parts, rng)  # type: ignore[arg-type]
    if parts and all(isinstance(p, CategoricalProfile) for p in parts):
        return merge_categorical(parts)  # type: ignore[arg-type]
    raise InputError("merge_profiles needs a non-empty list of profiles of one kind")


def profile_from_dict(d: dict[str, Any]) -> Profile:
    """Rebuild either kind of profile from its ``to_dict`` form (dispatch on ``type``)."""
    kind = d.get("type") if isinstance(d, dict) else None
    if kind == "numeric":
        return NumericProfile.from_dict(d)
    if kind == "categorical":
        return CategoricalProfile.from_dict(d)
    raise InputError(f"unknown profile type {kind!r}; expected 'numeric' or 'categorical'")


def profile_numeric(
    values: Any, edges: Iterable[float], *, sample_size: int = DEFAULT_SAMPLE_SIZE, seed: int = 0
) -> NumericProfile:
    """Profile a window of a numeric column on the reference's bin ``edges``.

    Parameters
    ----------
    values : array-like
        Raw values; None/NaN/inf are nulls, non-numbers are type errors.
    edges : sequence of float
        Increasing bin edges, normally ``reference_profile.edges``.
    sample_size : int
        Capacity of the uniform reservoir sample kept for exact tests.
    seed : int
        Seed of the sample draw (and of later merges).

    Returns
    -------
    NumericProfile
    """
    e = np.asarray(list(edges), dtype=np.float64)
    if e.ndim != 1 or e.size < 1 or np.any(np.diff(e) < 0) or not np.all(np.isfinite(e)):
        raise InputError("bin edges must be a non-empty increasing sequence of finite numbers")
    if sample_size < 0:
        raise InputError("sample_size must be >= 0")
    x, nulls, invalid = split_numeric(values)
    n = int(x.size)
    mean = float(x.mean()) if n else 0.0
    m2 = float(((x - mean) ** 2).sum()) if n else 0.0
    return NumericProfile(
        count=n,
        nulls=nulls,
        invalid=invalid,
        min=float(x.min()) if n else None,
        max=float(x.max()) if n else None,
        mean=mean,
        m2=m2,
        edges=e.tolist(),
        hist=bin_counts(x, e).tolist(),
        sample=_initial_sample(x, sample_size, seed),
        sample_size=sample_size,
        seed=seed,
    )


def reference_profile_numeric(
    values: Any,
    *,
    n_bins: int = DEFAULT_N_BINS,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
) -> NumericProfile:
    """Profile a reference (baseline) numeric column, choosing its bin edges.

    Edges are reference quantiles (deduplicated; see :func:`reference_edges`), so each inner
    bin holds about ``1/n_bins`` of the reference and current windows are binned the same way.

    Parameters
    ----------
    values : array-like
        Reference values (nulls and type errors are counted, not used).
    n_bins : int
        Number of quantile bins before deduplication.
    sample_size, seed : int
        As in :func:`profile_numeric`.

    Returns
    -------
    NumericProfile
    """
    x, _, _ = split_numeric(values)
    return profile_numeric(values, reference_edges(x, n_bins), sample_size=sample_size, seed=seed)


def profile_categorical(
    values: Any, *, max_categories: int = DEFAULT_MAX_CATEGORIES
) -> CategoricalProfile:
    """Profile a window of a categorical column (counts by label; see :func:`category_label`).

    Parameters
    ----------
    values : array-like
        Raw values of any hashable scalar type; None/NaN are nulls, containers type errors.
    max_categories : int
        Bound on distinct labels kept; the rarest beyond it are counted in ``other``.

    Returns
    -------
    CategoricalProfile
    """
    counts, nulls, invalid = split_categorical(values)
    return CategoricalProfile(
        count=sum(counts.values()),
        nulls=nulls,
        invalid=invalid,
        counts=counts,
        max_categories=max_categories,
    )._bounded()


def reference_profile_categorical(
    values: Any, *, max_categories: int = DEFAULT_MAX_CATEGORIES
) -> CategoricalProfile:
    """Profile a reference categorical column (same as :func:`profile_categorical`)."""
    return profile_categorical(values, max_categories=max_categories)


def __getattr__(name: str) -> Any:
    # drift_from_profiles lives in profile_drift (it needs the method registry); it is also
    # reachable here because callers think of it as part of the profiles API.
    if name == "drift_from_profiles":
        from .profile_drift import drift_from_profiles

        return drift_from_profiles
    raise AttributeError(name)
