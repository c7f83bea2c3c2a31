"""The connector retry policy: exponential backoff with full jitter inside a time budget."""

from __future__ import annotations

import pytest

from hub.delivery.retries import RetryPolicy


def capped(**knobs: int | bool) -> RetryPolicy:
    """A policy whose jitter always picks the cap, so waits are the exponential caps."""
    return RetryPolicy(jitter=lambda cap: cap, **knobs)  # type: ignore[arg-type]


def test_delays_double_from_the_initial_delay() -> None:
    """Each attempt's wait cap doubles from delay_initial_ms."""
    policy = capped(delay_initial_ms=100, delay_max_ms=60_000)
    assert [policy.delay_s(a, None) for a in range(1, 6)] == [0.1, 0.2, 0.4, 0.8, 1.6]


def test_delays_stop_growing_at_delay_max() -> None:
    """No wait exceeds delay_max_ms, however many attempts came before."""
    policy = capped(delay_initial_ms=100, delay_max_ms=500)
    assert [policy.delay_s(a, None) for a in range(1, 7)] == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
    assert policy.delay_s(10_000, None) == 0.5


def test_full_jitter_draws_between_zero_and_the_cap() -> None:
    """The jitter is asked for a wait up to the exponential cap, and its answer is used."""
    asked: list[float] = []

    def jitter(cap: float) -> float:
        asked.append(cap)
        return cap / 4

    policy = RetryPolicy(delay_initial_ms=200, delay_max_ms=1_000, jitter=jitter)
    waits = [policy.delay_s(a, None) for a in range(1, 5)]
    assert asked == [0.2, 0.4, 0.8, 1.0]
    assert waits == [0.05, 0.1, 0.2, 0.25]


def test_default_jitter_stays_within_the_cap() -> None:
    """The real (random) jitter never waits less than zero or more than the cap."""
    policy = RetryPolicy(delay_initial_ms=200, delay_max_ms=1_000)
    for attempt in range(1, 8):
        cap = min(0.2 * 2 ** (attempt - 1), 1.0)
        for _ in range(50):
            assert 0.0 <= policy.delay_s(attempt, None) <= cap


def test_retry_after_is_honoured_instead_of_the_backoff() -> None:
    """A Retry-After from the far side is the wait, with no jitter applied."""
    policy = RetryPolicy(delay_initial_ms=200, delay_max_ms=60_000, jitter=lambda cap: 0.0)
    assert policy.delay_s(1, 7.5) == 7.5
    assert policy.delay_s(5, 0.25) == 0.25


def test_retry_after_is_capped_by_delay_max_and_never_negative() -> None:
    """A Retry-After beyond delay_max_ms waits delay_max_ms; a negative one waits nothing."""
    policy = capped(delay_max_ms=2_000)
    assert policy.delay_s(1, 3_600.0) == 2.0
    assert policy.delay_s(1, -5.0) == 0.0


def test_budget_allows_an_attempt_that_ends_exactly_at_the_timeout() -> None:
    """elapsed + delay == timeout still fits; a millisecond more does not."""
    policy = capped(timeout_ms=1_000)
    assert policy.allows(0.75, 0.25)
    assert not policy.allows(0.75, 0.251)
    assert not policy.allows(1.001, 0.0)


@pytest.mark.parametrize(("elapsed", "delay"), [(0.0, 0.0), (0.0, 0.001), (5.0, 1.0)])
def test_timeout_zero_never_retries(elapsed: float, delay: float) -> None:
    """errors.retry.timeout=0: not even an immediate retry right after the first attempt."""
    assert not capped(timeout_ms=0).allows(elapsed, delay)


@pytest.mark.parametrize(("elapsed", "delay"), [(0.0, 0.0), (86_400.0, 60.0), (1e9, 1e9)])
def test_timeout_minus_one_always_retries(elapsed: float, delay: float) -> None:
    """errors.retry.timeout=-1: retry forever, however long it has been."""
    assert capped(timeout_ms=-1).allows(elapsed, delay)


def test_defaults_match_kafka_connect_style_settings() -> None:
    """Defaults: five minutes of retries, waits up to a minute, dead-letter and go on."""
    policy = RetryPolicy()
    assert (policy.timeout_ms, policy.delay_max_ms, policy.delay_initial_ms) == (
        300_000,
        60_000,
        200,
    )
    assert policy.tolerate_all
