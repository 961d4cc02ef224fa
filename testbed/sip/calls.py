"""The scenario's `call` between SIP user agents: INVITE through the registrar/proxy.

The step asks the UA poller (in the management namespace, the one place that reaches
every UA's control interface), which dials on the caller's baresip, waits for the call
to be established with media flowing (baresip's CALL_RTPESTAB: RTP arrived from the
callee), holds it, hangs up, and counts the outcome in its own metrics
(`sip_ua_calls_total`, `sip_ua_calls_failed_total`).

Which way the media went is the caller's own account, never the config's intent: once
RTP arrived, baresip's `audio_debug` says where the caller sends its RTP (the SDP it was
answered with) and where the RTP it received came from. The outcome says "via the relay"
only when both are the registrar's relay, "direct" only when neither is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import urllib.parse
from typing import Any

from testbed.errors import StepError
from testbed.plan.model import NetworkPlan
from testbed.sip.ctrl import frame, read_frame

OUTCOME_EVENTS = ("CALL_ESTABLISHED", "CALL_RTPESTAB", "CALL_CLOSED")
# audio_debug: " local: 0.0.0.0:23906, remote: 10.99.0.1:10316/10.99.0.1:10317" (where it
# sends RTP/RTCP) and the RTCP member "IP=10.99.0.1:10316 psent=0 rcvd=12" (where the
# RTP it received came from)
SENDS_TO = re.compile(r"\bremote: (\d+\.\d+\.\d+\.\d+):\d+")
RECEIVES_FROM = re.compile(r"\bIP=(\d+\.\d+\.\d+\.\d+):\d+ psent=\d+ rcvd=[1-9]")


def media_path(sends_to: str | None, receives_from: str | None, relay: str | None) -> str:
    """How the media went, from the caller's own view, as the outcome line says it."""
    if not sends_to or not receives_from:
        return "media path unknown (the caller's audio_debug named no peer)"
    ends = {sends_to, receives_from}
    if relay and ends == {relay}:
        return f"media via the relay {relay}"
    if relay in ends:
        return f"media half relayed (sent to {sends_to}, received from {receives_from})"
    if sends_to == receives_from:
        return f"media direct with {sends_to}"
    return f"media direct (sent to {sends_to}, received from {receives_from})"


def sip_call(plan: NetworkPlan, caller: str, callee: str, seconds: float,
             setup: float) -> str:
    """Runs one call through the poller; returns the step's outcome line."""
    from testbed.sip.monitor import POLLER_PORT, relay_of

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
        path = media_path(outcome.get("sends_to"), outcome.get("receives_from"),
                          relay_of(plan, caller))
        return f"SIP call to {callee}: established, {path}, held {seconds:g}s"
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
        sends_to, receives_from = await _media_ends(reader, writer)
        await asyncio.sleep(seconds)
        return {"ok": True, "events": sorted(seen), "sends_to": sends_to,
                "receives_from": receives_from}
    finally:
        writer.write(frame("hangup"))
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(writer.drain(), 2)
        writer.close()


async def _media_ends(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> tuple[str | None, str | None]:
    """(where the caller sends RTP, where its received RTP came from) from audio_debug."""
    writer.write(frame("audio_debug"))
    await writer.drain()
    try:
        while not (message := await asyncio.wait_for(read_frame(reader), 5)).get("response"):
            pass
    except TimeoutError:
        return None, None
    text = str(message.get("data", ""))
    sends, receives = SENDS_TO.search(text), RECEIVES_FROM.search(text)
    return (sends.group(1) if sends else None), (receives.group(1) if receives else None)
