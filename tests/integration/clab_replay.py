"""Build a containerlab topology the way containerlab would, from the file alone, where
containerlab itself cannot run: one namespace per node with a management eth0 on a
management bridge (address `mgmt-ipv4`, default route via the management gateway, as
docker gives it), the links as veths named as their endpoints, then exactly the node's
commands (split as containerlab splits them, clab_split, `$$` back to `$`) in containerlab's order:
node by node in the order of the `configure` stage's `wait-for`, each node's configure
on-enter then on-exit execs (containerlab releases the nodes waiting for a stage only
after its on-exit execs ran). A node's plain `exec:` list runs only after the stage is
done, racing the nodes behind it, so the replay runs those last of all, after every
node's configure stage: the latest containerlab may run them, so an export that relied
on them for ordering fails here. Only what the file says is used: no plan, no testbed
code. The interpreter's directory comes first on PATH, standing in for the
node image's Python with the project installed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml


def clab_split(command: str) -> list[str]:
    """Words of an exec command as containerlab splits them (github.com/google/shlex, not
    a POSIX shell): '...' is literal; in "..." a backslash escapes any character; a `#`
    that starts a word comments out the rest of the line; an unclosed quote is an error."""
    words: list[str] = []
    word: list[str] | None = None  # None: between words
    state, i = "start", 0
    while i < len(command):
        c = command[i]
        i += 1
        if state == "comment":
            if c == "\n":
                state = "start"
            continue
        if state == "single":
            state = "word" if c == "'" else state
            if c != "'":
                assert word is not None
                word.append(c)
            continue
        if state == "double":
            assert word is not None
            if c == '"':
                state = "word"
            elif c == "\\":
                if i >= len(command):
                    raise ValueError("EOF found after escape character")
                word.append(command[i])
                i += 1
            else:
                word.append(c)
            continue
        if c in " \t\r\n":
            if word is not None:
                words.append("".join(word))
            word, state = None, "start"
        elif c == "#" and word is None:
            state = "comment"
        elif c in "'\"":
            word = [] if word is None else word
            state = "single" if c == "'" else "double"
        elif c == "\\":
            if i >= len(command):
                raise ValueError("EOF found after escape character")
            word = [] if word is None else word
            word.append(command[i])
            i += 1
            state = "word"
        else:
            word = [] if word is None else word
            word.append(c)
            state = "word"
    if state in ("single", "double"):
        raise ValueError("EOF found when expecting closing quote")
    if word is not None:
        words.append("".join(word))
    return words


def _run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kwargs)


class ReplayLab:
    """A replayed export: the same `exec`/`popen`/`python`/`addr` as tests.conftest's
    RunningLab, so the shared checks run on it unchanged."""

    def __init__(self, path: Path) -> None:
        self.doc = yaml.safe_load(path.read_text())
        self.name = self.doc["name"]
        self.nodes: dict[str, dict[str, Any]] = self.doc["topology"]["nodes"]
        self.mgmt_namespace = f"clab-{self.name}--mgmt"
        self.created: list[str] = []
        self.exec_log: list[tuple[str, str]] = []  # (node, command) as run

    # --- what the shared checks use ---------------------------------------------------
    def ns(self, node: str) -> str:
        assert node in self.nodes, f"{node} is not in the export"
        return f"clab-{self.name}-{node}"

    def addresses(self, node: str) -> list[tuple[str, str]]:
        """(CIDR, interface) of the node's emulated interfaces as built (eth1, eth2, ...;
        not management's eth0), in interface order."""
        shown = self.exec(node, "ip", "-4", "-o", "addr", "show").stdout.splitlines()
        found = [(f[3], f[1]) for f in (line.split() for line in shown)
                 if f[1] not in ("lo", "eth0")]
        return sorted(found, key=lambda a: int(a[1].removeprefix("eth").split("@")[0]))

    def addr(self, node: str) -> str:
        found = self.addresses(node)
        assert found, f"{node} has no address on an emulated interface"
        return found[0][0].split("/")[0]

    def uplink_addr(self, node: str) -> str:
        """The address on the interface that holds the default route."""
        route = self.exec(node, "ip", "route", "show", "default").stdout.split()
        assert "dev" in route, f"{node} has no default route"
        device = route[route.index("dev") + 1]
        for cidr, iface in self.addresses(node):
            if iface == device:
                return cidr.split("/")[0]
        raise AssertionError(f"{node}: no address on {device}, its default route's device")

    def mgmt_addr(self, node: str) -> str:
        return str(self.nodes[node]["mgmt-ipv4"])

    def exec(self, node: str, *argv: str, timeout: float = 30,
             check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns(node), *argv],
                              capture_output=True, text=True, timeout=timeout, check=check)

    def popen(self, node: str, *argv: str, **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(["ip", "netns", "exec", self.ns(node), *argv], text=True,
                                **kwargs)

    def python(self, node: str, code: str, timeout: float = 30
               ) -> subprocess.CompletedProcess[str]:
        return self.exec(node, sys.executable, "-c", textwrap.dedent(code), timeout=timeout)

    # --- build and remove ---------------------------------------------------------------
    def _netns(self, name: str) -> None:
        self.created.append(name)  # before it exists, so a failure still cleans it
        _run(["ip", "netns", "add", name], check=True)

    def _ip(self, ns: str, *args: str) -> None:
        result = _run(["ip", "-n", ns, *args])
        assert result.returncode == 0, f"ip -n {ns} {' '.join(args)}: {result.stderr}"

    def build(self) -> None:
        subnet = ipaddress.ip_network(self.doc["mgmt"]["ipv4-subnet"])
        gateway = next(subnet.hosts())
        self._netns(self.mgmt_namespace)
        self._ip(self.mgmt_namespace, "link", "add", "mgmt", "type", "bridge")
        self._ip(self.mgmt_namespace, "addr", "add", f"{gateway}/{subnet.prefixlen}",
                 "dev", "mgmt")
        self._ip(self.mgmt_namespace, "link", "set", "mgmt", "up")
        for i, (node, spec) in enumerate(self.nodes.items()):
            ns = self.ns(node)
            self._netns(ns)
            self._ip(ns, "link", "set", "lo", "up")
            self._ip(ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"m{i}",
                     "netns", self.mgmt_namespace)
            self._ip(self.mgmt_namespace, "link", "set", f"m{i}", "master", "mgmt", "up")
            self._ip(ns, "addr", "add", f"{spec['mgmt-ipv4']}/{subnet.prefixlen}", "dev", "eth0")
            self._ip(ns, "link", "set", "eth0", "up")
            self._ip(ns, "route", "add", "default", "via", str(gateway))  # as docker does
        for link in self.doc["topology"]["links"]:
            (a, a_if), (b, b_if) = (e.split(":", 1) for e in link["endpoints"])
            self._ip(self.ns(a), "link", "add", a_if, "type", "veth", "peer", "name", b_if,
                     "netns", self.ns(b))
            self._ip(self.ns(a), "link", "set", a_if, "up")
            self._ip(self.ns(b), "link", "set", b_if, "up")
        order = self._configure_order()
        for node in order:
            self._run_lines(node, [*self._stage_execs(node, "on-enter"),
                                   *self._stage_execs(node, "on-exit")])
        for node in order:
            self._run_lines(node, [str(c) for c in self.nodes[node].get("exec") or []])

    def _configure_order(self) -> list[str]:
        """Nodes after the nodes their `configure` stage waits for."""
        done: list[str] = []

        def visit(node: str, path: tuple[str, ...]) -> None:
            assert node not in path, f"wait-for cycle: {path + (node,)}"
            if node in done:
                return
            stage = (self.nodes[node].get("stages") or {}).get("configure") or {}
            for dep in stage.get("wait-for", []):
                visit(dep["node"], path + (node,))
            done.append(node)

        for node in self.nodes:
            visit(node, ())
        return done

    def _env(self, node: str) -> dict[str, str]:
        spec = self.nodes[node]
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
        env.update({k: str(v) for k, v in (spec.get("env") or {}).items()})
        env.update({f"CLAB_LABEL_{re.sub(r'[^A-Za-z0-9]', '_', k).upper()}": str(v)
                    for k, v in (spec.get("labels") or {}).items()})
        env["CLAB_NODE_NAME"] = node
        return env

    def _stage_execs(self, node: str, phase: str) -> list[str]:
        """The configure stage's execs of one phase that run in the node (containerlab's
        default target; `target: host` ones would run on the containerlab host)."""
        stage = (self.nodes[node].get("stages") or {}).get("configure") or {}
        execs = stage.get("exec") or []
        assert isinstance(execs, list), f"{node}: configure.exec is not a list: {execs!r}"
        return [str(e["command"]) for e in execs if e.get("phase", "on-enter") == phase
                and e.get("target", "container") == "container"]

    def _run_lines(self, node: str, commands: list[str]) -> None:
        env = self._env(node)
        for command in commands:
            argv = clab_split(command.replace("$$", "$"))
            result = _run(["ip", "netns", "exec", self.ns(node), *argv], env=env)
            self.exec_log.append((node, command))
            assert result.returncode == 0, (
                f"{node}: exec line failed ({result.returncode}): {command}\n{result.stderr}")

    def down(self) -> None:
        """Stop what the exec lines left running in our namespaces (by pid), remove them."""
        for ns in reversed(self.created):
            pids = _run(["ip", "netns", "pids", ns]).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            _run(["ip", "netns", "del", ns])
        self.created.clear()
