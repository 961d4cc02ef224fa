"""Login server saturation: policy 2007 hammers it far beyond its capacity; `fixed`
(backoff, jitter, retry-after honoured) keeps arrivals near it. Goodput is the capacity
in both cases: the difference is wasted work, which is what sustains an outage."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.root

RATE = 2.0  # logins per lab second
SCALE = 0.1
WINDOW = 12.0

TOPOLOGY = """
overlay:
  policy: "{policy}"
  time_scale: {scale}
  login: {{rate: {rate}, queue: 4, when_full: busy, retry_after: 10s}}
  supernode: {{min_uptime: 0s, max_children: 50}}
nodes:
  core: {{kind: router}}
  login: {{kind: login, uplink: {{to: core}}}}
  sn{{n}}: {{count: 4, kind: peer, labels: {{sn_capable: true}}, uplink: {{to: core}}}}
  pc{{n:02}}: {{count: 30, kind: peer, uplink: {{to: core}}}}
"""


def _requests(lab) -> dict[str, float]:
    text = lab.mgmt_get("login", "/metrics")
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("login_server_requests_total{"):
            out[line.split('result="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
    return out


def _run(make_lab, policy: str) -> tuple[float, float]:
    # the topology's rate is per real second: RATE per lab second at SCALE
    lab = make_lab(TOPOLOGY.format(policy=policy, scale=SCALE, rate=RATE * SCALE))
    began = time.monotonic()
    time.sleep(WINDOW)
    counts = _requests(lab)
    elapsed = time.monotonic() - began
    lab.down()
    return sum(counts.values()) / elapsed, counts.get("ok", 0) / elapsed


def test_2007_policy_overwhelms_the_login_server_and_fixed_stays_near_capacity(
        make_lab) -> None:
    arrivals_2007, goodput_2007 = _run(make_lab, "2007")
    arrivals_fixed, goodput_fixed = _run(make_lab, "fixed")
    print(f"arrivals/s 2007={arrivals_2007:.1f} fixed={arrivals_fixed:.1f} "
          f"(capacity {RATE}/s); logins/s 2007={goodput_2007:.1f} fixed={goodput_fixed:.1f}")
    assert arrivals_2007 > 10 * RATE
    assert arrivals_fixed < 4 * RATE
    assert arrivals_2007 > 5 * arrivals_fixed
    for goodput in (goodput_2007, goodput_fixed):  # the capacity is the bottleneck
        assert 0.6 * RATE < goodput < 1.6 * RATE
