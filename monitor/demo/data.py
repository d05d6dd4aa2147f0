"""Synthetic but realistic data for the demo: a model in trouble and a healthy one.

``credit-default``, a binary classifier, scores loan applications. The baseline is its training
set (50k rows with labels). Live traffic covers the last two weeks hour by hour, with daily
seasonality in volume, and tells a story an on-call engineer recognises:

* days 0-3: like training;
* days 3-6.5, a past incident, resolved: an upstream pipeline bug loses ``debt_to_income``
  (missing in 15% of rows), and a marketing push brings more medical loans and applicants with
  late payments. It is fixed at day 6.5; a retrained version ``2026.11.2`` ships at day 8;
* the last 36 hours, an incident still open: a new ``partner_api`` channel nobody trained on
  brings applicants with lower incomes and higher credit utilisation. The concept
  P(default | x) does not change, so the model's accuracy falls with the mix: the label-free
  estimate shows it at once, realised performance confirms it as labels arrive.

Labels (did the loan default?) arrive 1-6 days after the prediction for ~80% of rows, so the
newest windows have estimates but no realised performance yet; those still to come are
``pending_actuals`` (the demo lands them on an accelerated clock, :mod:`monitor.demo.labels`).

``churn``, a second binary classifier, stays healthy throughout: the overview shows at a
glance which model needs attention.
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
PAST_START_DAY = 3.0
"""The past incident ramps in over half a day from here, holds, and ends at PAST_END_DAY."""
PAST_END_DAY = 6.5
VERSION_2_DAY = 8.0
CURRENT_HOURS = 36
"""The open incident began this many hours before the newest window (ramping in over 12 h)."""
HEALTHY_MODEL = "churn"
HEALTHY_VERSION = "v7"

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
    model: str = MODEL
    numeric: tuple[str, ...] = tuple(NUMERIC)
    categorical: tuple[str, ...] = tuple(CATEGORICAL)
    description: str = "Demo: probability that a loan defaults"
    baseline_version: str = VERSION_1


def _features(
    rng: np.random.Generator, n: int, past: np.ndarray, current: np.ndarray | None = None
) -> pd.DataFrame:
    """Application features; ``past`` and ``current`` in [0, 1] per row scale the two shifts
    (the resolved incident's pipeline bug and loan mix, the open one's new channel)."""
    now = np.zeros(n) if current is None else current
    income = rng.lognormal(np.log(55_000) - 0.3 * now, 0.5)
    util = np.clip(rng.beta(2 + 1.8 * now, 3 - 1.0 * now), 0, 1)
    dti = rng.beta(2, 5, n)
    dti[rng.random(n) < 0.01 + 0.14 * past] = np.nan
    months = rng.exponential(60, n).round()
    months[rng.random(n) < 0.03] = np.nan
    p_purpose = np.array([0.35, 0.25, 0.12, 0.12, 0.06, 0.10])
    shifted = np.array([0.25, 0.20, 0.08, 0.10, 0.22, 0.15])
    u = rng.random(n)
    purpose = np.where(
        u < past,
        rng.choice(PURPOSES, n, p=shifted),
        rng.choice(PURPOSES, n, p=p_purpose),
    )
    channels = np.array(["web", "mobile", "branch", "partner_api"])
    channel = np.where(
        rng.random(n) < 0.25 * now,
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
            "late_payments_12m": rng.poisson(0.4 + 0.5 * past).astype(float),
            "loan_amount": rng.lognormal(np.log(15_000), 0.7, n).round(2),
            "home_ownership": rng.choice(["rent", "own", "mortgage"], n, p=[0.4, 0.2, 0.4]),
            "loan_purpose": purpose,
            "employment_type": rng.choice(
                ["salaried", "self_employed", "contract", "unemployed"], n, p=[0.6, 0.2, 0.15, 0.05]
            ),
            "channel": channel,
        }
    )


def _shifts(day: np.ndarray, days: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the strength of the past incident and of the open one (see the docstring)."""
    past = np.clip((day - PAST_START_DAY) / 0.5, 0, 1)
    past = np.where(day >= PAST_END_DAY, 0.0, past)
    start = days - CURRENT_HOURS / 24
    current = np.clip((day - start) / 0.5, 0, 1)
    return past, current


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
    past, current = _shifts(day, DAYS)
    traffic = _score(rng, _features(rng, n, past, current))
    offsets = hour_of_row * 3600 + rng.uniform(0, 3600, n)
    traffic["timestamp"] = (pd.to_datetime(start) + pd.to_timedelta(offsets, unit="s")).floor("us")
    traffic["id"] = [f"app-{i:07d}" for i in range(n)]
    traffic["version"] = np.where(day >= VERSION_2_DAY, VERSION_2, VERSION_1)
    latency = rng.lognormal(np.log(12), 0.35, n)
    since_deploy = np.where(day >= VERSION_2_DAY, offsets - VERSION_2_DAY * 86_400, offsets)
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


HEALTHY_NUMERIC = ["tenure_months", "monthly_spend", "support_tickets_30d", "logins_7d"]
HEALTHY_CATEGORICAL = ["plan", "payment_method"]


def _healthy_rows(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Subscribers of a service; whether they cancel within a month. No shift at any time."""
    x = pd.DataFrame(
        {
            "tenure_months": rng.gamma(2.0, 14.0, n).round(1),
            "monthly_spend": rng.lognormal(np.log(40), 0.4, n).round(2),
            "support_tickets_30d": rng.poisson(0.6, n).astype(float),
            "logins_7d": rng.poisson(9, n).astype(float),
            "plan": rng.choice(["basic", "plus", "premium"], n, p=[0.5, 0.35, 0.15]),
            "payment_method": rng.choice(["card", "paypal", "invoice"], n, p=[0.6, 0.3, 0.1]),
        }
    )
    z = (
        -1.2
        - 0.03 * (x["tenure_months"] - 28)
        + 0.45 * x["support_tickets_30d"]
        - 0.12 * (x["logins_7d"] - 9)
        + 0.3 * (x["plan"] == "basic")
        + 0.25 * (x["payment_method"] == "invoice")
    ).to_numpy()
    proba = 1 / (1 + np.exp(-(0.95 * z)))
    x["proba"] = proba.round(5)
    x["prediction"] = (proba >= 0.4).astype(int)
    x["target"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return x


def generate_healthy(
    *,
    now: datetime | None = None,
    seed: int = 11,
    baseline_rows: int = 20_000,
    rows_per_hour: int = 120,
) -> DemoData:
    """The healthy second model: two weeks like its training data, labels a day or two late."""
    rng = np.random.default_rng(seed)
    now = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=DAYS)
    baseline = _healthy_rows(rng, baseline_rows)
    counts = rng.poisson(rows_per_hour, DAYS * 24)
    hour_of_row = np.repeat(np.arange(DAYS * 24), counts)
    n = len(hour_of_row)
    traffic = _healthy_rows(rng, n)
    offsets = hour_of_row * 3600 + rng.uniform(0, 3600, n)
    traffic["timestamp"] = (pd.to_datetime(start) + pd.to_timedelta(offsets, unit="s")).floor("us")
    traffic["id"] = [f"sub-{i:07d}" for i in range(n)]
    traffic["version"] = HEALTHY_VERSION
    traffic["latency_ms"] = rng.lognormal(np.log(6), 0.3, n).round(3)
    traffic["region"] = rng.choice(["eu", "us"], n, p=[0.6, 0.4])
    arrives = (traffic["timestamp"] + pd.to_timedelta(12 + rng.gamma(2, 12, n), unit="h")).dt.floor(
        "us"
    )
    landed = arrives <= pd.Timestamp(now)
    actuals = pd.DataFrame(
        {"id": traffic.loc[landed, "id"], "actual": traffic.loc[landed, "target"],
         "timestamp": arrives[landed]}
    ).reset_index(drop=True)  # fmt: skip
    return DemoData(
        baseline=baseline,
        traffic=traffic.drop(columns=["target"]),
        actuals=actuals,
        model=HEALTHY_MODEL,
        numeric=tuple(HEALTHY_NUMERIC),
        categorical=tuple(HEALTHY_CATEGORICAL),
        description="Demo: probability that a subscriber cancels this month (healthy)",
        baseline_version=HEALTHY_VERSION,
    )


def live_rows(model: str, rng: np.random.Generator, n: int) -> pd.DataFrame:
    """``n`` requests as they arrive now: the model in trouble in its open incident (the new
    channel's applicants), the healthy one as ever. Features, proba, prediction, latency,
    region."""
    if model == HEALTHY_MODEL:
        rows = _healthy_rows(rng, n).drop(columns=["target"])
        rows["latency_ms"] = rng.lognormal(np.log(6), 0.3, n).round(3)
        rows["region"] = rng.choice(["eu", "us"], n, p=[0.6, 0.4])
        return rows
    rows = _score(rng, _features(rng, n, np.zeros(n), np.ones(n))).drop(columns=["target"])
    rows["latency_ms"] = rng.lognormal(np.log(12), 0.35, n).round(3)
    rows["region"] = rng.choice(["eu", "us", "apac"], n, p=[0.5, 0.35, 0.15])
    return rows
