"""Synthetic but realistic data for the demo model ``credit-default``.

A binary classifier scores loan applications. The baseline is its training set (50k rows with
labels). Live traffic covers the last two weeks hour by hour, with daily seasonality in volume:

* days 0-5: like training;
* days 6-10: covariate shift ramps in -- incomes fall, credit utilisation rises, more medical
  loans, a new ``partner_api`` channel nobody trained on, and ``debt_to_income`` goes missing
  more often (an upstream pipeline bug). The concept P(default | x) does not change, so the
  model's real accuracy moves with the mix, which is what label-free estimation must see;
* days 11-13: the shift is fixed and traffic looks like training again; a retrained version
  ``2026.11.2`` is deployed at day 11.

Labels (did the loan default?) arrive 1-6 days after the prediction for ~80% of rows, so the
latest days have few or none yet; those still to come are ``pending_actuals`` (the demo lands
them on an accelerated clock, :mod:`monitor.demo.labels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

MODEL = "credit-default"
VERSION_1 = "2026.11.1"
VERSION_2 = "2026.11.2"
DAYS = 14
DRIFT_START_DAY = 6
DRIFT_END_DAY = 11

NUMERIC = [
    "age",
    "income",
    "debt_to_income",
    "credit_utilization",
    "num_credit_lines",
    "months_employed",
    "late_payments_12m",
    "loan_amount",
]
CATEGORICAL = ["home_ownership", "loan_purpose", "employment_type", "channel"]
PURPOSES = ["debt_consolidation", "credit_card", "home_improvement", "car", "medical", "other"]
PURPOSE_RISK = dict(zip(PURPOSES, [0.2, 0.1, -0.3, -0.2, 0.5, 0.3], strict=True))
THRESHOLD = 0.35


@dataclass(frozen=True)
class DemoData:
    baseline: pd.DataFrame  # features + prediction + proba + target
    traffic: pd.DataFrame  # features + prediction + proba + id, timestamp, version, latency
    actuals: pd.DataFrame  # id, actual, timestamp (labels already arrived by `now`)
    pending_actuals: pd.DataFrame = field(default_factory=pd.DataFrame)  # labels still to come


def _features(rng: np.random.Generator, n: int, drift: np.ndarray) -> pd.DataFrame:
    """Application features; ``drift`` in [0, 1] per row scales the covariate shift."""
    income = rng.lognormal(np.log(55_000) - 0.25 * drift, 0.5)
    util = np.clip(rng.beta(2 + 1.5 * drift, 3 - 0.8 * drift), 0, 1)
    dti = rng.beta(2, 5, n)
    dti[rng.random(n) < 0.01 + 0.14 * drift] = np.nan
    months = rng.exponential(60, n).round()
    months[rng.random(n) < 0.03] = np.nan
    p_purpose = np.array([0.35, 0.25, 0.12, 0.12, 0.06, 0.10])
    shifted = np.array([0.25, 0.20, 0.08, 0.10, 0.22, 0.15])
    u = rng.random(n)
    purpose = np.where(
        u < drift,
        rng.choice(PURPOSES, n, p=shifted),
        rng.choice(PURPOSES, n, p=p_purpose),
    )
    channels = np.array(["web", "mobile", "branch", "partner_api"])
    channel = np.where(
        rng.random(n) < 0.18 * drift,
        "partner_api",
        rng.choice(channels[:3], n, p=[0.5, 0.35, 0.15]),
    )
    return pd.DataFrame(
        {
            "age": np.clip(rng.normal(42, 12, n), 18, 90).round(),
            "income": income.round(2),
            "debt_to_income": dti.round(4),
            "credit_utilization": util.round(4),
            "num_credit_lines": rng.poisson(6, n).astype(float),
            "months_employed": months,
            "late_payments_12m": rng.poisson(0.4 + 0.2 * drift).astype(float),
            "loan_amount": rng.lognormal(np.log(15_000), 0.7, n).round(2),
            "home_ownership": rng.choice(["rent", "own", "mortgage"], n, p=[0.4, 0.2, 0.4]),
            "loan_purpose": purpose,
            "employment_type": rng.choice(
                ["salaried", "self_employed", "contract", "unemployed"], n, p=[0.6, 0.2, 0.15, 0.05]
            ),
            "channel": channel,
        }
    )


def _logit(x: pd.DataFrame, *, model: bool) -> np.ndarray:
    """True risk (``model=False``) or the trained model's slightly imperfect score."""
    dti = x["debt_to_income"].fillna(0.28 if model else 0.45)
    purpose = x["loan_purpose"].map(PURPOSE_RISK).to_numpy()
    z = (
        -1.9
        + 3.0 * (dti - 0.28)
        + 2.4 * (x["credit_utilization"] - 0.4)
        + 0.55 * x["late_payments_12m"]
        - 0.6 * np.log(x["income"] / 55_000)
        - 0.012 * (x["age"] - 42)
        + purpose
        + 0.4 * (x["employment_type"] == "unemployed")
    )
    if model:
        z = 0.95 * z - 0.02
    return np.asarray(z, dtype=float)


def _score(rng: np.random.Generator, x: pd.DataFrame) -> pd.DataFrame:
    proba = 1 / (1 + np.exp(-_logit(x, model=True)))
    truth = rng.random(len(x)) < 1 / (1 + np.exp(-_logit(x, model=False)))
    out = x.copy()
    out["proba"] = proba.round(5)
    out["prediction"] = (proba >= THRESHOLD).astype(int)
    out["target"] = truth.astype(int)
    return out


def generate(
    *,
    now: datetime | None = None,
    seed: int = 7,
    baseline_rows: int = 50_000,
    rows_per_hour: int = 300,
) -> DemoData:
    """Generate the demo's baseline, two weeks of hourly traffic and the labels known by now."""
    rng = np.random.default_rng(seed)
    now = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=DAYS)

    baseline = _score(rng, _features(rng, baseline_rows, np.zeros(baseline_rows)))

    hours = np.arange(DAYS * 24)
    daily = 0.6 + 0.4 * np.sin((hours % 24 - 6) / 24 * 2 * np.pi) ** 2
    counts = rng.poisson(rows_per_hour * daily)
    hour_of_row = np.repeat(hours, counts)
    n = len(hour_of_row)
    day = hour_of_row / 24
    ramp = np.clip((day - DRIFT_START_DAY) / 2, 0, 1)
    drift = np.where(day >= DRIFT_END_DAY, 0.0, ramp)
    traffic = _score(rng, _features(rng, n, drift))
    offsets = hour_of_row * 3600 + rng.uniform(0, 3600, n)
    traffic["timestamp"] = (pd.to_datetime(start) + pd.to_timedelta(offsets, unit="s")).floor("us")
    traffic["id"] = [f"app-{i:07d}" for i in range(n)]
    traffic["version"] = np.where(day >= DRIFT_END_DAY, VERSION_2, VERSION_1)
    latency = rng.lognormal(np.log(12), 0.35, n)
    since_deploy = np.where(day >= DRIFT_END_DAY, offsets - DRIFT_END_DAY * 86_400, offsets)
    latency = np.where(since_deploy < 120, latency * 6, latency)  # cold start after deploy
    traffic["latency_ms"] = latency.round(3)
    traffic["region"] = rng.choice(["eu", "us", "apac"], n, p=[0.5, 0.35, 0.15])

    delay_hours = 24 + rng.gamma(3, 24, n)
    arrives = (traffic["timestamp"] + pd.to_timedelta(delay_hours, unit="h")).dt.floor("us")
    will_label = rng.random(n) < 0.8
    landed = arrives <= pd.Timestamp(now)

    def labels(mask: pd.Series) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "id": traffic.loc[mask, "id"],
                "actual": traffic.loc[mask, "target"],
                "timestamp": arrives[mask],
            }
        ).reset_index(drop=True)

    return DemoData(
        baseline=baseline,
        traffic=traffic.drop(columns=["target"]),
        actuals=labels(will_label & landed),
        pending_actuals=labels(will_label & ~landed).sort_values("timestamp", ignore_index=True),
    )
