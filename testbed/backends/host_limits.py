"""Limits of the machine (not of any one lab) that a big lab can run into, checked before
it is built so that the user reads the cause instead of peers that silently never log in.

The kernel's IPv4 neighbour (ARP) table is one table for every network namespace:
`net.ipv4.neigh.default.gc_thresh3` caps the entries of all of them together (1024 on a
stock kernel). A lab needs about NEIGHBOURS_PER_NAMESPACE entries per namespace (its
gateway, the management hub, the hub's entry for it); past the cap the kernel logs
"neighbor table overflow" and drops packets. playbooks/lab.yml raises the cap.
"""

from __future__ import annotations

from pathlib import Path

GC_THRESH3 = Path("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
NEIGHBOURS_PER_NAMESPACE = 3


def neighbour_table_note(namespaces: int, limit_file: Path = GC_THRESH3) -> str | None:
    """A warning when a lab of `namespaces` namespaces may overflow the ARP table."""
    try:
        limit = int(limit_file.read_text())
    except (OSError, ValueError):
        return None
    need = NEIGHBOURS_PER_NAMESPACE * namespaces
    if need <= limit:
        return None
    return (f"this lab's {namespaces} namespaces may need ~{need} ARP entries, more than "
            f"the kernel allows for all namespaces together (net.ipv4.neigh.default."
            f"gc_thresh3 = {limit}): expect 'neighbor table overflow' in dmesg and peers "
            f"that cannot connect. scripts/setup.sh raises it (playbooks/lab.yml), or: "
            f"sudo sysctl -w net.ipv4.neigh.default.gc_thresh3={max(4 * need, 32768)}")
