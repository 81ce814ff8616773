from relayer.pipeline.backoff import ExponentialBackoff


def test_exact_sequence_doubles_then_caps():
    backoff = ExponentialBackoff(base_s=1.0, max_s=60.0)
    assert [backoff(n) for n in range(9)] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_huge_attempt_counts_do_not_overflow():
    assert ExponentialBackoff(0.5, 120.0)(10_000) == 120.0
