"""Link impairments as tc/nft text: pure builders, applied by a backend.

- rate: HTB root with one class (what Mininet's TCLink does), queue as a pfifo child;
- delay/jitter (and loss with them): a netem child, only on kernels that have sch_netem;
- loss without netem: an nftables netdev ingress rule with a random drop at the *receiving*
  end of the link, so loss works on kernels without sch_netem and, as on a real line, the
  sender never learns of it.
"""

from __future__ import annotations

from testbed.errors import MissingKernelFeature
from testbed.plan.model import Shaping

LOSS_SCALE = 1_000_000  # numgen resolution: loss is honoured to 1e-6


def burst_bytes(rate: int) -> int:
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
        burst = burst_bytes(shaping.rate)
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
    """An nft netdev table dropping packets that *arrive* on each device with its probability.

    The backend passes the receiving end of each lossy direction (the veth peer of the end
    whose egress has the loss). Dropping on arrival is what a lossy wire does: the packet
    was sent (and used the sender's rate) and the sending program sees no error. A drop in
    the sender's own hooks (netdev egress, IP output) makes sendto()/sendmsg() fail with
    EPERM: programs see an error, and TCP keeps the segment and sends it again, never
    seeing the loss.
    """
    if not devices:
        return ""
    chains = []
    for i, (device, loss) in enumerate(sorted(devices.items())):
        threshold = int(round(loss * LOSS_SCALE))
        chains.append(
            f"  chain loss{i} {{\n"
            f'    type filter hook ingress device "{device}" priority -300; policy accept;\n'
            f"    numgen random mod {LOSS_SCALE} < {threshold} drop\n  }}\n"
        )
    return "table netdev testbed_loss {\n" + "".join(chains) + "}\n"


def loss_without_netem(shaping: Shaping, have_netem: bool) -> float | None:
    """The loss this end must get from nft (None when netem handles it or no loss)."""
    if shaping.loss is None or have_netem:
        return None
    return shaping.loss
