"""adapters.endpoints: several RPC endpoints of one chain, in order, a failing one demoted for a cool-down that
doubles while it keeps failing, probed again by the next request once it ends; never all given up."""

from __future__ import annotations

import pytest

from adapters.endpoints import Endpoints, quorum_height, tally


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


def test_ready_endpoints_are_those_not_demoted_or_whose_cool_down_is_over() -> None:
    now = [0.0]
    eps = Endpoints(["http://a", "http://b", "http://c"], cool_down_s=5, clock=lambda: now[0])
    eps.failed(1)
    assert eps.ready() == [0, 2]
    now[0] = 5.0
    assert eps.ready() == [0, 1, 2] and eps.healthy() == [True, False, True]  # asked again: its probe


def test_a_tally_has_one_winner_with_a_quorum_and_names_the_outvoted() -> None:
    votes = tally({0: "x", 1: "y", 2: "x"}, quorum=2)
    assert votes.winner == "x" and votes.outvoted() == [1]
    assert votes.describe() == "2 agreed (endpoints 0, 2); 1 agreed (endpoints 1); 2 needed"
    split = tally({0: "x", 1: "y", 2: "z"}, quorum=2)
    assert split.winner is None and split.outvoted() == []
    assert tally({}, quorum=2).describe() == "no answers; 2 needed"


def test_the_quorum_height_is_the_quorum_th_highest_answer() -> None:
    assert quorum_height({0: 10, 1: 12, 2: 11}, quorum=2) == 11
    assert quorum_height({0: 10, 1: 10**9, 2: 11}, quorum=2) == 11  # one liar cannot raise it
    assert quorum_height({0: 10, 1: 12, 2: 11}, quorum=3) == 10
    assert quorum_height({0: 10}, quorum=2) is None
