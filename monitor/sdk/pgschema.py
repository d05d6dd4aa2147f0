"""A model's feature slots for the Postgres writer: which array (``num`` or ``cat``) and
position each feature name has, extended append-only as new names appear.

Features go into typed arrays by the slot the model's append-only feature schema gives them;
the mapping of a record's feature names to slots is computed once per distinct tuple of names
and cached, with a :class:`~monitor.sdk.pgbinary.FastPlan` for the common dense shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from monitor.sdk.pgbinary import FastPlan, TextCache, fast_plan
from monitor.sdk.records import feature_kind

_MISSING: Any = object()

# One entry per feature of a record, in the record's key order: (kind or None, position).
Plan = list[tuple[str | None, int]]


class NeedsDatabase(Exception):
    """Raised while a COPY is open when encoding needs a query (new features, classes)."""


class FeatureSchema:
    """A model's feature slots: name -> (kind, position), extended append-only under a lock."""

    def __init__(self, model_id: int) -> None:
        self.model_id = model_id
        self.slots: dict[str, tuple[str, int]] = {}
        self.width = {"numeric": 0, "categorical": 0}
        self.plans: dict[tuple[str, ...], Plan] = {}
        self.fast: dict[tuple[str, ...], FastPlan | None] = {}
        self.frozen = False  # True while a COPY is open: no queries possible

    def load(self, conn: psycopg.Connection[Any]) -> None:
        rows = conn.execute(
            "SELECT name, kind, position FROM features WHERE model_id = %s", (self.model_id,)
        ).fetchall()
        self.slots = {name: (kind, pos) for name, kind, pos in rows}
        self.width = {"numeric": 0, "categorical": 0}
        for kind, pos in self.slots.values():
            self.width[kind] = max(self.width[kind], pos + 1)
        self.plans.clear()
        self.fast.clear()

    def extend(self, conn: psycopg.Connection[Any], new: Mapping[str, str]) -> None:
        """Append features never seen before; concurrent writers agree through an advisory lock."""
        if self.frozen:
            raise NeedsDatabase
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (7_301, self.model_id))
            self.load(conn)
            for name, kind in new.items():
                if name in self.slots:
                    continue
                position = self.width[kind]
                conn.execute(
                    "INSERT INTO features (model_id, name, kind, position) VALUES (%s, %s, %s, %s)",
                    (self.model_id, name, kind, position),
                )
                self.slots[name] = (kind, position)
                self.width[kind] = position + 1

    def fast_arrays(
        self, conn: psycopg.Connection[Any], features: Mapping[str, Any], texts: TextCache
    ) -> tuple[bytes, bytes] | None:
        """Both feature arrays encoded by the record shape's fast plan, or None (general path)."""
        keys = tuple(features)
        fast = self.fast.get(keys, _MISSING)
        if fast is _MISSING:
            plan = self.plan(conn, features)
            fast = fast_plan(plan, keys) if keys in self.plans else None
            if keys in self.plans:
                self.fast[keys] = fast
        if fast is None:
            return None
        try:
            return fast.encode(features, texts)
        except Exception:  # None, NaN, a mismatched type...: the general path cleans and counts
            return None

    def plan(self, conn: psycopg.Connection[Any], features: Mapping[str, Any]) -> Plan:
        """The slot of each feature of a record (cached per tuple of names)."""
        keys = tuple(features)
        plan = self.plans.get(keys)
        if plan is not None:
            return plan
        new: dict[str, str] = {}
        for name, value in features.items():
            if name not in self.slots:
                kind = feature_kind(value)
                if kind is not None:
                    new[str(name)] = kind
        if new:
            self.extend(conn, new)
        plan = []
        complete = True
        for name in keys:
            slot = self.slots.get(name if isinstance(name, str) else str(name))
            if slot is None:
                plan.append((None, -1))
                complete = False
            else:
                plan.append(slot)
        if complete:  # a name first seen as null is resolved when a value shows up
            self.plans[keys] = plan
        return plan
