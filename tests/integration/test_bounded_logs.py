"""No node can fill the disk with its log: a service that writes its log without pause
keeps a log of about the cap (plus one rotated copy) for as long as it runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

CAP = 256 * 1024
TOPOLOGY = """
nodes:
  core: {kind: router}
  chatty:
    kind: host
    uplink: {to: core}
    command: sh -c 'while :; do seq 1 2000; sleep 0.01; done'
"""


def test_a_chatty_service_log_stays_bounded(make_lab, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("TESTBED_LOG_MAX_BYTES", str(CAP))
    lab = make_lab(TOPOLOGY)
    services = {r.service: r for r in lab.state.read().processes}
    assert "logguard" in services, services
    log = Path(next(r.log for r in services.values() if r.node == "chatty"))
    began = time.monotonic()
    sizes = []
    while time.monotonic() - began < 6:
        sizes.append(log.stat().st_size)
        time.sleep(0.25)
    rotated = log.with_name(log.name + ".1")
    assert rotated.exists(), sizes  # it wrote more than the cap...
    slack = 2 * 2**20  # what the service can write within the guard's 1 s interval
    assert max(sizes) <= CAP + slack, sizes  # ...and its log stayed about the cap
    assert rotated.stat().st_size <= CAP + slack
    assert log.read_bytes()[:1] != b"\0"  # appending resumed at the start, no hole
    guard_log = Path(services["logguard"].log).read_text()
    assert f"rotated {log}" in guard_log
