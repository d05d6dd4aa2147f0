"""Speed, memory and value parity: monitor's engine vs Evidently's DataDriftPreset.

Reference 100k rows, current 10k / 100k / 1M rows, 20 mixed columns (numeric, few-valued
numeric, integer counts, binary, categories with 3 to 50 levels, NaNs), some columns drifted.
Each engine runs on each size in its own subprocess on identical data (same seed), so peak
memory (``ru_maxrss``) is measured without the other engine's footprint; the parent compares
the per-column values and verdicts (ours under the ``evidently`` policy) and prints a table.
Peak memory is the kernel's high-water mark of the process during the drift computation
(reset after the data is generated; ``ru_maxrss`` where that reset is unavailable).

    python benchmarks/drift_vs_evidently.py            # 10k, 100k, 1M
    python benchmarks/drift_vs_evidently.py --quick    # 10k, 100k
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N_REFERENCE = 100_000
LEVELS = {"cat3": 3, "cat5": 5, "cat10": 10, "cat50": 50}


def make_frame(n: int, seed: int, drift: bool):  # type: ignore[no-untyped-def]
    """20 columns of mixed kinds; with ``drift`` a few of them shift moderately."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    s = 1.0 if drift else 0.0
    cols: dict[str, object] = {
        "n_normal": rng.normal(0.1 * s, 1, n),
        "n_normal_wide": rng.normal(0, 1 + 0.2 * s, n),
        "n_lognormal": rng.lognormal(0, 0.6, n),
        "n_exponential": rng.exponential(2.0, n),
        "n_uniform": rng.uniform(0, 10 + s, n),
        "n_student": rng.standard_t(3, n),
        "n_bimodal": np.where(
            rng.random(n) < 0.3 + 0.05 * s, rng.normal(-2, 0.5, n), rng.normal(2, 0.7, n)
        ),
        "n_with_nan": np.where(rng.random(n) < 0.1, np.nan, rng.normal(5, 2, n)),
        "n_score": rng.beta(2, 5 - 0.3 * s, n),
        "n_few": rng.choice([0.0, 1.0, 2.0, 3.0], n, p=[0.4, 0.3, 0.2, 0.1]),
        "i_counts": rng.poisson(30, n),
        "i_age": rng.integers(18, 90, n),
        "b_flag": rng.random(n) < 0.3 + 0.02 * s,
        "i_level": rng.integers(0, 4, n),
    }
    for name, k in LEVELS.items():
        p = 1.0 / np.arange(1, k + 1)
        p /= p.sum()
        if drift and name == "cat5":
            p = 0.9 * p + 0.1 * np.eye(k)[-1]
        cols[name] = np.array([f"{name}_{i}" for i in range(k)], dtype=object)[
            rng.choice(k, n, p=p)
        ]
    labels = np.array(["a", "b", "c", None], dtype=object)
    cols["cat_with_null"] = labels[rng.choice(4, n, p=[0.5, 0.3, 0.15, 0.05])]
    cols["pred_class"] = np.array(["neg", "pos"], dtype=object)[
        (rng.random(n) < 0.2 + 0.03 * s).astype(int)
    ]
    return pd.DataFrame(cols)


def run_engine(engine: str, n_current: int) -> dict[str, object]:
    """Run one engine once (in this process) and return timings, memory and values."""
    import warnings

    warnings.simplefilter("ignore")
    ref = make_frame(N_REFERENCE, 1, drift=False)
    cur = make_frame(n_current, 2, drift=True)
    if engine == "evidently":
        from evidently import Report
        from evidently.presets import DataDriftPreset
    else:
        sys.path.insert(0, str(ROOT))
        from monitor.statistics import detect_drift
    import gc

    gc.collect()
    rss_before = _reset_peak()
    t0 = time.perf_counter()
    values: dict[str, list[object]] = {}
    if engine == "evidently":
        snap = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
        metrics = snap.dict()["metrics"]
        elapsed = time.perf_counter() - t0
        for m in metrics[1:]:
            cfg = m["config"]
            values[cfg["column"]] = [
                cfg["method"],
                float(m["value"]),
                None,
            ]  # verdict derived by the parent from the threshold
            values[cfg["column"]][2] = cfg["threshold"]
    else:
        res = detect_drift(ref, cur, policy="evidently")
        elapsed = time.perf_counter() - t0
        for c in res.columns:
            values[c.column] = [c.method, float(c.score), c.threshold, c.drifted]
    peak = _peak_kb()
    return {
        "seconds": elapsed,
        "peak_mb": peak / 1024,
        "before_mb": rss_before / 1024,
        "values": values,
    }


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def _reset_peak() -> int:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux ``clear_refs`` 5), so the
    peak measures the drift computation with the data loaded, not the data generation's
    temporaries; falls back to ``ru_maxrss`` elsewhere. Returns the current RSS in kB."""
    try:  # give memory freed by the data generation back to the OS first (glibc)
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _status_kb("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_kb() -> int:
    try:
        return _status_kb("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def in_subprocess(engine: str, n_current: int) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, __file__, "--worker", engine, str(n_current)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def compare(ours: dict[str, list], theirs: dict[str, list]) -> tuple[float, int, int]:
    """Max relative difference of values, verdict mismatches, method mismatches."""
    sys.path.insert(0, str(ROOT))
    from monitor.statistics import get_method

    worst, verdicts, methods = 0.0, 0, 0
    for col, (m_ev, v_ev, t_ev) in theirs.items():
        m_us, v_us, _, d_us = ours[col]
        method = get_method(m_us)
        methods += m_ev not in (m_us, _display(m_us))
        worst = max(worst, abs(v_us - v_ev) / max(abs(v_ev), 1e-300))
        verdicts += method.decide(v_ev, t_ev) != d_us
    return worst, verdicts, methods


def _display(name: str) -> str:
    from evidently.legacy.calculations.stattests import registry

    return next(iter(registry._registered_stat_tests[name].values())).display_name  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1M-row current window")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_engine(args.worker[0], int(args.worker[1]))))
        return
    import warnings

    warnings.simplefilter("ignore")
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    print(f"reference {N_REFERENCE:,} rows, 20 columns; each engine in its own subprocess\n")
    head = (
        f"{'current':>9}  {'evidently s':>11}  {'ours s':>7}  {'speedup':>7}  "
        f"{'evidently MB':>12}  {'ours MB':>7}  {'mem ratio':>9}  "
        f"{'engine MB ev/ours':>17}  {'max rel diff':>12}  {'verdict diffs':>13}  "
        f"{'method diffs':>12}"
    )
    rows = []
    for n in sizes:
        ev = in_subprocess("evidently", n)
        us = in_subprocess("ours", n)
        worst, verdicts, methods = compare(us["values"], ev["values"])  # type: ignore[arg-type]
        rows.append(
            f"{n:>9,}  {ev['seconds']:>11.2f}  {us['seconds']:>7.2f}  "
            f"{ev['seconds'] / us['seconds']:>6.1f}x  {ev['peak_mb']:>12.0f}  "  # type: ignore[operator]
            f"{us['peak_mb']:>7.0f}  {us['peak_mb'] / ev['peak_mb']:>9.2f}  "  # type: ignore[operator]
            f"{ev['peak_mb'] - ev['before_mb']:>8.0f} / {us['peak_mb'] - us['before_mb']:<6.0f}  "  # type: ignore[operator]
            f"{worst:>12.1e}  {verdicts:>13}  {methods:>12}"
        )
        print(head if len(rows) == 1 else "", end="\n" if len(rows) == 1 else "")
        print(rows[-1], flush=True)
    print(
        "\nseconds: the drift computation on in-memory DataFrames (data generation and imports"
        " excluded);\nMB: peak RSS of the engine's process during the drift computation (the"
        " same data loaded in both;\n    the peak mark is reset after data generation);"
        "\nengine MB: that peak minus the RSS just before the computation (the engine's own "
        "footprint)."
        "\nverdict/method diffs: columns where ours (evidently policy) disagrees with "
        "Evidently."
    )


if __name__ == "__main__":
    main()
