"""A run's options resolved before any lab exists: the scrape interval by the lab's size,
the lab name checked."""

from __future__ import annotations

from pathlib import Path


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


def test_a_bad_lab_name_is_refused_before_anything_is_built(tmp_path) -> None:  # noqa: ANN001
    import pytest

    from testbed.errors import TestbedError
    from testbed.scenario.run.options import RunOptions, prepare

    root = Path(__file__).resolve().parents[2]
    for bad in ("Bad_Name", "a-name-far-too-long", "9lives"):
        with pytest.raises(TestbedError, match="--lab-name"):
            prepare(RunOptions(root / "topologies/skype-2007.yaml",
                               root / "scenarios/skype-2007.yaml", results=tmp_path,
                               lab_name=bad))
    assert prepare(RunOptions(root / "topologies/skype-2007.yaml",
                              root / "scenarios/skype-2007.yaml", results=tmp_path,
                              lab_name="side-2")).plan.lab == "side-2"
