"""adapters.endpoints: several RPC endpoints of one chain, in order, a failing one demoted for a cool-down that
doubles while it keeps failing, probed again by the next request once it ends; never all given up."""

from __future__ import annotations

import pytest

from adapters.endpoints import Endpoints


def test_a_failing_endpoint_is_skipped_for_its_cool_down_then_probed_again() -> None:
    now = [0.0]
    eps = Endpoints(["http://a", "http://b", "http://c"], cool_down_s=5, max_cool_down_s=12, clock=lambda: now[0])
    assert eps.order() == [0, 1, 2] and eps.healthy() == [True, True, True]
    eps.failed(0)
    assert eps.order() == [1, 2, 0] and eps.healthy() == [False, True, True]
    now[0] = 5.0
    assert eps.order() == [0, 1, 2]  # its cool-down is over: the next request probes it
    assert eps.healthy()[0] is False  # until a request succeeds
    eps.failed(0)  # failed again: 10 s this time
    now[0] = 14.9
    assert eps.order()[0] == 1
    eps.failed(0)  # a third time (at 14.9): capped at 12 s, until 26.9
    now[0] = 26.8
    assert eps.order()[0] == 1
    now[0] = 26.9
    assert eps.order()[0] == 0
    eps.succeeded(0)
    assert eps.order() == [0, 1, 2] and eps.healthy() == [True, True, True]


def test_when_every_endpoint_is_demoted_all_are_still_tried_soonest_back_first() -> None:
    now = [0.0]
    eps = Endpoints(["http://a", "http://b"], cool_down_s=5, clock=lambda: now[0])
    eps.failed(1)
    now[0] = 1.0
    eps.failed(0)
    assert eps.order() == [1, 0]


def test_an_empty_list_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one endpoint"):
        Endpoints([])
