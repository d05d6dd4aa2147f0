"""The alert state machine, table-driven, without a database: every decision of the lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.alerts import machine
from monitor.alerts.machine import AlertView, Episode, Params, Point

W0 = datetime(2026, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
RULE = Params(for_windows=2, of_windows=3, resolve_after=2)


def w(i: int) -> datetime:
    return W0 + i * H


def points(series: str) -> list[Point]:
    """'B' breaching, '.' clean, ' ' no result in that window."""
    return [Point(w(i), c == "B") for i, c in enumerate(series) if c != " "]


def compact(actions: list[machine.Action]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    index = {w(i): i for i in range(100)}
    for a in actions:
        if isinstance(a, machine.Fire):
            cleared = None if a.cleared is None else index[a.cleared.window]
            out.append(("fire", index[a.point.window], cleared, a.late))
        elif isinstance(a, machine.Clear):
            out.append(("clear", a.id, index[a.point.window]))
        elif isinstance(a, machine.Update):
            out.append(("update", a.id, index[a.point.window]))
        elif isinstance(a, machine.Extend):
            out.append(("extend", a.id, index[a.point.window]))
        else:
            out.append(("reopen", a.id, index[a.point.window]))
    return out


def episode(key: str, fired: int, cleared: int | None = None, state: str = "firing") -> Episode:
    return Episode(key, w(fired), None if cleared is None else w(cleared), state)


# (case, series, new windows, present, stored episodes, params, expected actions)
WALKS: list[tuple[str, str, range | list[int], int | None, list[Episode], Params, list]] = [
    ("fires at k of n and clears after resolve_after clean windows",
     "..BB...", range(7), None, [], RULE, [("fire", 3, 5, False)]),
    ("k of n not reached: nothing",
     ".B..B..B", range(8), None, [], RULE, []),
    ("a window without a result is not a clean one",
     "BB  .", range(5), None, [], RULE, [("fire", 1, None, False)]),
    ("an open alert that keeps breaching is updated",
     "..BBB", [4], 3, [episode("e", 3)], RULE, [("update", "e", 4)]),
    ("an open alert clears once the last resolve_after windows are clean",
     "..BBB..", [5, 6], 4, [episode("e", 3)], RULE, [("clear", "e", 6)]),
    ("one clean window of two needed: still open",
     "..BBB.", [5], 4, [episode("e", 3)], RULE, []),
    ("never fires and clears on the same data",
     "BB.", range(3), None, [], Params(2, 3, 1), [("fire", 1, 2, False)]),
    ("windows completing newest first: the old episode is found late",
     "BBB.......", [0, 1, 2], 9, [], RULE, [("fire", 1, 4, True)]),
    ("a late episode before the open one is its own, the open one is untouched",
     "BBB....BB.", [0, 1, 2], 9, [episode("open", 8)], RULE, [("fire", 1, 4, True)]),
    ("a late episode running into a known one is that one's beginning",
     ".BBBB..", [1, 2], 6, [episode("known", 3, 6, "resolved")], RULE, [("extend", "known", 2)]),
    ("a recomputed window never splits or ends an open episode",
     "..BBB.BBBB", [5], 9, [episode("open", 3)], RULE, []),
    ("a recomputed window inside a past episode changes nothing",
     "..BB....", [3], 7, [episode("past", 3, 5, "resolved")], RULE, []),
    ("walking the same windows again changes nothing",
     "..BB...", range(7), 6, [episode("e", 3, 5, "resolved")], RULE, []),
    ("a cleared alert never told breaches again: one episode, reopened",
     "..BB..BB", [6, 7], 5, [episode("e", 3, 5)], RULE, [("reopen", "e", 7)]),
    ("late windows continuing into live ones: a late episode still open",
     "BBBBB", [0, 1, 2, 4], 3, [], RULE, [("fire", 1, None, True)]),
    ("a rule never evaluated takes everything as live",
     ".BB..BB", range(7), None, [], RULE, [("fire", 2, 4, False), ("fire", 6, None, False)]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("series", "new", "present", "stored", "params", "expected"),
    [case[1:] for case in WALKS],
    ids=[case[0] for case in WALKS],
)
def test_walk(
    series: str,
    new: range | list[int],
    present: int | None,
    stored: list[Episode],
    params: Params,
    expected: list[tuple[Any, ...]],
) -> None:
    actions = machine.walk(
        points(series),
        frozenset(w(i) for i in new),
        None if present is None else w(present),
        stored,
        params,
    )
    assert compact(actions) == expected


def test_walk_needs_a_new_window_of_the_series() -> None:
    assert machine.walk(points("BBBB"), frozenset({w(9)}), None, [], RULE) == []


@pytest.mark.parametrize(
    ("finished", "windows", "expected"),
    [
        ([True, True, True], 3, True),
        ([True, True, True, False], 3, True),
        ([True, True], 3, False),  # not enough windows after the last point yet
        ([True, False, True], 3, False),  # a catch-up has not reached the middle one
        ([False, True, True, True], 3, False),
        ([True] * 5, 0, False),  # 0 turns it off
    ],
)
def test_no_data(finished: list[bool], windows: int, expected: bool) -> None:
    assert machine.no_data(finished, windows) is expected


@pytest.mark.parametrize(
    ("notified", "silenced", "expected"),
    [
        (None, False, "defer"),  # never told it fired: told first, then resolved
        ("firing", False, "resolve"),  # told it fired: it resolves, "resolved" follows
        (None, True, "resolve"),  # silenced and never told: nothing to tell
        ("firing", True, "resolve"),  # its "resolved" waits for the silence to end
    ],
)
def test_on_clear(notified: str | None, silenced: bool, expected: str) -> None:
    assert machine.on_clear(notified, silenced) == expected


T = datetime(2026, 1, 1, 12, tzinfo=UTC)
TIMERS = Params(group_wait=30, group_interval=300, repeat_interval=4 * 3600)


def view(key: str, state: str = "firing", notified: str | None = None, **kw: Any) -> AlertView:
    return AlertView(
        key=key,
        state=state,
        notified=notified,
        started_at=kw.pop("started_at", T),
        last_notified_at=kw.pop("sent", None),
        **kw,
    )


S = timedelta(seconds=1)
# (case, alerts, now, expected (send, reason, included, resolve, next_at))
PLANS: list[tuple[str, list[AlertView], datetime, tuple[Any, ...]]] = [
    ("a new group waits group_wait",
     [view("a")], T + 10 * S, (False, None, [], [], T + 30 * S)),
    ("a new group is sent once group_wait is over",
     [view("a"), view("b", started_at=T + 5 * S)], T + 30 * S,
     (True, "new", ["a", "b"], [], None)),
    ("a new alert in a notified group waits group_interval from the last message",
     [view("a", notified="firing", sent=T), view("b", started_at=T + 60 * S)], T + 120 * S,
     (False, None, [], [], T + 300 * S)),
    ("... and goes out then, with the group",
     [view("a", notified="firing", sent=T), view("b", started_at=T + 60 * S)], T + 300 * S,
     (True, "change", ["a", "b"], [], None)),
    ("a member resolving while others fire goes out at the next group_interval",
     [view("a", notified="firing", sent=T), view("b", "resolved", "firing", sent=T)],
     T + 300 * S, (True, "change", ["a", "b"], [], None)),
    ("no change: repeat_interval after the last real send",
     [view("a", notified="firing", sent=T)], T + 4 * 3600 * S,
     (True, "repeat", ["a"], [], None)),
    ("no change and repeat_interval not over: nothing (a catch-up never repeats at once)",
     [view("a", notified="firing", sent=T)], T + 4 * 3600 * S - S,
     (False, None, [], [], T + 4 * 3600 * S)),
    ("a resolved alert never told it fired is not owed anything",
     [view("a", "resolved", None)], T + 3600 * S, (False, None, [], [], None)),
    ("a silenced alert is left out; nothing else: nothing sent",
     [view("a", silenced=True)], T + 3600 * S, (False, None, [], [], None)),
    ("resolved while silenced after a firing was sent: owed, not sent while silenced",
     [view("a", "resolved", "firing", sent=T, silenced=True)], T + 3600 * S,
     (False, None, [], [], None)),
    ("... and sent once the silence has ended",
     [view("a", "resolved", "firing", sent=T)], T + 3600 * S,
     (True, "change", ["a"], [], None)),
    ("cleared before it was told it fired: told first, then resolved",
     [view("a", cleared=True)], T + 30 * S, (True, "new", ["a"], ["a"], None)),
    ("cleared, never told, silenced: resolved quietly",
     [view("a", cleared=True, silenced=True)], T + 30 * S, (False, None, [], ["a"], None)),
    ("silenced members are left out of the message",
     [view("a"), view("b", silenced=True)], T + 30 * S, (True, "new", ["a"], [], None)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("alerts", "now", "expected"), [c[1:] for c in PLANS], ids=[c[0] for c in PLANS]
)
def test_plan_group(alerts: list[AlertView], now: datetime, expected: tuple[Any, ...]) -> None:
    plan = machine.plan_group(alerts, TIMERS, now)
    assert (plan.send, plan.reason, plan.included, plan.resolve, plan.next_at) == expected


def test_every_episode_is_told_firing_then_resolved_whatever_the_timing() -> None:
    """A simulation over many timings: clear an alert at any moment relative to the group's
    timers; receivers always hear "firing" before "resolved", each exactly once."""
    for clear_after in range(0, 700, 10):
        for tick in (10, 30, 45):
            told: list[str] = []
            a = view("a")
            cleared = False
            for t in range(0, 2000, tick):
                now = T + t * S
                if t >= clear_after and not cleared and a.state == "firing":
                    cleared = True
                    if machine.on_clear(a.notified, a.silenced) == "resolve":
                        a.state = "resolved"
                    else:
                        a.cleared = True
                plan = machine.plan_group([a], TIMERS, now)
                if plan.send:
                    told.append(a.state)
                    a.notified, a.last_notified_at = a.state, now
                if "a" in plan.resolve:
                    a.state, a.cleared = "resolved", False
            assert told == ["firing", "resolved"], (clear_after, tick, told)
