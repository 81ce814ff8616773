"""The keeper instance: of several daemons on one store, one runs the keeper jobs (gas oracle updates, releases of
queued bridge transfers, pool netting), on a real SQLite file: the first live relayer by name; a clean stop hands the
role on at the next beat, a death once the lease has passed; validators never keep; the other instances skip the
jobs."""

from __future__ import annotations

from relayer.daemon.handover import KEEPER_ROLES, Handover
from relayer.daemon.jobs import _on_the_keeper_only
from relayer.daemon.metrics import Metrics
from relayer.store import Store
from tests.unit.test_audit import settings as audit_settings
from tests.unit.test_pipeline import Clock

LEASE_S = 30.0


def stores(tmp_path, clock: Clock, *named: tuple[str, str]) -> dict[str, Store]:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    out = {}
    for name, role in named:
        out[name] = Store(url, owner=name, clock=clock)
        out[name].register_instance(role)
    return out


def handover(store: Store, metrics: Metrics | None = None) -> Handover:
    s = audit_settings()
    assert s.relayer.instance_lease_s == LEASE_S  # the default
    return Handover(s, store, metrics or Metrics(), {})


def test_the_first_live_relayer_by_name_keeps_and_validators_never_do(tmp_path):
    clock = Clock()
    s = stores(tmp_path, clock, ("a-validators", "validator"), ("r2", "relayer"), ("r1", "all"))
    assert {s[n].keeper_instance(LEASE_S, KEEPER_ROLES) for n in s} == {"r1"}  # every instance reads the same
    s["r1"].stop_instance()  # a clean stop: the next one at once
    assert s["r2"].keeper_instance(LEASE_S, KEEPER_ROLES) == "r2"
    s["r1"].heartbeat()  # back: first by name again
    assert s["r2"].keeper_instance(LEASE_S, KEEPER_ROLES) == "r1"
    clock.now += LEASE_S - 1
    s["r2"].heartbeat()
    assert s["r2"].keeper_instance(LEASE_S, KEEPER_ROLES) == "r1"  # r1 silent, but not yet for a lease
    clock.now += 2
    assert s["r2"].keeper_instance(LEASE_S, KEEPER_ROLES) == "r2"  # r1 silent for longer than a lease: dead
    s["r2"].stop_instance()
    assert s["a-validators"].keeper_instance(LEASE_S, KEEPER_ROLES) is None  # only a validator left


async def test_only_the_keeper_runs_a_keeper_job_and_the_role_moves_when_it_stops(tmp_path):
    clock = Clock()
    s = stores(tmp_path, clock, ("r1", "relayer"), ("r2", "relayer"))
    metrics = {n: Metrics() for n in s}
    handovers = {n: handover(s[n], metrics[n]) for n in s}
    ran: list[str] = []

    def job(name: str):
        async def run() -> None:
            ran.append(name)
        return _on_the_keeper_only(run, handovers[name])

    jobs = {n: job(n) for n in s}
    for n in s:  # before any beat: asked of the store
        await jobs[n]()
    assert ran == ["r1"]
    for n in s:
        await handovers[n].beat()
    assert [metrics[n].value("relayer_keeper_instance") for n in s] == [1.0, 0.0]
    s["r1"].stop_instance()  # its jobs stopped with it
    await jobs["r2"]()
    assert ran == ["r1"]  # r2 keeps as of its last beat
    await handovers["r2"].beat()
    await jobs["r2"]()
    assert ran == ["r1", "r2"] and metrics["r2"].value("relayer_keeper_instance") == 1.0
