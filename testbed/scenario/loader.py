"""Scenario YAML -> checked steps and a resolved schedule, with file:line errors.

Unknown actions and selectors that match nothing are reported before any lab starts."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path

from testbed.capture.declared import Declared
from testbed.capture.expectations import Expectation, expectations_in
from testbed.errors import Problem, ScenarioError
from testbed.metrics.classify import OutcomeThresholds
from testbed.scenario.actions import ActionError, Event, default_actions, schedule
from testbed.scenario.clock import on_lab_clock
from testbed.scenario.model import ScenarioFile, StepSpec
from testbed.topology.convert import Converter
from testbed.topology.model import Topology
from testbed.topology.source import SourceDict, SourceList, YamlSourceError, load_yaml

# The project's playbooks (patch-tuesday.yml, ...), for `playbook:` given by name.
PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "playbooks"


def find_playbook(name: str, scenario: Path) -> Path | None:
    """`playbook:` as written -> an existing file: absolute, else relative to the scenario
    file, else in the project's playbooks/."""
    given = Path(name)
    candidates = [given] if given.is_absolute() else [scenario.parent / given,
                                                      PLAYBOOKS_DIR / given]
    return next((c.resolve() for c in candidates if c.is_file()), None)


def known_playbooks() -> list[str]:
    return sorted(p.name for p in PLAYBOOKS_DIR.glob("*.yml") if p.name != "lab.yml")


@dataclass(frozen=True)
class Scenario:
    name: str
    source: str
    seed: int
    duration: float | None
    steps: list[StepSpec]
    events: list[Event]
    captures: list[Declared] = field(default_factory=list)  # `captures:`
    step_lines: tuple[int | None, ...] = ()  # where each step was written
    expectations: list[Expectation] = field(default_factory=list)  # `expect:`
    outcome: OutcomeThresholds = field(default_factory=OutcomeThresholds)  # `outcome:`

    def where(self, step: int) -> str:
        """file:line of a step, for messages."""
        line = self.step_lines[step] if step < len(self.step_lines) else None
        return f"{self.source}:{line}" if line else self.source


def scenario_params(path: str | Path) -> dict[str, str]:
    """The topology parameters a scenario sets (`params:`), as --set strings; read before
    the topology is loaded, since the scenario's steps are checked against it."""
    try:
        raw = load_yaml(Path(path))
    except YamlSourceError as exc:
        raise ScenarioError(exc.problems) from None
    params = raw.get("params") if isinstance(raw, SourceDict) else None
    if params is None:
        return {}
    if not isinstance(params, SourceDict):
        raise ScenarioError([Problem("params: must be a mapping of name: value", str(path),
                                     raw.line_of("params"), "params")])
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in params.items()}


def load_scenario(path: str | Path, topology: Topology, seed: int | None = None) -> Scenario:
    path = Path(path)
    try:
        raw = load_yaml(path)
    except YamlSourceError as exc:
        raise ScenarioError(exc.problems) from None
    source = str(path)
    if not isinstance(raw, SourceDict):
        raise ScenarioError([Problem("a scenario file must be a mapping with steps:",
                                     source, 1)])
    convert = Converter()
    spec = convert.to_dataclass(ScenarioFile, raw, "")
    if convert.problems or spec is None:
        raise ScenarioError(convert.problems)
    spec = on_lab_clock(spec, topology.overlay.time_scale if topology.overlay else 1.0)
    steps = list(spec.steps or [])
    raw_steps = raw.get("steps")
    problems: list[Problem] = []
    lines = [raw_steps.line_of(i) if isinstance(raw_steps, SourceList) else None
             for i in range(len(steps))]
    for i, step in enumerate(steps):
        line = lines[i]
        if step.action == "run_playbook" and step.playbook:
            found = find_playbook(step.playbook, path)
            if found is None:
                problems.append(Problem(f"no playbook {step.playbook!r} next to the scenario "
                                        f"or in {PLAYBOOKS_DIR} (found there: "
                                        f"{', '.join(known_playbooks()) or 'none'})", source,
                                        line, f"steps[{i}].playbook"))
                continue
            steps[i] = step = dataclasses.replace(step, playbook=str(found))
        if step.trace is not None and not Path(step.trace).is_absolute():
            steps[i] = step = dataclasses.replace(step, trace=str(path.parent / step.trace))
        if step.action not in default_actions().actions:
            problems.append(Problem(f"unknown action {step.action!r}; known: "
                                    f"{', '.join(sorted(default_actions().actions))}", source, line,
                                    f"steps[{i}].action"))
        elif step.at is None and step.after is None and i == 0:
            problems.append(Problem("the first step needs at: (when it starts)", source,
                                    line, f"steps[{i}]"))
        else:
            try:
                schedule([step], topology, 0)
            except ActionError as exc:
                problems.append(Problem(str(exc), source, line, f"steps[{i}]"))
    if not steps:
        problems.append(Problem("steps: the timeline is empty", source, raw.line_of("steps"),
                                "steps"))
    captures = _captures(spec, raw, topology, source, problems)
    expectations: list[Expectation] = []
    if spec.expect is not None:
        expectations, more = expectations_in(raw, source)
        problems.extend(more)
    if problems:
        raise ScenarioError(problems)
    chosen = seed if seed is not None else (spec.seed if spec.seed is not None else 1)
    return Scenario(name=spec.name or path.stem, source=source, seed=chosen,
                    duration=spec.duration, steps=steps,
                    events=schedule(steps, topology, chosen), captures=captures,
                    expectations=expectations, step_lines=tuple(lines),
                    outcome=spec.outcome or OutcomeThresholds())


def _captures(spec: ScenarioFile, raw: SourceDict, topology: Topology, source: str,
              problems: list[Problem]) -> list[Declared]:
    """`captures:` with where each was written; nodes are checked here, interfaces
    against the plan (testbed.capture.declared.place)."""
    raw_list = raw.get("captures")
    declared = []
    for i, capture in enumerate(spec.captures or []):
        line = raw_list.line_of(i) if isinstance(raw_list, SourceList) else None
        path = f"captures[{i}]"
        if not capture.node:
            problems.append(Problem("node: is required (the node to capture on)", source,
                                    line, path))
            continue
        if capture.node not in topology.nodes:
            close = difflib.get_close_matches(capture.node, list(topology.nodes), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(Problem(f"{capture.node!r} is not a node of the topology"
                                    f"{hint}", source, line, f"{path}.node"))
            continue
        declared.append(Declared(capture, source, line, path))
    return declared
