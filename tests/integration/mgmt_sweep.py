"""Reach every management address at once from the lab's mgmt namespace, as Prometheus
does when it scrapes: a TCP connect answered (accepted or refused by the node's kernel)
proves the address answers; a timeout or "no route" means it cannot be scraped. All at
once on purpose: that is the ARP burst that overflowed one big bridge."""

from __future__ import annotations

SWEEP = r"""
import errno, json, selectors, socket, sys, time
addresses = json.load(sys.stdin)
port, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
sel, answered, failed = selectors.DefaultSelector(), set(), {}
for address in addresses:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    code = s.connect_ex((address, port))
    if code in (0, errno.ECONNREFUSED):
        answered.add(address); s.close()
    elif code == errno.EINPROGRESS:
        sel.register(s, selectors.EVENT_WRITE, address)
    else:
        failed[address] = errno.errorcode.get(code, str(code)); s.close()
while sel.get_map() and time.monotonic() < deadline:
    for key, _ in sel.select(timeout=0.5):
        code = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code in (0, errno.ECONNREFUSED):
            answered.add(key.data)
        else:
            failed[key.data] = errno.errorcode.get(code, str(code))
        sel.unregister(key.fileobj); key.fileobj.close()
for key in list(sel.get_map().values()):
    failed[key.data] = "timeout"
print(json.dumps({"answered": len(answered), "failed": failed}))
"""


def sweep(mgmt_namespace: str, addresses: list[str], port: int = 9100,
          timeout: float = 20.0) -> dict[str, object]:
    import json
    import resource
    import subprocess
    import sys

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = len(addresses) + 64
    run = subprocess.run(
        ["ip", "netns", "exec", mgmt_namespace, "prlimit", f"--nofile={max(need, soft)}:"
         f"{max(need, hard)}", sys.executable, "-c", SWEEP, str(port), str(timeout)],
        input=json.dumps(addresses), capture_output=True, text=True, timeout=timeout + 30)
    assert run.returncode == 0, run.stderr
    result: dict[str, object] = json.loads(run.stdout)
    return result
