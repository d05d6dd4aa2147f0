"""A model's feature slots: which array (``num`` or ``cat``) and position each feature name has,
extended append-only as new names appear, up to the model's feature cap.

Features go into typed arrays by the slot the model's feature schema gives them. The slots of a
record's names are computed once per distinct tuple of names and cached (:class:`Plan`), with a
:class:`~monitor.sdk.postgres.fast.FastPlan` for the common dense shapes.

New names are registered before a COPY opens (no query can run while one is open): a plan that
meets a name it does not know raises :class:`NeedsDatabase`, and the writer registers the
names of the whole batch (:meth:`FeatureSchema.register`) and tries again. A name that cannot be
registered (the database refuses it) or may not be (over the cap) is remembered, so that its
records do not ask again: the first kind are refused as dead letters, the values of the second
are counted (``features_over_cap``) and not stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from monitor.sdk.postgres.fast import FastPlan, fast_plan
from monitor.sdk.records import CleanCounts, RecordError, feature_kind, feature_name

log = logging.getLogger(__name__)

DEFAULT_MAX_FEATURES = 2_000
_ADVISORY = 7_301  # pg_advisory_xact_lock(7301, model_id): one registration at a time
RETRYABLE = (psycopg.OperationalError, psycopg.InterfaceError)


class NeedsDatabase(Exception):
    """Raised while a COPY is open when encoding needs a query (new features, classes)."""


@dataclass(frozen=True)
class Slot:
    name: str  # the stored name (a non-string key's text)
    kind: str | None  # numeric, categorical, or None: not stored (see ``why``)
    position: int
    why: str = ""  # for kind None: "unknown" (only nulls seen), "over_cap" or "refused: ..."


@dataclass(frozen=True)
class Plan:
    """The slots of one tuple of feature names, in the record's key order."""

    slots: tuple[Slot, ...]
    stringified: int  # keys that are not strings (stored as their text, counted per record)
    error: str | None  # set when a key can never be a feature name: the record is refused


class FeatureSchema:
    """A model's feature slots: name -> (kind, position), extended append-only under a lock."""

    def __init__(self, model_id: int, max_features: int = DEFAULT_MAX_FEATURES) -> None:
        self.model_id = model_id
        self.max_features = max_features
        self.slots: dict[str, tuple[str, int]] = {}
        self.width = {"numeric": 0, "categorical": 0}
        self.over_cap: set[str] = set()
        self.refused: dict[str, str] = {}
        self.plans: dict[tuple[Any, ...], Plan] = {}
        self.fast: dict[tuple[Any, ...], FastPlan | None] = {}

    def load(self, conn: psycopg.Connection[Any]) -> None:
        self._set(*self._read(conn))

    def _read(
        self, conn: psycopg.Connection[Any]
    ) -> tuple[dict[str, tuple[str, int]], dict[str, int]]:
        rows = conn.execute(
            "SELECT name, kind, position FROM features WHERE model_id = %s", (self.model_id,)
        ).fetchall()
        slots = {name: (kind, pos) for name, kind, pos in rows}
        width = {"numeric": 0, "categorical": 0}
        for kind, pos in slots.values():
            width[kind] = max(width[kind], pos + 1)
        return slots, width

    def _set(self, slots: dict[str, tuple[str, int]], width: dict[str, int]) -> None:
        self.slots, self.width = slots, width
        self.plans.clear()
        self.fast.clear()

    # --- plans (no queries) -----------------------------------------------------------------

    def plan(self, features: Mapping[Any, Any]) -> Plan:
        """The slots of a record's features. Raises :class:`NeedsDatabase` when one of its
        names with a value is new (register the batch first)."""
        keys = tuple(features)
        cached = self.plans.get(keys)
        if cached is not None:
            return cached
        counts = CleanCounts()
        try:
            names = [feature_name(key, counts) for key in keys]
        except RecordError as exc:  # never a feature: the record is refused, names or not
            plan = Plan((), 0, str(exc))
            self.plans[keys] = plan
            return plan
        slots: list[Slot] = []
        error: str | None = None
        complete = True
        for name, value in zip(names, features.values(), strict=True):
            known = self.slots.get(name)
            if known is not None:
                slots.append(Slot(name, known[0], known[1]))
            elif name in self.refused:
                error = error or f"feature {name[:60]!r} refused: {self.refused[name]}"
                slots.append(Slot(name, None, -1, "refused"))
            elif name in self.over_cap:
                slots.append(Slot(name, None, -1, "over_cap"))
            elif feature_kind(value) is None:
                slots.append(Slot(name, None, -1, "unknown"))
                complete = False  # resolved when a value shows up
            else:
                raise NeedsDatabase(name)
        plan = Plan(tuple(slots), counts.keys_stringified, error)
        if complete:
            self.plans[keys] = plan
        return plan

    def fast_plan(self, keys: tuple[Any, ...]) -> FastPlan | None:
        """The fast plan of a tuple of names whose slots are all known and dense, else None."""
        if keys in self.fast:
            return self.fast[keys]
        slots = [self.slots.get(k) if type(k) is str else None for k in keys]
        if any(s is None for s in slots):
            return None  # not cached: a later registration may complete it
        plan = fast_plan([s for s in slots if s is not None], keys)
        self.fast[keys] = plan
        return plan

    # --- registration (queries; never inside a COPY) ------------------------------------------

    def register(self, conn: psycopg.Connection[Any], records: Iterable[Any]) -> None:
        """Register the new feature names of a batch (the kind of each from its first value)."""
        counts = CleanCounts()
        new: dict[str, str] = {}
        for rec in records:
            features = rec[2]
            if not isinstance(features, Mapping) or tuple(features) in self.plans:
                continue
            try:  # a record with a name no feature may have is refused whole: none registered
                names = [feature_name(key, counts) for key in features]
            except RecordError:
                continue
            for name, value in zip(names, features.values(), strict=True):
                if name in self.slots or name in new or name in self.over_cap:
                    continue
                if name in self.refused:
                    continue
                kind = feature_kind(value)
                if kind is not None:
                    new[name] = kind
        if new:
            self._insert(conn, new)

    def _insert(self, conn: psycopg.Connection[Any], new: dict[str, str]) -> None:
        try:
            self._insert_names(conn, new)
        except RETRYABLE:
            raise
        except psycopg.Error:
            # Some name the database refuses (psycopg already rolled the transaction back):
            # one at a time, so that the others are registered and the bad ones remembered.
            for name, kind in new.items():
                try:
                    self._insert_names(conn, {name: kind})
                except RETRYABLE:
                    raise
                except psycopg.Error as exc:
                    self.refused[name] = f"{type(exc).__name__}: {exc}"[:300]
                    log.warning("feature name %r refused by the database: %s", name[:60], exc)

    def extend(self, conn: psycopg.Connection[Any], new: Mapping[str, str]) -> None:
        """Append a baseline's features (an operator's decision: not limited by the cap)."""
        self._insert_names(conn, new, limit=None)

    def _insert_names(
        self, conn: psycopg.Connection[Any], new: Mapping[str, str], limit: int | None = -1
    ) -> None:
        """Append the names under an advisory lock (concurrent writers agree), up to the cap
        (``limit``; -1: the schema's). The slots in memory change once the transaction
        committed."""
        cap = self.max_features if limit == -1 else limit
        over: set[str] = set()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_ADVISORY, self.model_id))
            slots, width = self._read(conn)
            for name, kind in new.items():
                if name in slots:
                    continue
                if cap is not None and len(slots) >= cap:
                    over.add(name)
                    continue
                position = width[kind]
                conn.execute(
                    "INSERT INTO features (model_id, name, kind, position) VALUES (%s, %s, %s, %s)",
                    (self.model_id, name, kind, position),
                )
                slots[name] = (kind, position)
                width[kind] = position + 1
        self._set(slots, width)
        if over - self.over_cap:
            self.over_cap |= over
            log.warning(
                "model %s has reached its cap of %d features: %d new names not registered "
                "(their values are counted as features_over_cap and not stored)",
                self.model_id,
                self.max_features,
                len(self.over_cap),
            )
