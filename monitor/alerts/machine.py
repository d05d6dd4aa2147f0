"""The alert state machine: every decision of the alert lifecycle, as pure functions.

No database, no clock, no I/O: the evaluator (:mod:`monitor.alerts.evaluate`) loads the state,
calls these functions with an explicit ``now`` and stores what they return. Table-driven tests
(``tests/alerts/test_machine.py``) pin every rule below without a database.

**Series** (one rule over one column and segment; its points are the windows with a usable
result, oldest first). At a point, over the series' last points:

- *fire* when at least ``for`` of the last ``of`` points breach and the last ``resolve_after``
  points are not all clean (so an episode never fires and resolves on the same data);
- *clear* an open episode when the last ``resolve_after`` points are clean.

Windows are evaluated as they *complete*, not in window order: a catch-up computes the newest
window first, a late recompute brings back an old one. :func:`walk` steps through the series
from the oldest newly completed point to the newest point. Points newer than the rule's
*present* (the newest window it had evaluated) move the state forward as above. Points at or
before the present are history: alert episodes already decided there are facts that new data
never retracts or splits; an episode found in a gap between them is reported late (it fires
now, and clears where its data cleared). A late episode that runs into a known episode is that
episode's beginning: nothing new is said.

**No data**: an open alert whose series has had no point in the ``n`` windows after its last
one, all of them finished by the job (:func:`no_data`), clears with reason ``no_data``.

**Notification of a group** (one rule of one model), as Alertmanager does it
(:func:`plan_group`): a new group waits ``group_wait`` from its first alert; after a message,
changes (an alert firing that receivers have not been told about, or one they were told fired
that has resolved) go out ``group_interval`` after the previous message; with no change,
firing alerts repeat ``repeat_interval`` after the previous message (its real send time, so a
catch-up never repeats within one evaluation). Silenced alerts are left out; an alert that
resolves while silenced is still owed its "resolved" after a "firing" was sent, and gets it
once the silence ends.

**Never lose a firing** (:func:`on_clear`): an alert that clears before receivers were told it
fired (a catch-up, a late window, a long group_wait) stays firing, marked cleared, until the
next message tells them; then it resolves and its "resolved" follows ``group_interval`` later.
An alert that is silenced when it clears, and was never told, resolves quietly.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

FIRING = "firing"
RESOLVED = "resolved"
CLEAN = "clean"
NO_DATA = "no_data"


@dataclass(frozen=True)
class Params:
    """A rule's numbers (windows, seconds)."""

    for_windows: int = 1
    of_windows: int = 1
    resolve_after: int = 1
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0

    @property
    def depth(self) -> int:
        return max(self.of_windows, self.resolve_after)


@dataclass(frozen=True)
class Point:
    """A series' result in one window; ``data`` is the evaluator's (value, threshold...)."""

    window: datetime
    breach: bool
    data: Any = None


@dataclass
class Episode:
    """A stored alert of the series: fired at ``fired_window``; ``cleared_window`` is where its
    data cleared (None while open). ``state`` is firing until it resolves (an alert may be
    firing with a cleared window: cleared, but receivers were not told it fired yet)."""

    id: Hashable
    fired_window: datetime
    cleared_window: datetime | None = None
    state: str = FIRING

    def covers(self, window: datetime) -> bool:
        return self.fired_window <= window and (
            self.cleared_window is None or window < self.cleared_window
        )

    @property
    def live(self) -> bool:
        """Open and not cleared: the series' current episode."""
        return self.state == FIRING and self.cleared_window is None


@dataclass(frozen=True)
class Fire:
    """A new episode: fired at ``point.window`` (breaching point ``breaching``); ``cleared``
    is the clean point that ended it within this walk (None: still open); ``late`` when its
    window is at or before the rule's present."""

    point: Point
    breaching: Point
    hits: int
    late: bool
    cleared: Point | None = None


@dataclass(frozen=True)
class Clear:
    """The stored episode ``id`` cleared at ``point`` (clean data)."""

    id: Hashable
    point: Point


@dataclass(frozen=True)
class Update:
    """The stored episode ``id`` still breaches; ``point`` is its newest breaching point."""

    id: Hashable
    point: Point
    hits: int


@dataclass(frozen=True)
class Extend:
    """A late window shows the stored episode ``id`` began earlier, at ``point``: its fired
    window moves back (receivers were told about the episode already: nothing to send)."""

    id: Hashable
    point: Point


@dataclass(frozen=True)
class Reopen:
    """The stored episode ``id`` had cleared but was never told; it breaches again, so it is
    one episode still: its clearing is cancelled."""

    id: Hashable
    point: Point


Action = Fire | Clear | Update | Reopen | Extend


def _verdict(points: Sequence[Point], i: int, p: Params) -> tuple[int, bool, Point | None]:
    """(hits among the last ``of`` points, whether the last ``resolve_after`` are clean, the
    newest breaching point) as of point ``i``."""
    recent = points[max(0, i - p.depth + 1) : i + 1][::-1]
    hits = sum(1 for q in recent[: p.of_windows] if q.breach)
    clean = i + 1 >= p.resolve_after and not any(q.breach for q in recent[: p.resolve_after])
    breaching = next((q for q in recent if q.breach), None)
    return hits, clean, breaching


def walk(
    points: Sequence[Point],
    new: set[datetime] | frozenset[datetime],
    present: datetime | None,
    episodes: Sequence[Episode],
    p: Params,
) -> list[Action]:
    """What the newly completed windows ``new`` change in one series (see the module doc).

    ``points``: the series' points, oldest first, from at least ``p.depth`` points before the
    oldest new one to the newest; ``present``: the rule's newest evaluated window (None: never
    evaluated, everything is new); ``episodes``: the series' stored alerts that may cover any
    of the points (open ones, and resolved ones cleared after the first point).
    """
    starts = [i for i, q in enumerate(points) if q.window in new]
    if not starts:
        return []
    actions: list[Action] = []
    stored = sorted(episodes, key=lambda e: e.fired_window)
    cleared: dict[Hashable, datetime | None] = {}  # clear/reopen decided during this walk
    pending: tuple[Point, Point, int] | None = None  # (fired point, breaching, hits) of a new one

    def covering(window: datetime) -> Episode | None:
        for e in stored:
            end = cleared.get(e.id, e.cleared_window)
            if e.fired_window <= window and (end is None or window < end):
                return e
        return None

    for i in range(min(starts), len(points)):
        point = points[i]
        hits, clean, breaching = _verdict(points, i, p)
        live = present is None or point.window > present
        episode = covering(point.window)
        if episode is not None:
            if pending is not None:  # a new episode running into a known one: its beginning
                actions.append(Extend(episode.id, pending[0]))
                pending = None
            if live and episode.state == FIRING:  # covering a live point: the open one
                if clean:
                    actions.append(Clear(episode.id, point))
                    cleared[episode.id] = point.window
                elif point.breach:
                    actions.append(Update(episode.id, point, hits))
            continue
        if live and pending is None:
            reopen = _reopenable(stored, cleared, point.window)
            if reopen is not None and hits >= p.for_windows and not clean:
                actions.append(Reopen(reopen.id, point))
                cleared[reopen.id] = None
                continue
        if pending is not None:
            if clean:
                fired, first_breach, n = pending
                late = present is not None and fired.window <= present
                actions.append(Fire(fired, first_breach, n, late, cleared=point))
                pending = None
            continue
        if hits >= p.for_windows and not clean and breaching is not None:
            pending = (point, breaching, hits)
    if pending is not None:
        fired, first_breach, n = pending
        late = present is not None and fired.window <= present
        actions.append(Fire(fired, first_breach, n, late))
    return actions


def _reopenable(
    stored: Sequence[Episode], cleared: dict[Hashable, datetime | None], window: datetime
) -> Episode | None:
    """A firing episode whose clearing was never told (still firing), cleared before
    ``window``: new breaches continue it."""
    for e in reversed(stored):
        end = cleared.get(e.id, e.cleared_window)
        if e.state == FIRING and end is not None and end <= window:
            return e
    return None


def no_data(after_last_point: Sequence[bool], windows: int) -> bool:
    """Whether an open alert has seen no data for ``windows`` windows: ``after_last_point``
    says, for each window after the series' last point (oldest first), whether its job has
    finished it. All of the first ``windows`` must be finished (a catch-up that has not
    reached them yet says nothing)."""
    return windows > 0 and len(after_last_point) >= windows and all(after_last_point[:windows])


def on_clear(notified: str | None, silenced: bool) -> Literal["resolve", "defer"]:
    """When an alert's data clears: resolve it now if receivers were told it fired (they get
    its "resolved") or if it is silenced (nothing to tell); else defer until they are told."""
    return "resolve" if notified == FIRING or silenced else "defer"


@dataclass
class AlertView:
    """What the group planner needs of one alert."""

    key: Hashable
    state: str
    notified: str | None  # what receivers were last told: None, "firing" or "resolved"
    started_at: datetime
    last_notified_at: datetime | None
    silenced: bool = False
    cleared: bool = False  # firing, data cleared, waiting to be told it fired


@dataclass
class Plan:
    """What to do for a group now: send a message with ``included`` (firing and resolved), and
    resolve ``resolve`` (cleared alerts that have now been told, or silenced ones). ``next_at``:
    when something becomes due if nothing changes (None: nothing waiting)."""

    send: bool = False
    reason: str | None = None
    included: list[Hashable] = field(default_factory=list)
    resolve: list[Hashable] = field(default_factory=list)
    next_at: datetime | None = None


def plan_group(alerts: Sequence[AlertView], p: Params, now: datetime) -> Plan:
    """Alertmanager's timers for one group (see the module doc)."""
    plan = Plan()
    quiet = [a for a in alerts if a.state == FIRING and a.cleared and a.silenced]
    plan.resolve += [a.key for a in quiet if a.notified != FIRING]
    live = [
        a
        for a in alerts
        if a.key not in plan.resolve
        and (a.state == FIRING or (a.state == RESOLVED and a.notified == FIRING))
    ]
    audible = [a for a in live if not a.silenced]
    if not audible:
        return plan
    new = [a for a in audible if a.state == FIRING and a.notified != FIRING]
    owed = [a for a in audible if a.state == RESOLVED]
    told = [a for a in audible if a.state == FIRING and a.notified == FIRING]
    sent = [a.last_notified_at for a in live if a.last_notified_at is not None]
    if not sent:
        if not new:
            return plan
        due, reason = min(a.started_at for a in new) + timedelta(seconds=p.group_wait), "new"
    elif new or owed:
        due, reason = max(sent) + timedelta(seconds=p.group_interval), "change"
    elif told:
        due, reason = max(sent) + timedelta(seconds=p.repeat_interval), "repeat"
    else:  # pragma: no cover - audible alerts are new, owed or told
        return plan
    if now < due:
        plan.next_at = due
        return plan
    plan.send, plan.reason = True, reason
    plan.included = [a.key for a in audible]
    plan.resolve += [a.key for a in audible if a.state == FIRING and a.cleared]
    return plan
