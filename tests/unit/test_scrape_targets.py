"""The run's scrape-health check: which PromQL it asks, and what the user is told."""

from __future__ import annotations

from pathlib import Path
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


def test_the_scrape_interval_grows_with_the_lab_unless_given() -> None:
    from testbed.scenario.run.options import SCRAPES_PER_SECOND, auto_scrape_interval

    assert auto_scrape_interval(1) == 1.0
    assert auto_scrape_interval(SCRAPES_PER_SECOND) == 1.0
    assert auto_scrape_interval(SCRAPES_PER_SECOND + 1) == 2.0
    assert auto_scrape_interval(2562) == 11.0  # the 5,000-node lab: 2,561 peers + exporter


def test_run_resolves_an_automatic_interval_by_its_peers(tmp_path) -> None:  # noqa: ANN001
    import dataclasses

    from testbed.scenario.run.options import RunOptions, prepare, resolved

    root = Path(__file__).resolve().parents[2]
    options = RunOptions(root / "topologies/skype-2007.yaml", root / "scenarios/skype-2007.yaml",
                         results=tmp_path)
    prepared = prepare(options)
    assert resolved(options, prepared).scrape_interval == 1.0  # 343 nodes: every second
    big = prepare(dataclasses.replace(options, overrides={"homes": "2500"}))
    assert resolved(options, big).scrape_interval == \
        float(-(-(len(big.peers) + 1) // 250))
    assert resolved(dataclasses.replace(options, scrape_interval=0.5), big).scrape_interval \
        == 0.5
