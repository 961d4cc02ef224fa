"""The run's scrape-health check: which PromQL it asks, and what the user is told."""

from __future__ import annotations

from typing import Any

from testbed.metrics.targets import scrape_health, warning


class Answers:
    def __init__(self, never: list[str], down: list[str], total: int) -> None:
        self.never, self.down, self.total = never, down, total
        self.asked: list[str] = []

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        self.asked.append(promql)
        if promql.startswith("count("):
            return [{"metric": {}, "value": [at, str(self.total)]}]
        names = self.never if promql.startswith("max_over_time") else self.down
        return [{"metric": {"node": n}, "value": [at, "0"]} for n in names]


def test_targets_never_scraped_are_named_loudly() -> None:
    prom = Answers(never=["sn02", "login"], down=["sn02", "login", "home7"], total=40)
    health = scrape_health(prom, 1000.0, 1300.0)
    assert health == {"total": 40, "never_scraped": ["login", "sn02"],
                      "down_at_end": ["home7", "login", "sn02"]}
    assert any("[300s]" in q for q in prom.asked)  # the whole run, not the last sample
    assert all('held_back!="true"' in q for q in prom.asked)
    text = warning(health)
    assert text is not None and "2 of 40" in text and "NEVER" in text and "login" in text


def test_a_run_whose_targets_were_all_scraped_says_nothing() -> None:
    health = scrape_health(Answers(never=[], down=["home7"], total=40), 0.0, 60.0)
    assert warning(health) is None  # a node a scenario rebooted is down by design

