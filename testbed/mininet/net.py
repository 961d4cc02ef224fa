"""A running lab as the `net` object Mininet's CLI drives (mininet.cli.CLI, unchanged but
for completion of node names).

What the CLI asks of its net: a mapping of names to nodes (`nodes`, `h1 ping h2`, `py`),
`hosts`/`switches`/`links` (`net`, `dump`, `links`, `intfs`), and pingAll, pingPair, iperf,
configLinkStatus. Those run on the lab: pings and iperf3 in the nodes' namespaces
(testbed/lab/probes.py), `link a b down` through `Lab.link` (journaled). A lab of hundreds
of nodes pings a sample by default: `pingall group=home-pc`, `pingall sample=20`,
`pingall h1 h2 h3`, `pingall all`.
"""

from __future__ import annotations

import cmd
import re
import sys
from collections.abc import Iterator
from typing import Any

from mininet.cli import CLI
from mininet.log import error, output, warn
from mininet.net import Mininet

from testbed.errors import LabError
from testbed.lab.lab import Lab
from testbed.lab.probes import PingResult, iperf, ping_pairs, private_elsewhere, rate_text
from testbed.mininet.nodes import LabIntf, LabLink, LabShellNode

SAMPLE = 8  # hosts pinged by a bare `pingall` on a lab of more than ALL_UP_TO hosts
ALL_UP_TO = 12
END_HOSTS = ("host", "peer", "login")


class LabNet:
    """Mininet's `net`, over a lab that is up. Creates nothing but node shells on demand;
    stop() ends those shells and leaves the lab running."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        plan = lab.plan
        self.nameToNode: dict[str, LabShellNode] = {}  # noqa: N815 (Mininet's name)
        self.controllers: list[Any] = []
        self.terms: list[Any] = []
        ordered = sorted(plan.nodes.values(),
                         key=lambda n: (n.kind not in END_HOSTS, n.kind == "switch"))
        for planned in ordered:
            namespace = planned.namespace or plan.fabric_namespace
            node = LabShellNode(planned.name, namespace, planned.kind)
            self.nameToNode[planned.name] = node
            for port, iface in enumerate(planned.interfaces):
                LabIntf(iface.name, node, port, iface.address)
        self.hosts = [n for n in self.nameToNode.values() if n.kind != "switch"]
        self.switches = [n for n in self.nameToNode.values() if n.kind == "switch"]
        self.links = self._links()

    def _links(self) -> list[LabLink]:
        plan = self.lab.plan
        of_bridge = {bridge: name for name, bridge in plan.switch_bridges().items()}
        of_namespace = {n.namespace: n.name for n in plan.nodes.values() if n.namespace}
        links = []
        for veth in plan.veths:
            ends = []
            for end in (veth.a, veth.b):
                if end.namespace == plan.fabric_namespace and end.bridge in of_bridge:
                    switch = self.nameToNode[of_bridge[end.bridge]]
                    ends.append(LabIntf(end.name, switch, len(switch.intfs) + 1, None))
                elif end.namespace in of_namespace:
                    node = self.nameToNode[of_namespace[end.namespace]]
                    intf = node.nameToIntf.get(end.name)
                    if intf is not None:
                        ends.append(intf)
            if len(ends) == 2:  # management veths have one end in the mgmt namespace
                links.append(LabLink(ends[0], ends[1]))
        return links

    # --- the mapping the CLI uses -------------------------------------------------------
    def __getitem__(self, name: str) -> LabShellNode:
        return self.nameToNode[name]

    def __contains__(self, name: object) -> bool:
        return name in self.nameToNode

    def __iter__(self) -> Iterator[str]:
        return iter(self.nameToNode)

    def __len__(self) -> int:
        return len(self.nameToNode)

    def keys(self) -> list[str]:
        return list(self.nameToNode)

    def values(self) -> list[LabShellNode]:
        return list(self.nameToNode.values())

    def items(self) -> list[tuple[str, LabShellNode]]:
        return list(self.nameToNode.items())

    def get(self, *names: str) -> Any:
        nodes = [self.nameToNode[n] for n in names]
        return nodes[0] if len(nodes) == 1 else nodes

    # --- selections -----------------------------------------------------------------------
    def end_hosts(self) -> list[LabShellNode]:
        return [n for n in self.hosts if n.kind in END_HOSTS]

    def select(self, words: list[str], verb: str = "pingall"
               ) -> tuple[list[LabShellNode], str | None, str]:
        """`pingall` arguments: [TIMEOUT] [all] [group=G] [kind=K] [sample=N] [NODE...].
        Returns the hosts, the timeout and a note on what was chosen."""
        timeout, names, filters, sample, everything = None, [], {}, None, False
        for word in words:
            key, sep, value = word.partition("=")
            if re.fullmatch(r"\d+(\.\d+)?", word):
                timeout = word
            elif word == "all":
                everything = True
            elif sep and key in ("group", "kind", "timeout"):
                if key == "timeout":
                    timeout = value
                else:
                    filters[key] = value
            elif sep and key == "sample" and value.isdigit():
                sample = int(value)
            elif word in self.nameToNode:
                names.append(word)
            else:
                raise LabError(f"{verb}: {word!r} is not a node, a timeout or one of all, "
                               "group=NAME, kind=KIND, sample=N")
        if names:
            return [self.nameToNode[n] for n in names], timeout, ""
        chosen = self.end_hosts() or self.hosts
        if filters:
            planned = self.lab.plan.nodes
            chosen = [n for n in self.hosts
                      if all((planned[n.name].node.group if k == "group" else n.kind) == v
                             for k, v in filters.items())]
            if not chosen:
                raise LabError(f"{verb}: no node has {filters}")
        limit = sample if sample is not None else (None if everything else SAMPLE)
        if limit is None or len(chosen) <= max(limit, ALL_UP_TO if sample is None else 0):
            return chosen, timeout, ""
        picked = [chosen[i * len(chosen) // limit] for i in range(limit)]
        return picked, timeout, (f"*** Ping: a sample of {limit} of {len(chosen)} hosts "
                                 "(pingall all | sample=N | group=NAME | kind=KIND | NODE...)\n")

    # --- what the CLI calls ---------------------------------------------------------------
    def _ping(self, hosts: list[LabShellNode], timeout: str | None) -> list[PingResult]:
        nodes = [self.lab[h.name] for h in hosts]
        return ping_pairs(nodes, float(timeout) if timeout else 1.0, plan=self.lab.plan)

    def ping(self, hosts: list[LabShellNode] | None = None, timeout: str | None = None,
             note: str = "") -> float:
        """Mininet's net.ping: output and figure in its words."""
        hosts = hosts or self.select([])[0]
        output("*** Ping: testing ping reachability\n" + note)
        found = self._ping(hosts, timeout)
        results = iter(found)
        lost = sent = 0
        for node in hosts:
            output(f"{node.name} -> ")
            for dest in hosts:
                if dest is node:
                    continue
                result = next(results)
                sent += 1
                lost += not result.received
                output(f"{dest.name} " if result.received else "X ")
            output("\n")
        unsent = [r for r in found if not r.sent]
        if unsent:
            output(f"*** {len(unsent)} X without a ping: the address is private to another "
                   f"NAT's realm (e.g. {unsent[0].output})\n")
        loss = 100.0 * lost / sent if sent else 0.0
        output(f"*** Results: {loss:.0f}% dropped ({sent - lost}/{sent} received)\n")
        return loss

    def pingAll(self, line: str | None = None) -> float:  # noqa: N802
        try:
            hosts, timeout, note = self.select((line or "").split())
        except LabError as exc:
            error(f"*** {exc}\n")
            return 100.0
        return self.ping(hosts, timeout, note)

    def pair(self, line: str | None) -> tuple[list[LabShellNode], str | None]:
        """`pingpair` arguments: two NODEs, or a selection as pingall takes it (its first
        two hosts); none: the first two end hosts, as Mininet's first two hosts."""
        words = (line or "").split()
        if not words:
            return self.end_hosts()[:2], None
        named = [w for w in words if w in self.nameToNode]
        if named and len(named) != 2:
            raise LabError(f"pingpair: two nodes, not {len(named)} (pingall takes more)")
        hosts, timeout, _ = self.select(words, "pingpair")
        if len(hosts) < 2:
            raise LabError(f"pingpair: {' '.join(words)} selects {len(hosts)} host(s); "
                           "it needs two")
        return hosts[:2], timeout

    def pingPair(self, line: str | None = None) -> float:  # noqa: N802
        try:
            hosts, timeout = self.pair(line)
        except LabError as exc:
            error(f"*** {exc}\n")
            return 100.0
        return self.ping(hosts, timeout)

    def pingFull(self, hosts: list[LabShellNode] | None = None) -> list[Any]:  # noqa: N802
        hosts = hosts or self.select([])[0]
        output("*** Ping: testing ping reachability\n")
        results = self._ping(hosts, None)
        found = [(r, Mininet._parsePingFull(r.output)) for r in results]
        for r, parsed in found:
            output(f" {r.source}->{r.destination}: {parsed[0]}/{parsed[1]}, rtt "
                   "min/avg/max/mdev %0.3f/%0.3f/%0.3f/%0.3f ms\n" % parsed[2:])
        return found

    def pingAllFull(self) -> list[Any]:  # noqa: N802
        return self.pingFull()

    def pingPairFull(self, line: str | None = None) -> list[Any]:  # noqa: N802
        try:
            hosts, _ = self.pair(line)
        except LabError as exc:
            error(f"*** {exc}\n")
            return []
        return self.pingFull(hosts)

    def iperf(self, hosts: list[LabShellNode] | None = None, l4Type: str = "TCP",  # noqa: N803
              udpBw: str = "10M", fmt: str | None = None, seconds: int = 5,  # noqa: N803
              port: int = 5201) -> list[str]:
        """Mininet's net.iperf with iperf3: [server rate, client rate] as it prints them."""
        if not hosts:
            ends = self.end_hosts()
            hosts = [ends[0], ends[-1]]
        client, server = hosts
        output(f"*** Iperf: testing {l4Type} bandwidth between {client} and {server} \n")
        try:
            result = iperf(self.lab[client.name], self.lab[server.name], seconds,
                           udpBw if l4Type == "UDP" else None, port, self.lab.plan)
        except LabError as exc:
            error(f"*** {exc}\n")
            return []
        rates = [rate_text(result.received_bps), rate_text(result.sent_bps)]
        if l4Type == "UDP":
            rates.insert(0, udpBw)
        output(f"*** Results: {rates}\n")
        return rates

    def configLinkStatus(self, src: str, dst: str, status: str) -> None:  # noqa: N802
        """`link a b down|up`: both ends, through the lab (journaled)."""
        try:
            self.lab.link(src, dst, status == "up")
        except LabError as exc:
            error(f"*** {exc}\n")

    def waitConnected(self, *args: Any, **kwargs: Any) -> bool:  # noqa: N802
        return True  # learning bridges: nothing to connect to

    def stop(self) -> None:
        """End the shells the CLI started; the lab stays up."""
        for node in self.nameToNode.values():
            node.stop()


class LabCLI(CLI):
    """Mininet's CLI; adds completion of node names (dashes and all) and `lab` in `py`,
    keeps the prompt when a command fails, notes an address private to another NAT's
    realm, and says why `dpctl` and `switch` have nothing to act on."""

    prompt = "mininet> "
    # the lab's node names have dashes (home001-nat, corp-fw): each is one word, both as a
    # command's first word and for Tab (Mininet's own names never have one)
    identchars = cmd.IDENTCHARS + "-"

    def preloop(self) -> None:
        try:
            import readline
        except ImportError:
            return
        readline.set_completer_delims(readline.get_completer_delims().replace("-", ""))

    def getLocals(self) -> dict[str, Any]:  # noqa: N802
        found: dict[str, Any] = super().getLocals()
        found["lab"] = self.mn.lab
        return found

    def onecmd(self, line: str) -> Any:
        """A failing command is reported and the prompt stays (the lab is still up)."""
        try:
            return super().onecmd(line)
        except Exception as exc:  # a command's error must not end the session
            error(f"*** {type(exc).__name__}: {exc}\n")
            return None

    def default(self, line: str) -> None:
        """`A CMD B ...` as Mininet runs it (B becomes its address); first says so when B's
        address is private to another NAT's realm, where A would reach another host."""
        first, args, _ = self.parseline(line)
        if first in self.mn and args:
            plan = self.mn.lab.plan
            for word in dict.fromkeys(args.split(" ")):
                why = word in self.mn and word != first and private_elsewhere(plan, first, word)
                if why:
                    warn(f"*** note: {why}\n")
        super().default(line)

    def do_pingpair(self, line: str) -> None:
        """Ping between two hosts: `pingpair A B`, the first two of a selection
        (`pingpair group=home-pc`), or without arguments the first two end hosts."""
        self.mn.pingPair(line)

    def do_pingpairfull(self, line: str) -> None:
        """As pingpair, with each ping's round-trip times."""
        self.mn.pingPairFull(line)

    def do_source(self, line: str) -> None:
        """Read commands from a file (`source` inside a --script file too: Mininet 2.3.0
        loses the outer file when a sourced one ends)."""
        outer = getattr(self, "inputFile", None)
        try:
            super().do_source(line)
        finally:
            self.inputFile = outer

    def do_dpctl(self, line: str) -> None:
        """No OpenFlow here: switches are learning bridges."""
        error("*** dpctl: the lab's switches are learning bridges without OpenFlow; see "
              "them with `s1 bridge fdb` or `s1 ip link`\n")

    def do_switch(self, line: str) -> None:
        """Switches are the lab's bridges: cut their links with `link A B down`."""
        error("*** switch: the lab's switches are bridges of the lab; take their links down "
              "with `link A B down`\n")

    def postcmd(self, stop: Any, line: str) -> Any:
        sys.stdout.flush()  # before the next `sh` command writes to the same stdout
        return stop

    def completenames(self, text: str, *ignored: Any) -> list[str]:
        return [*super().completenames(text, *ignored),
                *(n for n in self.mn if n.startswith(text))]

    def completedefault(self, text: str, *ignored: Any) -> list[str]:
        return [n for n in self.mn if n.startswith(text)]
