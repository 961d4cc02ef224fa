"""What a run is asked to do, and everything about it that can fail on bad input, checked
before a lab exists: the topology and scenario loaded, the schedule resolved, captures
and expectations placed, the kernel asked whether it can play every step."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from testbed.backends.base import Capabilities
from testbed.capture.declared import Placed, place, planned_nodes
from testbed.capture.resolve import precheck
from testbed.errors import MissingKernelFeature, ScenarioError, TestbedError
from testbed.links.change import needs_netem
from testbed.plan.build import build_plan
from testbed.plan.model import NetworkPlan
from testbed.scenario.loader import Scenario, load_scenario, scenario_params
from testbed.topology.loader import LAB_NAME, load_topology
from testbed.topology.model import Topology


@dataclass
class RunOptions:
    topology: Path
    scenario: Path
    overrides: dict[str, str] = field(default_factory=dict)
    results: Path = Path("results")
    run_id: str | None = None
    seed: int | None = None
    scrape_interval: float = 0.0  # seconds; 0: by the lab's size (auto_scrape_interval)
    ui_port: int = 9090
    ui_address: str = "127.0.0.1"  # where the UI forwarder listens (TESTBED_UI_ADDRESS)
    state_dir: str | None = None
    report: bool = True
    progress_every: float = 10.0
    duration: float | None = None  # overrides the scenario's duration:
    lab_name: str | None = None  # overrides the topology's name: (labs side by side)


@dataclass
class Prepared:
    topology: Topology
    plan: NetworkPlan
    scenario: Scenario
    run_dir: Path
    duration: float
    captures: list[Placed] = field(default_factory=list)

    @property
    def workload(self) -> str:
        """"overlay" (the reference peers) or "sip" (the SIP control experiment)."""
        from testbed.sip.monitor import workload_of

        return "overlay" if overlay_peers(self.plan) else workload_of(self.plan)

    @property
    def peers(self) -> list[str]:
        """The run's users, whose online fraction is the outcome: the overlay's peers, or
        the SIP user agents (registered fraction)."""
        if self.workload == "sip":
            from testbed.sip.monitor import user_agents

            return user_agents(self.plan)
        return overlay_peers(self.plan)


def prepare(options: RunOptions) -> Prepared:
    """Everything that can fail on bad input, before a lab exists."""
    overrides = {**scenario_params(options.scenario), **options.overrides}
    topology = load_topology(options.topology, overrides)
    if options.lab_name:
        if not LAB_NAME.match(options.lab_name):
            raise TestbedError(f"--lab-name {options.lab_name!r}: a lab name is 1-12 chars of "
                             "a-z, 0-9 and '-', starting with a letter")
        topology = dataclasses.replace(topology, name=options.lab_name)
    scenario = load_scenario(options.scenario, topology, options.seed)
    plan = build_plan(topology)
    captures, problems = place(topology, plan, scenario.captures)
    problems += precheck(scenario.expectations, planned_nodes(plan),
                         [(c.name, c.spec.node, c.interface) for c in captures])
    if problems:
        raise ScenarioError(problems)
    last = max((e.time for e in scenario.events), default=0.0)
    duration = options.duration or scenario.duration or last + 60.0
    run_id = options.run_id or (dt.datetime.now().strftime("%Y%m%d-%H%M%S-")
                                + f"{scenario.name}-{secrets.token_hex(2)}")
    return Prepared(topology, plan, scenario, options.results / run_id, duration, captures)


# Scrapes per second one Prometheus and the peers that answer it sustain on a 2-core
# machine beside the lab itself (a peer renders ~60 series per scrape); beyond this the
# scrapes time out and targets read as down (5,000 nodes at 1 s: 737 of 2,562 up).
SCRAPES_PER_SECOND = 250


def auto_scrape_interval(targets: int) -> float:
    """1 s up to SCRAPES_PER_SECOND targets, then one more second per that many."""
    return float(max(1, -(-targets // SCRAPES_PER_SECOND)))


def resolved(options: RunOptions, prepared: Prepared) -> RunOptions:
    """The options with an automatic scrape interval (0) replaced by the lab's."""
    if options.scrape_interval > 0:
        return options
    return dataclasses.replace(options,
                               scrape_interval=auto_scrape_interval(len(prepared.peers) + 1))


def check_kernel(scenario: Scenario, capabilities: Capabilities) -> None:
    """Refuse, before anything is built, a scenario this kernel cannot play."""
    wanted = [i for i, step in enumerate(scenario.steps)
              if step.action == "set_link" and step.link and needs_netem(step.link)]
    if wanted and os.geteuid() == 0 and not capabilities.netem:
        where = ", ".join(scenario.where(i) for i in wanted)
        raise MissingKernelFeature(
            f"{where}: set_link asks for delay/jitter, which needs the sch_netem kernel "
            "module, and this kernel does not have it (modprobe sch_netem fails). "
            "Bandwidth, queue and loss changes work without it; the lab VM (vagrant up) "
            "has netem. Nothing was built.")


def overlay_peers(plan: NetworkPlan) -> list[str]:
    """The overlay's users: reference peers, without capacity held back for add_nodes."""
    return sorted(n.name for n in plan.nodes.values()
                  if n.kind == "peer" and n.node.command is None and n.namespace
                  and not n.node.held_back)
