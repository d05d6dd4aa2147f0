"""Distances between binned distributions: PSI, KL, Jensen-Shannon, Hellinger, L-infinity.

Binning follows Evidently's ``get_binned_data``: a numeric column whose reference has more than
20 distinct values is cut into Sturges bins spanning the *union* of reference and current;
otherwise (and for categories) every distinct value is a bin. PSI and KL replace empty bins by a
small share (``min share / 1e6`` if the smallest share is <= 1e-4, else 1e-4) so the logarithms
stay finite; Jensen-Shannon does not need to. These definitions depend on the current window's
range, which profiles cannot know; :mod:`monitor.statistics.profile_drift` bins on fixed reference
edges instead and says so.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from scipy.spatial import distance

from .columns import ColumnPair
from .registry import MethodOutput, register

EVIDENTLY_MAX_DISCRETE = 20
"""A numeric reference with more distinct values than this is binned (Sturges) by Evidently."""
ZERO_SHARE = 1e-4
"""Evidently's replacement share for empty bins ..."""
ZERO_SHARE_DIVISOR = 1e6
"""... or the smallest non-zero share divided by this, when that share is <= ZERO_SHARE."""


def fill_zeros(shares: NDArray[np.float64]) -> NDArray[np.float64]:
    """Evidently's ``feel_zeroes``: replace empty bins by a small positive share."""
    out = shares.astype(np.float64, copy=True)
    nonzero = out[out != 0]
    if nonzero.size == 0:
        return out
    smallest = float(nonzero.min())
    out[out == 0] = smallest / ZERO_SHARE_DIVISOR if smallest <= ZERO_SHARE else ZERO_SHARE
    return out


def binned_shares(pair: ColumnPair, fill: bool) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Reference and current shares per bin, binned as Evidently's ``get_binned_data``."""
    if pair.kind == "num" and pair.ref_nunique > EVIDENTLY_MAX_DISCRETE:
        edges = np.histogram_bin_edges(np.concatenate([pair.ref, pair.cur]), bins="sturges")
        ref = np.histogram(pair.ref, edges)[0] / pair.n_ref
        cur = np.histogram(pair.cur, edges)[0] / pair.n_cur
    else:
        cats = pair.categories
        ref, cur = cats.ref / pair.n_ref, cats.cur / pair.n_cur
    if fill:
        ref, cur = fill_zeros(ref), fill_zeros(cur)
    return ref, cur


def psi_value(ref: NDArray[np.float64], cur: NDArray[np.float64]) -> float:
    """Population stability index of two share vectors without empty bins."""
    return float(np.sum((ref - cur) * np.log(ref / cur)))


@register("psi", kind="distance", column_kinds=("num", "cat"), default_threshold=0.1)
def psi(pair: ColumnPair) -> MethodOutput:
    """Population stability index on Evidently's bins (zero bins filled)."""
    return MethodOutput(psi_value(*binned_shares(pair, fill=True)))


@register("kl_div", kind="distance", column_kinds=("num", "cat"), default_threshold=0.1)
def kl_div(pair: ColumnPair) -> MethodOutput:
    """Kullback-Leibler divergence KL(reference || current) on Evidently's bins."""
    ref, cur = binned_shares(pair, fill=True)
    return MethodOutput(float(stats.entropy(ref, cur)))


@register("jensenshannon", kind="distance", column_kinds=("num", "cat"), default_threshold=0.1)
def jensenshannon(pair: ColumnPair) -> MethodOutput:
    """Jensen-Shannon *distance* (natural log) on Evidently's bins."""
    ref, cur = binned_shares(pair, fill=False)
    return MethodOutput(float(distance.jensenshannon(ref, cur)))


@register(
    "linf", kind="distance", column_kinds=("num", "cat"), default_threshold=0.3, source="monitor"
)
def linf(pair: ColumnPair) -> MethodOutput:
    """L-infinity distance of the shares (Vertex AI's and SageMaker's categorical measure).

    Default threshold 0.3, Vertex AI's default. Numeric columns use Evidently's bins.
    """
    ref, cur = binned_shares(pair, fill=False)
    return MethodOutput(float(np.max(np.abs(ref - cur))) if ref.size else 0.0)


@register("hellinger", kind="distance", column_kinds=("num", "cat"), default_threshold=0.1)
def hellinger(pair: ColumnPair) -> MethodOutput:
    """Hellinger distance; numeric columns use Sturges bins over the distinct values.

    Evidently bins numeric values with ``histogram_bin_edges`` of the *distinct* values of
    both sides (so the bin count follows the number of distinct values, not of rows) and
    integrates densities times the mean bin width.
    """
    # Sequential sums in Evidently's order: at identical distributions the distance is the
    # square root of rounding noise, so matching it needs the very same additions.
    bc = 0.0
    if pair.kind == "cat":
        cats = pair.categories
        ref = dict(zip(cats.keys, (cats.ref / pair.n_ref).tolist(), strict=True))
        cur = dict(zip(cats.keys, (cats.cur / pair.n_cur).tolist(), strict=True))
        ref_keys = [k for k in cats.keys if ref[k] > 0]
        cur_keys = [k for k in cats.keys if cur[k] > 0]
        for key in set(ref_keys) | set(cur_keys):
            bc += math.sqrt(ref[key] * cur[key])
    else:
        keys = np.asarray(pair.categories.keys, dtype=np.float64)
        edges = np.histogram_bin_edges(keys, bins="sturges")
        h1 = np.histogram(pair.ref, bins=edges, density=True)[0]
        h2 = np.histogram(pair.cur, bins=edges, density=True)[0]
        width = float((edges.max() - edges.min()) / (len(edges) - 1))
        for p1, p2 in zip(h1.tolist(), h2.tolist(), strict=True):
            bc += math.sqrt(p1 * p2) * width
    bc = min(max(bc, 0.0), 1.0)
    return MethodOutput(math.sqrt(1 - bc))
