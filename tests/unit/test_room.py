"""The chains' room shared by daemons (router/room.py): a token bucket per chain in the database that two daemons
draw from together, so that together they never admit more than the chain's spare rate (plus one horizon)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine

from router.room import RoomStore

RATES = {"l1": 100.0, "rollup_a": 400.0}   # transfers per second at the fee-market target
BURST = {"l1": 1.0, "rollup_a": 0.5}      # seconds of it a bucket holds (the planning horizon)


class Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


def _daemons(tmp_path: Path, clock: Clock) -> tuple[RoomStore, RoomStore]:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    return RoomStore(create_engine(url), clock=clock), RoomStore(create_engine(url), clock=clock)


def test_a_bucket_starts_full_and_refills_at_the_chains_rate(tmp_path: Path) -> None:
    clock = Clock()
    room, _ = _daemons(tmp_path, clock)
    assert room.available(RATES, BURST) == {"l1": 100.0, "rollup_a": 200.0}
    assert room.reserve({"l1": 150.0, "rollup_a": 50.0}, RATES, BURST) == {"l1": 100.0, "rollup_a": 50.0}
    assert room.reserve({"l1": 1.0}, RATES, BURST) == {"l1": 0.0}
    clock.t += 0.25
    assert room.available(RATES, BURST)["l1"] == 25.0
    assert room.reserve({"l1": 10.0}, RATES, BURST) == {"l1": 10.0}
    clock.t += 60.0  # never more than one horizon of room, however long it was idle
    assert room.available(RATES, BURST) == {"l1": 100.0, "rollup_a": 200.0}


def test_two_daemons_together_never_take_more_than_the_chain_admits(tmp_path: Path) -> None:
    clock = Clock()
    a, b = _daemons(tmp_path, clock)
    taken = 0.0
    for step in range(200):  # 10 s of both daemons asking for 80 transfers of l1 every 50 ms (3,200/s asked)
        clock.t += 0.05
        taken += (a if step % 2 else b).reserve({"l1": 80.0}, RATES, BURST)["l1"]
        taken += (b if step % 2 else a).reserve({"l1": 80.0}, RATES, BURST)["l1"]
    assert taken <= RATES["l1"] * 10.0 + RATES["l1"] * BURST["l1"] + 1e-6  # the rate over 10 s, plus one full bucket
    assert taken >= RATES["l1"] * 10.0 - 1e-6  # and the room is used, not lost between them


def test_room_given_back_is_there_for_the_next_daemon_and_never_overfills(tmp_path: Path) -> None:
    """A daemon that reserved room for queued intents another daemon released first gives it back: the other daemon
    finds it at once (not after the refill), and a bucket never holds more than one horizon."""
    clock = Clock()
    a, b = _daemons(tmp_path, clock)
    assert a.reserve({"l1": 100.0}, RATES, BURST) == {"l1": 100.0}
    assert b.available(RATES, BURST)["l1"] == 0.0
    a.give_back({"l1": 40.0}, RATES, BURST)
    assert b.reserve({"l1": 40.0}, RATES, BURST) == {"l1": 40.0}
    a.give_back({"l1": 500.0, "rollup_a": 0.0}, RATES, BURST)
    assert b.available(RATES, BURST) == {"l1": 100.0, "rollup_a": 200.0}
