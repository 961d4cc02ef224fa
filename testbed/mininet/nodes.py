"""Mininet node objects over an existing lab's namespaces, for Mininet's own CLI.

Mininet's Node keeps a bash shell in the node's namespace and talks to it through a pty;
here that shell is started with `ip netns exec <namespace>` (mnexec without -n: it must not
make a namespace of its own) and only when a command first needs it, so a 343-node lab
does not start 343 shells to show a prompt. Nothing is created or deleted besides that
shell: interfaces, addresses and links belong to the lab. A switch (a bridge in the lab's
fabric namespace) gets its shell in that namespace, as Mininet's switches live in the root
namespace.
"""

from __future__ import annotations

from typing import Any

from mininet.link import Intf
from mininet.node import Node


class LabShellNode(Node):
    """A lab node as a mininet.node.Node: `h1 ping h2`, `sh`, `py h1.cmd(...)` work."""

    def __init__(self, name: str, namespace: str, kind: str) -> None:
        self.namespace = namespace
        self.kind = kind
        self._ready = False  # Node.__init__ calls startShell(): defer it
        super().__init__(name, inNamespace=False)
        self._ready = True

    def startShell(self, mnopts: str | None = None) -> None:  # noqa: N802 (Mininet's name)
        if self._ready:
            super().startShell(mnopts)

    def _ensure_shell(self) -> None:
        if not self.shell:
            self.startShell()

    def _popen(self, cmd: list[str], **params: Any) -> Any:
        if cmd and cmd[0] == "mnexec":  # the node's shell: enter the lab's namespace
            cmd = ["ip", "netns", "exec", self.namespace, *cmd]
        return super()._popen(cmd, **params)

    def sendCmd(self, *args: Any, **kwargs: Any) -> None:  # noqa: N802
        self._ensure_shell()
        super().sendCmd(*args, **kwargs)

    def cmd(self, *args: Any, **kwargs: Any) -> Any:
        self._ensure_shell()
        return super().cmd(*args, **kwargs)

    def popen(self, *args: Any, **kwargs: Any) -> Any:
        """A process in the namespace, without the shell (Mininet attaches to the shell's
        pid with mnexec -a; the namespace's name does the same)."""
        kwargs.setdefault("mncmd", ["ip", "netns", "exec", self.namespace])
        return super().popen(*args, **kwargs)

    def monitor(self, timeoutms: int | None = None, findPid: bool = True) -> Any:  # noqa: N803
        if not self.shell:
            return ""
        return super().monitor(timeoutms, findPid)

    def sendInt(self, intr: str = chr(3)) -> None:  # noqa: N802
        if self.shell:
            super().sendInt(intr)

    def __repr__(self) -> str:
        """As Mininet's (`dump`), with the lab's kind where Mininet has its class."""
        intfs = ",".join(f"{i.name}:{i.IP()}" for i in self.intfList())
        return f"<{self.kind} {self.name}: {intfs} pid={self.pid}> "

    def deleteIntfs(self, checkName: bool = True) -> None:  # noqa: N802, N803
        """The lab's interfaces outlive the CLI: never deleted from here."""

    def stop(self, deleteIntfs: bool = False) -> None:  # noqa: N803
        """Stop the shell only (Ctrl-D leaves the lab running)."""
        if self.shell:
            self.terminate()


class LabIntf(Intf):
    """An interface of the lab as Mininet's Intf; its address comes from the lab's plan
    (`h1 ping h2` substitutes it), so no command runs to learn it."""

    def __init__(self, name: str, node: LabShellNode, port: int, address: str | None) -> None:
        super().__init__(name, node=node, port=port, up=None)  # up=None: leave it as it is
        if address:
            self.ip, _, prefix = address.partition("/")
            self.prefixLen = int(prefix) if prefix else None

    def updateIP(self) -> Any:  # noqa: N802
        return self.ip

    def _brief(self) -> list[str]:
        """`ip -br link` of the interface: name, state, MAC (empty if it is gone)."""
        out, _, _ = self.node.pexec(["ip", "-br", "link", "show", "dev", self.name])
        return str(out).split()

    def status(self) -> str:
        """OK, DOWN (after `link A B down`, or its peer's end is down) or MISSING; Mininet
        says OK for an interface that is down, which hides what `link` just did."""
        words = self._brief()
        if not words:
            return "MISSING"
        return "OK" if len(words) > 1 and words[1] in ("UP", "UNKNOWN") else "DOWN"

    def updateMAC(self) -> Any:  # noqa: N802
        words = self._brief()
        self.mac = words[2] if len(words) > 2 else None
        return self.mac

    def MAC(self) -> Any:  # noqa: N802
        """The kernel's MAC address (the lab set it, not Mininet), read when first asked."""
        return self.mac or self.updateMAC()

    def delete(self) -> None:
        """Interfaces belong to the lab."""


class LabLink:
    """A link of the lab as Mininet's CLI shows it (`links`, `net`)."""

    def __init__(self, intf1: LabIntf, intf2: LabIntf) -> None:
        self.intf1, self.intf2 = intf1, intf2
        intf1.link = intf2.link = self

    def status(self) -> str:
        return f"({self.intf1.status()} {self.intf2.status()})"

    def __str__(self) -> str:
        return f"{self.intf1}<->{self.intf2}"
