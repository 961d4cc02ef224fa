"""Retry policies behave as CALIBRATION.md says the 2007 client and the fix did."""

from __future__ import annotations

import random

import pytest

from testbed.peer.policies import POLICIES, RetryBudget, policy_named


def test_2007_policy_is_the_measured_loop() -> None:
    p = POLICIES["2007"]
    rng = random.Random(1)
    assert p.transports == ("udp", "tcp", "tcp80", "tcp443")
    assert p.probe_timeout == 5.0 and p.max_rounds is None and p.parallel_probes > 1
    # fixed 6 s between rounds, no jitter, no backoff, retry-after ignored
    assert {p.wait_after_failure(n, rng, retry_after=30) for n in range(1, 20)} == {6.0}
    assert p.reconnect_delay == 0.0


def test_fixed_policy_backs_off_with_full_jitter_capped() -> None:
    p = POLICIES["fixed"]
    rng = random.Random(1)
    waits = [p.wait_after_failure(10, rng) for _ in range(2000)]
    assert max(waits) <= p.backoff_cap
    assert min(waits) < 0.1 * p.backoff_cap  # full jitter reaches near zero
    assert 0.4 * p.backoff_cap < sum(waits) / len(waits) < 0.6 * p.backoff_cap
    assert all(p.wait_after_failure(1, rng) <= p.backoff_base for _ in range(100))
    assert p.wait_after_failure(1, rng, retry_after=30) >= 30


def test_retry_budget_caps_retries_and_refunds_on_success() -> None:
    budget = RetryBudget(POLICIES["fixed"])
    spent = 0
    while budget.try_spend(timed_out=True):
        spent += 1
    assert spent == 500 // 10
    budget.refund()
    assert budget.tokens == 1
    assert RetryBudget(POLICIES["2007"]).try_spend(timed_out=True)  # no budget in 2007


def test_time_scale_compresses_every_wait() -> None:
    fast = POLICIES["fixed"].with_time_scale(0.1)
    assert fast.probe_timeout == pytest.approx(0.5) and fast.backoff_cap == pytest.approx(6)


def test_unknown_policy_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: 2007, fixed"):
        policy_named("2008")
