"""Detection quality of the default policy vs Evidently's defaults, on repeated independent draws.

20 columns of mixed kinds (12 numeric incl. skewed, heavy-tailed, bimodal, integer and a
column with 20% NaN; 8 categorical incl. binary, a column with nulls and a 50-level Zipf
column). For each size pair and scenario, independent reference/current draws:

* clean   - nothing changes: share of windows with *any* drift flag (target <= 1%);
* shift   - 3 random columns per window change: numeric mean +0.2 sd, categorical 0.05 of
            probability mass moved from the most frequent category to another one (total
            variation 0.05): share of changed columns flagged (target >= 95% from n = 5,000);
* tiny    - 3 random numeric columns move by 0.02 sd: share of them flagged (target <= 5%
            at 1M rows; a real but negligible change).

"Evidently" is Evidently 0.7's default selection, thresholds and verdicts, computed through our
``evidently`` policy (value-identical to Evidently, see ``drift_vs_evidently.py``; running
Evidently itself would take hours here).

    python benchmarks/detection_quality.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.statistics import detect_drift

NUMERIC = [
    "normal",
    "lognormal",
    "exponential",
    "uniform",
    "student_t3",
    "bimodal",
    "with_nan",
    "beta_score",
    "poisson_counts",
    "gamma",
    "normal_wide",
    "int_age",
]
CATEGORICAL = {
    "flag": 2,
    "pred_class": 2,
    "cat3": 3,
    "cat5": 5,
    "cat10": 10,
    "cat50": 50,
    "with_nulls": 4,
    "int_level": 4,
}
KINDS = {**{c: "num" for c in NUMERIC}, **{c: "cat" for c in CATEGORICAL}}
SD = {
    "normal": 1.0,
    "lognormal": float(np.sqrt((np.exp(0.36) - 1) * np.exp(0.36))),
    "exponential": 2.0,
    "uniform": 10 / np.sqrt(12),
    "student_t3": np.sqrt(3.0),
    "bimodal": None,
    "with_nan": 2.0,
    "beta_score": float(np.sqrt(10 / (49 * 8))),
    "poisson_counts": np.sqrt(30.0),
    "gamma": np.sqrt(2.0) * 2,
    "normal_wide": 10.0,
    "int_age": np.sqrt((72**2 - 1) / 12),
}


def _probs(k: int, name: str) -> np.ndarray:
    if name in ("flag", "pred_class"):
        return np.array([0.7, 0.3])
    p = 1.0 / np.arange(1, k + 1) ** (1.0 if k > 5 else 0.5)
    return p / p.sum()


def _bimodal(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.where(rng.random(n) < 0.3, rng.normal(-2, 0.5, n), rng.normal(2, 0.7, n))


SD["bimodal"] = float(np.std(_bimodal(np.random.default_rng(0), 2_000_000)))


def draw(rng: np.random.Generator, n: int, shifts: dict[str, float]) -> dict[str, np.ndarray]:
    """One window; ``shifts`` maps numeric columns to a shift in sd, categoricals to a TV."""

    def num(name: str, x: np.ndarray) -> np.ndarray:
        return x + shifts.get(name, 0.0) * SD[name]  # type: ignore[operator]

    out: dict[str, np.ndarray] = {
        "normal": num("normal", rng.normal(0, 1, n)),
        "lognormal": num("lognormal", rng.lognormal(0, 0.6, n)),
        "exponential": num("exponential", rng.exponential(2.0, n)),
        "uniform": num("uniform", rng.uniform(0, 10, n)),
        "student_t3": num("student_t3", rng.standard_t(3, n)),
        "bimodal": num("bimodal", _bimodal(rng, n)),
        "with_nan": np.where(rng.random(n) < 0.2, np.nan, num("with_nan", rng.normal(5, 2, n))),
        "beta_score": num("beta_score", rng.beta(2, 5, n)),
        "gamma": num("gamma", rng.gamma(2.0, 2.0, n)),
        "normal_wide": num("normal_wide", rng.normal(100, 10, n)),
    }
    # integer columns move by whole units, at least the requested share of an sd
    lam = 30.0 + shifts.get("poisson_counts", 0.0) * SD["poisson_counts"]
    out["poisson_counts"] = rng.poisson(lam, n)
    step = np.ceil(shifts.get("int_age", 0.0) * SD["int_age"]) if "int_age" in shifts else 0
    out["int_age"] = rng.integers(18, 90, n) + int(step)
    for name, k in CATEGORICAL.items():
        p = _probs(k, name)
        tv = shifts.get(name, 0.0)
        if tv:
            top = int(np.argmax(p))
            other = int(rng.choice([i for i in range(k) if i != top]))
            p = p.copy()
            p[top] -= tv
            p[other] += tv
        codes = rng.choice(k, n, p=p)
        if name == "with_nulls":
            codes = np.where(rng.random(n) < 0.1, -1, codes).astype(float)
            codes[codes < 0] = np.nan
        out[name] = codes
    return out


def one_window(args: tuple[int, int, str, int]) -> dict[str, object]:
    """Draw reference and current, run both policies; flags per column for each."""
    n_ref, n_cur, scenario, seed = args
    rng = np.random.default_rng(seed)
    changed: dict[str, float] = {}
    if scenario == "shift":
        for c in rng.choice(list(KINDS), 3, replace=False).tolist():
            changed[c] = 0.2 if KINDS[c] == "num" else 0.05
    elif scenario == "tiny":
        for c in rng.choice(NUMERIC, 3, replace=False).tolist():
            changed[c] = 0.02
    ref = draw(rng, n_ref, {})
    cur = draw(rng, n_cur, changed)
    ours = detect_drift(ref, cur, column_kinds=KINDS)  # type: ignore[arg-type]
    theirs = detect_drift(ref, cur, column_kinds=KINDS, policy="evidently")  # type: ignore[arg-type]
    return {
        "changed": list(changed),
        "ours": [c.column for c in ours.columns if c.drifted],
        "evidently": [c.column for c in theirs.columns if c.drifted],
        "kinds": {c: KINDS[c] for c in changed},
    }


def summarise(results: list[dict[str, object]], engine: str, scenario: str) -> str:
    if scenario == "clean":
        hits = sum(1 for r in results if r[engine])
        return f"{hits / len(results):6.1%}"
    flagged = total = 0
    for r in results:
        for c in r["changed"]:  # type: ignore[attr-defined]
            total += 1
            flagged += c in r[engine]  # type: ignore[operator]
    return f"{flagged / max(total, 1):6.1%}"


def false_flags(results: list[dict[str, object]], engine: str) -> str:
    """Share of windows flagging an *unchanged* column (shift/tiny scenarios)."""
    bad = sum(1 for r in results if set(r[engine]) - set(r["changed"]))  # type: ignore[arg-type]
    return f"{bad / len(results):6.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer draws")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        plan = [(1_000, 1_000, 100), (5_000, 5_000, 60), (10_000, 100_000, 10)]
    else:
        plan = [
            (1_000, 1_000, 200),
            (5_000, 5_000, 100),
            (10_000, 100_000, 20),
            (100_000, 1_000_000, 6),
        ]
    print(__doc__.split("\n\n")[1].replace("\n", " ") + "\n")
    print(
        f"{'reference/current':>18} {'draws':>5}  {'clean: any flag':>22}  "
        f"{'shift 0.2sd/TV0.05 caught':>26}  {'  num / cat (ours)':>18}  "
        f"{'tiny 0.02sd flagged':>22}  {'other cols flagged':>19}"
    )
    print(
        f"{'':>18} {'':>5}  {'ours':>10} {'evidently':>11}  {'ours':>12} {'evidently':>13}  "
        f"{'':>18}  {'ours':>10} {'evidently':>11}  {'ours':>8} {'evidently':>10}"
    )
    t0 = time.perf_counter()
    with Pool(args.workers) as pool:
        for n_ref, n_cur, reps in plan:
            res = {}
            for k, scenario in enumerate(("clean", "shift", "tiny")):
                jobs = [
                    (n_ref, n_cur, scenario, 1_000_000 * k + 1000 * n_ref + i) for i in range(reps)
                ]
                res[scenario] = pool.map(one_window, jobs)
            shift = res["shift"]
            by_kind = []
            for kind in ("num", "cat"):
                hit = tot = 0
                for r in shift:
                    for c, kk in r["kinds"].items():  # type: ignore[attr-defined]
                        if kk == kind:
                            tot += 1
                            hit += c in r["ours"]  # type: ignore[operator]
                by_kind.append(f"{hit / max(tot, 1):.1%}")
            print(
                f"{n_ref:>8,}/{n_cur:<9,} {reps:>5}  "
                f"{summarise(res['clean'], 'ours', 'clean'):>10} "
                f"{summarise(res['clean'], 'evidently', 'clean'):>11}  "
                f"{summarise(shift, 'ours', 'shift'):>12} "
                f"{summarise(shift, 'evidently', 'shift'):>13}  "
                f"{' / '.join(by_kind):>18}  "
                f"{summarise(res['tiny'], 'ours', 'tiny'):>10} "
                f"{summarise(res['tiny'], 'evidently', 'tiny'):>11}  "
                f"{false_flags(shift + res['tiny'], 'ours'):>8} "
                f"{false_flags(shift + res['tiny'], 'evidently'):>10}",
                flush=True,
            )
    print(
        f"\n{time.perf_counter() - t0:.0f} s. Targets (ours): clean <= 1%; shift >= 95% "
        "from 5,000 rows; tiny <= 5% at 1M rows."
    )


if __name__ == "__main__":
    main()
