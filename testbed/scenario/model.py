"""Scenario files as dataclasses (one source of truth, like the topology model).

A scenario is a timeline of steps; each step names an action from the registry and
when it starts: `at` (seconds from the run's start) or `after` (seconds after the
previous step's planned end). Every random choice comes from the scenario's seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from testbed.capture.tcpdump import CaptureSpec
from testbed.metrics.classify import OutcomeThresholds
from testbed.topology.model import Scalar, doc


@dataclass
class Selector:
    """Which nodes a step acts on."""

    kind: str | list[str] | None = doc("node kind(s), e.g. peer")
    group: str | list[str] | None = doc("group name(s)")
    labels: dict[str, Scalar] | None = doc("labels that must all match, e.g. {os: windows}")
    names: list[str] | None = doc("explicit node names")
    fraction: float | None = doc("take this share of the matches (0..1), chosen by the seed",
                                 min=0.0, max=1.0)
    count: int | None = doc("take this many of the matches, chosen by the seed", min=1)


@dataclass
class Distribution:
    """A random duration: fixed, uniform(min, max) or normal(mean, stddev) clipped at 0."""

    kind: Literal["fixed", "uniform", "normal"] = field(
        default="fixed", metadata={"doc": "fixed, uniform or normal"})
    value: float | None = doc("fixed: the duration", unit="duration")
    min: float | None = doc("uniform: lower bound", unit="duration")
    max: float | None = doc("uniform: upper bound", unit="duration")
    mean: float | None = doc("normal: mean", unit="duration")
    stddev: float | None = doc("normal: standard deviation", unit="duration")


@dataclass
class StepSpec:
    """One step as written in YAML."""

    action: str | None = doc("action name: restart_wave, crash, start, stop, set_link, "
                             "partition, heal, add_nodes, set_policy, wait_until, "
                             "run_playbook, call, mark")
    at: float | None = doc("start, seconds from the run's start", unit="duration")
    after: float | None = doc("start, this long after the previous step's end",
                              unit="duration")
    select: Selector | None = doc("the nodes it acts on")
    window: float | None = doc("restart_wave: spread the restarts over this long",
                               unit="duration")
    spread: Literal["uniform", "front-loaded"] | None = doc(
        "restart_wave: how restarts spread over the window")
    trace: str | None = doc("restart_wave: a file of recorded restart times (seconds, one "
                            "per line or the first CSV column), relative to the scenario "
                            "file; restarts follow its shape, scaled onto window: if given")
    down_time: Distribution | None = doc("restart_wave: how long each host stays down")
    mode: Literal["graceful", "hard"] | None = doc("restart_wave: SIGTERM or SIGKILL")
    restart_after: Distribution | None = doc("crash: start the crashed services again after "
                                             "this long (default: they stay down)")
    link: dict[str, Any] | None = doc("set_link: new shape, e.g. {bandwidth: 256kbit}")
    duration: float | None = doc("set_link/partition: reset after this long; call: how "
                                 "long each call lasts (default 10s)", unit="duration")
    to: Selector | None = doc("call: whom the selected peers call (each gets one of these, "
                              "chosen by the seed)")
    policy: str | None = doc("set_policy: retry policy name")
    query: str | None = doc("wait_until: a PromQL condition")
    timeout: float | None = doc("wait_until: give up after this long; run_playbook: fail "
                                "the step after this long", unit="duration")
    playbook: str | None = doc("run_playbook: the playbook, relative to the scenario file or "
                               "to the project's playbooks/ (e.g. patch-tuesday.yml)")
    extra_vars: dict[str, Any] | None = doc("run_playbook: variables for the playbook, like "
                                            "ansible-playbook -e (e.g. {serial_batch: 2})")
    text: str | None = doc("mark: the annotation")


@dataclass
class ScenarioFile:
    """A scenario file: `testbed run TOPOLOGY SCENARIO`."""

    name: str | None = doc("scenario name")
    description: str | None = doc("free text")
    seed: int | None = doc("seed for every random choice (default 1)")
    params: dict[str, Scalar] | None = doc(
        "topology parameters this scenario sets, like --set (the command line wins)")
    duration: float | None = doc("total run time", unit="duration")
    steps: list[StepSpec] | None = doc("the timeline")
    captures: list[CaptureSpec] | None = doc(
        "tcpdump captures for the whole run: node, interface (default its uplink), "
        "filter, snaplen, max_packets/max_seconds/max_megabytes, name")
    expect: list[Any] | None = doc(
        "expectations checked after the run over its pcaps and Prometheus data "
        "(docs/expectations.md)")
    clock: Literal["lab", "real"] | None = doc(
        "lab (default): times are lab seconds; real: times are real-network seconds, "
        "multiplied by the topology's overlay.time_scale (timeouts excepted)")
    outcome: OutcomeThresholds | None = doc(
        "how summary.json classifies the run: recovered, degraded or metastable "
        "(testbed/metrics/classify.py)")
