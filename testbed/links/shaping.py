"""Link impairments as tc/nft text: pure builders, applied by a backend.

- rate: HTB root with one class (what Mininet's TCLink does), queue as a pfifo child;
- delay/jitter (and loss with them): a netem child, only on kernels that have sch_netem;
- loss without netem: nftables rules with a random drop where packets leave through the
  device (IP output/forward, bridge forward), so loss works on kernels without sch_netem.
"""

from __future__ import annotations

from testbed.errors import MissingKernelFeature
from testbed.plan.model import Shaping

LOSS_SCALE = 1_000_000  # numgen resolution: loss is honoured to 1e-6


def _burst(rate: int) -> int:
    """Bytes the class may send at once: ~4 ms of traffic, never below two full frames."""
    return max(2 * 1514, rate // 8 // 250)


def tc_lines(device: str, shaping: Shaping, have_netem: bool) -> list[str]:
    """`tc -batch` lines that install `shaping` as the egress qdiscs of `device`."""
    needs_netem = shaping.delay is not None or shaping.jitter is not None
    if needs_netem and not have_netem:
        raise MissingKernelFeature(
            "this topology asks for link delay/jitter, which needs the sch_netem kernel "
            "module, and this kernel does not have it (modprobe sch_netem fails). Remove "
            "delay:/jitter: from the links, or run in the lab VM (vagrant up), whose "
            "kernel has netem. Loss works without netem."
        )
    lines: list[str] = []
    parent = "root"
    if shaping.rate is not None:
        burst = _burst(shaping.rate)
        lines += [
            f"qdisc add dev {device} root handle 1: htb default 1",
            f"class add dev {device} parent 1: classid 1:1 htb rate {shaping.rate}bit "
            f"ceil {shaping.rate}bit burst {burst} cburst {burst} quantum 1514",
        ]
        parent = "parent 1:1"
    if needs_netem or (have_netem and shaping.loss is not None):
        netem = ["netem"]
        if shaping.delay is not None:
            netem.append(f"delay {shaping.delay * 1000:.3f}ms")
            if shaping.jitter is not None:
                netem.append(f"{shaping.jitter * 1000:.3f}ms distribution normal")
        if shaping.loss is not None:
            netem.append(f"loss {shaping.loss * 100:.4f}%")
        if shaping.queue is not None:
            netem.append(f"limit {shaping.queue}")
        lines.append(f"qdisc add dev {device} {parent} handle 10: {' '.join(netem)}")
    elif shaping.queue is not None and shaping.rate is not None:
        lines.append(f"qdisc add dev {device} {parent} handle 10: pfifo limit {shaping.queue}")
    return lines


def nft_loss_table(devices: dict[str, float]) -> str:
    """nft tables dropping packets that leave each device with its probability.

    Drops happen where a packet is committed to a device: the IP output and forward
    hooks (hosts, routers, NATs) and the bridge forward hook (switch ports). The netdev
    egress hook is not used: packets dropped there were measured to be sent again,
    giving much less loss than configured.
    """
    if not devices:
        return ""
    rules = "".join(
        f'    oifname "{device}" numgen random mod {LOSS_SCALE} < '
        f"{int(round(loss * LOSS_SCALE))} drop\n"
        for device, loss in sorted(devices.items()))
    chain = "  chain {name} {{\n    type filter hook {hook} priority -300; policy accept;\n" \
            "{rules}  }}\n"
    ip_table = ("table ip testbed_loss {\n"
                + chain.format(name="output", hook="output", rules=rules)
                + chain.format(name="forward", hook="forward", rules=rules) + "}\n")
    bridge_table = ("table bridge testbed_loss {\n"
                    + chain.format(name="forward", hook="forward", rules=rules) + "}\n")
    return ip_table + bridge_table


def loss_without_netem(shaping: Shaping, have_netem: bool) -> float | None:
    """The loss this end must get from nft (None when netem handles it or no loss)."""
    if shaping.loss is None or have_netem:
        return None
    return shaping.loss
