"""The scenario's `call` between SIP user agents: INVITE through the registrar/proxy.

The step asks the UA poller (in the management namespace, the one place that reaches
every UA's control interface), which dials on the caller's baresip, waits for the call
to be established with media flowing (baresip's CALL_RTPESTAB: RTP arrived from the
callee), holds it, hangs up, and counts the outcome in its own metrics
(`sip_ua_calls_total`, `sip_ua_calls_failed_total`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import urllib.parse
from typing import Any

from testbed.errors import StepError
from testbed.plan.model import NetworkPlan
from testbed.sip.ctrl import frame, read_frame

OUTCOME_EVENTS = ("CALL_ESTABLISHED", "CALL_RTPESTAB", "CALL_CLOSED")


def sip_call(plan: NetworkPlan, caller: str, callee: str, seconds: float,
             setup: float) -> str:
    """Runs one call through the poller; returns the step's outcome line."""
    from testbed.sip.monitor import POLLER_PORT

    hub = plan.mgmt_bridge_address.split("/")[0]
    query = urllib.parse.urlencode({"from": caller, "to": callee, "seconds": f"{seconds:g}",
                                    "setup": f"{setup:g}"})
    result = subprocess.run(
        ["ip", "netns", "exec", plan.mgmt_namespace, "curl", "-sf", "-m",
         str(seconds + setup + 5), f"http://{hub}:{POLLER_PORT}/call?{query}"],
        capture_output=True, text=True, timeout=seconds + setup + 10, check=False)
    if result.returncode != 0:
        raise StepError(f"{caller}: the SIP UA poller did not place the call (curl exit "
                        f"{result.returncode}): is the run's Prometheus (and poller) up?")
    outcome = json.loads(result.stdout)
    if outcome.get("ok"):
        return f"SIP call to {callee}: established, media flowing, held {seconds:g}s"
    return f"call to {callee} failed: {outcome.get('reason')}"


async def place_call(host: str, port: int, uri: str, seconds: float, setup: float
                     ) -> dict[str, Any]:
    """Dial `uri` on the baresip at host:port; ok when media flows within `setup` s."""
    reader, writer = await asyncio.open_connection(host, port)
    loop = asyncio.get_running_loop()
    seen: set[str] = set()
    reason = f"no media within {setup:g}s"
    try:
        writer.write(frame("dial", uri))
        await writer.drain()
        deadline = loop.time() + setup
        while "CALL_RTPESTAB" not in seen and loop.time() < deadline:
            try:
                message = await asyncio.wait_for(read_frame(reader), deadline - loop.time())
            except TimeoutError:
                break
            kind = str(message.get("type", ""))
            if kind == "CALL_CLOSED":
                reason = f"closed: {message.get('param', '')}"
                return {"ok": False, "reason": reason, "events": sorted(seen)}
            if kind in OUTCOME_EVENTS:
                seen.add(kind)
        if "CALL_RTPESTAB" not in seen:
            if "CALL_ESTABLISHED" in seen:
                reason = f"answered, but no media arrived within {setup:g}s"
            return {"ok": False, "reason": reason, "events": sorted(seen)}
        await asyncio.sleep(seconds)
        return {"ok": True, "events": sorted(seen)}
    finally:
        writer.write(frame("hangup"))
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(writer.drain(), 2)
        writer.close()
