"""run_playbook: an Ansible playbook against the running lab (its generated inventory);
`select:` limits it to the chosen hosts. It holds the timeline until it ends, like
wait_until, so that `after:` counts from the end of the rollout. The Ansible side
(ansible-runner, events to the step log) is scenario/playbook_step.py."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from testbed.scenario.actions.base import Action, ActionError, Event, RunContext, targets
from testbed.scenario.model import StepSpec
from testbed.topology.model import Topology


def schedule(step: StepSpec, index: int, start: float, topology: Topology,
             rng: random.Random) -> tuple[list[Event], float]:
    if not step.playbook:
        raise ActionError("run_playbook needs playbook: (e.g. patch-tuesday.yml)")
    params: dict[str, Any] = {"playbook": step.playbook,
                              "extra_vars": dict(step.extra_vars or {})}
    if step.select is not None:
        params["limit"] = list(targets(step, topology, rng))
    if step.timeout is not None:
        params["timeout"] = step.timeout
    return [Event(start, "run_playbook", (), params, index)], start


def run_playbook(ctx: RunContext, params: dict[str, Any]) -> str:
    from testbed.scenario.playbook_step import run_playbook as run

    base = ctx.work_dir or ctx.runtime.state.dir
    done = len(list((base / "ansible").glob("*"))) if (base / "ansible").is_dir() else 0
    work = base / "ansible" / f"{done + 1:02d}-{Path(str(params['playbook'])).stem}"
    return run(params, ctx.runtime.state.dir, ctx.runtime.state.root, work, ctx.note,
               ctx.cancelled)


ACTION = Action("run_playbook", schedule, timeline_events={"run_playbook": run_playbook},
                holding=frozenset({"run_playbook"}))
