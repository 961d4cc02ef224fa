"""Server capacity: at most `rate` requests per second are served, the queue is bounded."""

from __future__ import annotations

import pytest

from testbed.peer.admission import Admission


def test_serves_at_most_rate_per_second_then_queues_then_rejects() -> None:
    gate = Admission(rate=10, queue_max=5)
    decisions = [gate.offer(now=0.0) for _ in range(20)]
    assert decisions.count("now") == 10
    assert decisions.count("queue") == 5
    assert decisions.count("reject") == 5


def test_queue_drains_at_the_configured_rate() -> None:
    gate = Admission(rate=10, queue_max=100, burst=1)
    assert gate.offer(0.0) == "now"
    for _ in range(50):
        assert gate.offer(0.0) == "queue"
    served, now = 0, 0.0
    while now < 2.0:
        now += 0.01
        while gate.take_turn(now):
            served += 1
    assert served == pytest.approx(20, abs=1)  # 10/s for 2 s
    assert gate.wait_for_turn(now) <= 0.1


def test_abandoned_requests_free_their_queue_place() -> None:
    gate = Admission(rate=1, queue_max=1, burst=1)
    assert gate.offer(0.0) == "now"
    assert gate.offer(0.0) == "queue"
    assert gate.offer(0.0) == "reject"
    gate.abandon()
    assert gate.offer(0.0) == "queue"


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Admission(rate=0, queue_max=1)
