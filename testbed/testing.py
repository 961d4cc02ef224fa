"""What the pytest plugin's fixtures hand to a test: a running lab, captures on it, and a
finished run's results with query helpers. No pytest import here: the plugin
(testbed/pytest_plugin.py) does the fixture plumbing, these classes do the work.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.capture.declared import CaptureSet, Declared, place, place_one
from testbed.capture.tcpdump import Capture, CaptureSpec, start_capture, update_index
from testbed.errors import CaptureError, Problem
from testbed.lab.lab import Lab


@dataclass
class CaptureHandle:
    """A tcpdump started by the `capture` fixture. `pcap` is known at once; `packets`,
    `dropped` and `entry` (the captures/index.json entry) once stop() returned. Also a
    context manager: `with capture("b", "icmp") as c: ...` stops on leaving."""

    capture: Capture
    index: Path

    @property
    def pcap(self) -> Path:
        return self.capture.path

    @property
    def name(self) -> str:
        return self.capture.name

    def stop(self) -> dict[str, Any]:
        fresh = not self.capture.entry
        try:
            return self.capture.stop(relative_to=self.index.parent.parent)
        finally:  # indexed even when tcpdump ended badly (the entry says so)
            if fresh and self.capture.entry:
                update_index(self.index, self.capture.entry)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a cap (max_packets, max_seconds) to end it; True if it ended."""
        return self.capture.wait(timeout)

    def _stopped(self, key: str) -> Any:
        if not self.capture.entry:
            raise CaptureError(f"capture {self.name} is still running: call stop() (or "
                               f"leave its `with` block) before reading {key}")
        return self.capture.entry[key]

    @property
    def packets(self) -> int:
        return int(self._stopped("packets") or 0)

    @property
    def dropped(self) -> int:
        return int(self._stopped("dropped") or 0)

    @property
    def entry(self) -> dict[str, Any]:
        self._stopped("entry")
        return self.capture.entry

    def __enter__(self) -> CaptureHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class CheckResult:
    """Verdicts of expectations checked over a lab's captures (or a run)."""

    verdicts: list[Any]  # testbed.capture.verdict.Verdict
    report: str

    @property
    def passed(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def assert_passed(self) -> None:
        assert self.passed, "expectations did not pass:\n" + self.report


class LabFixture(Lab):
    """A lab built for one test: the Lab (nodes, exec, reboot, link) plus captures. Its
    artefacts (pcaps, index, verdicts) go to `artifacts`. Captures declared in the
    topology (`capture:` on a link) run from bring-up to teardown."""

    def __init__(self, lab: Lab, artifacts: Path) -> None:
        super().__init__(lab.state, lab.backend, lab.topology, lab.plan)
        self.artifacts = artifacts
        self.started_unix = 0.0
        self.declared: CaptureSet | None = None
        self.captures: list[CaptureHandle] = []

    @property
    def index(self) -> Path:
        return self.artifacts / "captures" / "index.json"

    def ns(self, node: str) -> str:
        return self[node].namespace

    def start_declared(self) -> None:
        placed, problems = place(self.topology, self.plan, [])
        if problems:
            raise CaptureError("; ".join(map(str, problems)))
        self.declared = CaptureSet(placed, self.artifacts / "captures")
        self.started_unix = time.time()
        self.declared.start()

    def capture(self, target: str, filter: str = "", *, snaplen: int = 256,
                max_packets: int | None = None, max_seconds: float | None = None,
                name: str | None = None) -> CaptureHandle:
        """tcpdump on NODE[:IFACE] (default its uplink) until stop()."""
        node, _, interface = target.partition(":")
        spec = CaptureSpec(node=node, interface=interface or None, filter=filter,
                           snaplen=snaplen, max_packets=max_packets,
                           max_seconds=max_seconds, name=name)
        placed = place_one(Declared(spec, "capture fixture", None, target), self.plan)
        if isinstance(placed, Problem):
            raise CaptureError(f"capture {target!r}: {placed.message}")
        handle = CaptureHandle(start_capture(placed.spec, placed.namespace, placed.interface,
                                             self.artifacts / "captures" /
                                             f"{placed.name}.pcap"), self.index)
        self.captures.append(handle)
        return handle

    def stop_captures(self) -> list[str]:
        """Stop every capture of the lab (idempotent); the problems met, if any."""
        errors = []
        for handle in self.captures:
            try:
                handle.stop()
            except CaptureError as exc:
                errors.append(str(exc))
        if self.declared is not None:
            errors += self.declared.stop(relative_to=self.artifacts)
        return errors

    def check(self, expect: str | Path) -> CheckResult:
        """Stop the captures and check expectations (a file, or YAML text) over them, as
        `testbed check` would over a run; windows count from the lab's bring-up."""
        from testbed.capture.evaluate import check_run
        from testbed.capture.expectations import load_expectations
        from testbed.capture.verdict import report, write_verdicts

        self.stop_captures()
        if isinstance(expect, Path) or ("\n" not in expect and Path(expect).is_file()):
            source = Path(expect)
        else:
            source = self.artifacts / "expect.yaml"
            source.write_text(expect)
        (self.artifacts / "lab.json").write_text(json.dumps(self.state.summary()))
        (self.artifacts / "run.json").write_text(json.dumps(
            {"run_id": self.name, "started_unix": self.started_unix,
             "duration_s": round(time.time() - self.started_unix, 1),
             "prometheus_url": None}))
        verdicts = check_run(self.artifacts, load_expectations(source))
        write_verdicts(self.artifacts, verdicts, f"lab {self.name}")
        return CheckResult(verdicts, report(verdicts))


@dataclass
class ScenarioResults:
    """A finished `testbed run` (results/<run-id>/), with query helpers."""

    dir: Path
    complete: bool = True

    def _json(self, name: str, default: Any) -> Any:
        path = self.dir / name
        return json.loads(path.read_text()) if path.is_file() else default

    @property
    def info(self) -> dict[str, Any]:
        """run.json: what ran, seed, t=0, complete or not."""
        return dict(self._json("run.json", {}))

    @property
    def summary(self) -> dict[str, Any]:
        """summary.json: lowest online fraction, time to 95 %, peak logins/s, ..."""
        return dict(self._json("summary.json", {}))

    @property
    def verdicts(self) -> list[dict[str, Any]]:
        """verdicts.json: one dict per expectation (name, where, status, observed, ...)."""
        return list(self._json("verdicts.json", []))

    @property
    def report(self) -> str:
        path = self.dir / "verdicts.txt"
        return path.read_text() if path.is_file() else "(the scenario has no expect:)\n"

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [v for v in self.verdicts if v["status"] != "pass"]

    @property
    def passed(self) -> bool:
        """The run completed and every expectation passed."""
        return self.complete and not self.failed

    def verdict(self, name: str) -> dict[str, Any]:
        for verdict in self.verdicts:
            if verdict["name"] == name:
                return verdict
        names = ", ".join(v["name"] for v in self.verdicts) or "none"
        raise KeyError(f"no expectation named {name!r} (expectations: {names})")

    def series(self, name: str) -> list[tuple[float, float]]:
        """One series of series.csv as (t seconds since the start, value)."""
        path = self.dir / "series.csv"
        if not path.is_file():
            return []
        with open(path, newline="") as rows:
            return [(float(r["t"]), float(r["value"])) for r in csv.DictReader(rows)
                    if r["series"] == name]

    @property
    def captures(self) -> list[dict[str, Any]]:
        """captures/index.json entries: name, node, interface, filter, packets, dropped."""
        return list(self._json("captures/index.json", []))

    def pcap(self, name: str) -> Path:
        for entry in self.captures:
            if entry["name"] == name:
                return self.dir / entry["file"]
        raise KeyError(f"no capture named {name!r} in {self.dir / 'captures/index.json'}")

    def assert_passed(self) -> None:
        """AssertionError with the verdict report when the run did not pass."""
        assert self.complete, f"the run did not complete: {self.info.get('error')}"
        assert not self.failed, "expectations did not pass:\n" + self.report
