"""Verdicts of `testbed check`: one per expectation, as text for people and JUnit XML
for CI systems.

Four outcomes, and only one of them is good: `pass`. A `vacuous` result (nothing was
there to count, so the bound held trivially) and an `error` (the expectation could not be
evaluated: bad selector, missing or truncated pcap, no Prometheus) fail the check, so a
mistake in an expectation can never turn into a silent pass.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Status = Literal["pass", "fail", "vacuous", "error"]


@dataclass
class Verdict:
    name: str
    check: str
    where: str  # file:line of the expectation
    status: Status
    observed: float | None = None
    unit: str = ""
    bound: str = ""  # e.g. ">= 50 packets/s"
    detail: str = ""  # why, in a sentence: the first offending packet, the busiest second
    sources: list[str] = field(default_factory=list)  # pcaps (run-relative) or a URL
    window: str = ""  # e.g. t=10s..60s
    notes: list[str] = field(default_factory=list)  # caveats: drops, capture sizes

    @property
    def ok(self) -> bool:
        return self.status == "pass"

    def observed_text(self) -> str:
        if self.observed is None:
            return ""
        return f"observed {format_value(self.observed, self.unit)}, expected {self.bound}"

    def lines(self) -> list[str]:
        """The body of the verdict, as shown under its title."""
        out = []
        where = ", ".join(x for x in (" ".join(self.sources), self.window) if x)
        head = "; ".join(x for x in (self.observed_text(), where) if x)
        if head:
            out.append(head)
        if self.detail:
            out.append(self.detail)
        out += [f"note: {n}" for n in self.notes]
        return out


def format_value(value: float, unit: str) -> str:
    """Numbers as a person reads them: 1.23 Mbit/s, 12 packets, 3.5 packets/s."""
    if unit == "bits/s":
        for scale, name in ((1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")):
            if abs(value) >= scale:
                return f"{value / scale:.4g} {name}"
        return f"{value:.4g} bit/s"
    if unit == "bytes" and abs(value) >= 1024:
        for scale, name in ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB")):
            if abs(value) >= scale:
                return f"{value / scale:.4g} {name} ({value:.0f} bytes)"
    number = f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"
    return f"{number} {unit}".strip()


def format_bound(low: float | None, high: float | None, unit: str = "") -> str:
    if low is not None and high is not None:
        if low == high:
            return f"exactly {format_value(low, unit)}"
        return f"between {format_value(low, unit)} and {format_value(high, unit)}"
    if low is not None:
        return f">= {format_value(low, unit)}"
    return f"<= {format_value(high, unit)}" if high is not None else "any value"


def summary(verdicts: Sequence[Verdict]) -> str:
    counts: Counter[str] = Counter(v.status for v in verdicts)
    parts = [f"{counts[s]} {label}" for s, label in
             (("pass", "passed"), ("fail", "failed"), ("vacuous", "vacuous"),
              ("error", "errors" if counts["error"] != 1 else "error")) if counts[s]]
    return f"{', '.join(parts) or 'nothing checked'} (of {len(verdicts)} expectations)"


def report(verdicts: Sequence[Verdict]) -> str:
    """The human-readable report: a status word, the name and file:line, then why."""
    out = []
    for v in verdicts:
        out.append(f"{v.status.upper():8} {v.name}  ({v.where})")
        out += [f"         {line}" for line in v.lines()]
    out.append(summary(verdicts))
    return "\n".join(out) + "\n"


def junit_xml(verdicts: Sequence[Verdict], suite: str = "testbed check") -> ET.ElementTree:
    """JUnit XML as CI systems read it: vacuous counts as a failure, error as an error."""
    counts: Counter[str] = Counter(v.status for v in verdicts)
    failures = counts["fail"] + counts["vacuous"]
    root = ET.Element("testsuites", name="testbed check", tests=str(len(verdicts)),
                      failures=str(failures), errors=str(counts["error"]))
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(len(verdicts)),
                         failures=str(failures), errors=str(counts["error"]), skipped="0")
    for v in verdicts:
        file, _, line = v.where.rpartition(":")
        attrs = {"classname": f"{v.check}", "name": v.name, "file": file or v.where}
        if line.isdigit():
            attrs["line"] = line
        case = ET.SubElement(node, "testcase", attrs)
        text = "\n".join([f"{v.where}: {v.name}", *v.lines()])
        if v.status == "pass":
            ET.SubElement(case, "system-out").text = text
            continue
        message = v.detail or v.observed_text() or v.status
        tag = "error" if v.status == "error" else "failure"
        problem = ET.SubElement(case, tag, message=f"{v.status}: {message}", type=v.status)
        problem.text = text
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(verdicts: Sequence[Verdict], path: str | Path, suite: str = "testbed check"
                ) -> None:
    junit_xml(verdicts, suite).write(path, encoding="utf-8", xml_declaration=True)


def write_verdicts(directory: str | Path, verdicts: Sequence[Verdict], suite: str
                   ) -> list[Path]:
    """A run's verdict files: verdicts.txt (the report), verdicts.json (one object per
    expectation, for tools and the pytest plugin) and junit.xml."""
    directory = Path(directory)
    text = directory / "verdicts.txt"
    text.write_text(report(verdicts))
    data = directory / "verdicts.json"
    data.write_text(json.dumps([asdict(v) for v in verdicts], indent=1))
    junit = directory / "junit.xml"
    write_junit(verdicts, junit, suite)
    return [text, data, junit]
