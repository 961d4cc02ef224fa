"""Ansible connection plugin `testbed_netns`: run tasks inside an emulated host of a lab.

Self-contained on purpose (imports only Ansible and the standard library): Ansible loads
it by path, possibly from a Python that cannot import the testbed (Debian's ansible in
the lab VM).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

DOCUMENTATION = """
    name: testbed_netns
    short_description: run tasks inside an emulated host of an outage-testbed lab
    description:
        - Runs each command with C(ip netns exec <namespace> /bin/sh -c ...) on the
          controller, so a task sees the emulated host's interfaces, addresses, routes and
          sysctls. No SSH daemon is needed in the emulated hosts.
        - Network namespaces share the machine's filesystem, so files are transferred by
          copying (put_file, fetch_file); write per-host files under the host's
          C(testbed_state_dir), not to shared paths such as /etc.
        - Needs root on the controller (entering a namespace does). Become with a password
          prompt is not supported; run ansible-playbook as root.
        - Inventories from C(testbed inventory) (also written by C(testbed up) to
          /run/testbed/<lab>/inventory.yml) set C(ansible_connection=testbed_netns) and
          C(testbed_namespace) for every host.
        - Found through playbooks/ansible.cfg (connection_plugins) or the
          ANSIBLE_CONNECTION_PLUGINS environment variable.
    author: outage-testbed
    options:
        namespace:
            description:
                - The emulated host's network namespace, C(tb-<lab>-<node>).
            type: str
            vars:
                - name: testbed_namespace
                - name: ansible_testbed_namespace
        ip_command:
            description:
                - The iproute2 C(ip) executable used to enter the namespace.
            type: str
            default: ip
            vars:
                - name: testbed_ip_command
            env:
                - name: TESTBED_IP_COMMAND
    extends_documentation_fragment:
        - connection_pipelining
"""

EXAMPLES = """
# inventory.yml, as `testbed inventory` writes it (abridged)
all:
  hosts:
    home001:
      ansible_connection: testbed_netns
      testbed_namespace: tb-skype-home001
"""

NETNS_DIR = "/run/netns"
SHELL = "/bin/sh"

display = Display()


class Connection(ConnectionBase):
    """One emulated host: every exec is a fresh `ip netns exec`, so there is no session."""

    transport = "testbed_netns"
    has_pipelining = True

    def _namespace(self) -> str:
        namespace = self.get_option("namespace")
        if not namespace:
            raise AnsibleConnectionFailure(
                f"host {self._play_context.remote_addr} has no testbed_namespace: "
                "use an inventory made by `testbed inventory` for a running lab")
        return str(namespace)

    def _connect(self) -> Connection:
        if not self.connected:
            namespace = self._namespace()
            if os.geteuid() != 0:
                raise AnsibleConnectionFailure(
                    "testbed_netns needs root to enter a network namespace: "
                    "run ansible-playbook with sudo")
            if not os.path.exists(os.path.join(NETNS_DIR, namespace)):
                raise AnsibleConnectionFailure(
                    f"network namespace {namespace} does not exist: is the lab up? "
                    "(`sudo testbed inspect`; regenerate the inventory with "
                    "`sudo testbed inventory`)")
            display.vvv(f"ENTER NETWORK NAMESPACE {namespace}",
                        host=self._play_context.remote_addr)
            self._connected = True
        return self

    def exec_command(self, cmd: str | bytes, in_data: bytes | None = None,
                     sudoable: bool = True) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        if sudoable and self.become and self.become.expect_prompt():
            raise AnsibleError("testbed_netns cannot answer a become password prompt: "
                               "run ansible-playbook as root instead of using become")
        argv = [self.get_option("ip_command"), "netns", "exec", self._namespace(), SHELL,
                "-c", to_text(cmd)]
        display.vvv(f"EXEC {argv}", host=self._play_context.remote_addr)
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
        except OSError as exc:
            raise AnsibleConnectionFailure(f"cannot run {argv[0]}: {exc}") from exc
        stdout, stderr = proc.communicate(in_data)
        return proc.returncode, stdout, stderr

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._play_context.remote_addr)
        self._copy(in_path, out_path)

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._play_context.remote_addr)
        self._copy(in_path, out_path)

    @staticmethod
    def _copy(source: str, destination: str) -> None:
        """Same filesystem inside and outside the namespace: a copy is the transfer."""
        if not os.path.exists(to_bytes(source, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound(f"file or module does not exist: {source}")
        try:
            shutil.copyfile(to_bytes(source, errors="surrogate_or_strict"),
                            to_bytes(destination, errors="surrogate_or_strict"))
        except (OSError, shutil.Error) as exc:
            raise AnsibleError(f"failed to copy {source} to {destination}: {exc}") from exc

    def reset(self) -> None:
        """Nothing persists between commands, so there is nothing to reset."""

    def close(self) -> None:
        self._connected = False
