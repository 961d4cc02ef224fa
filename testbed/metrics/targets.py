"""Whether Prometheus could scrape every node: a run that silently misses targets plots a
lower online fraction than the lab had (at 1,000 nodes on one mgmt bridge, the login
server and 20 supernodes were never scraped). So the run says it loudly, in summary.json
and on the console."""

from __future__ import annotations

from typing import Any, Protocol

# capacity a scenario adds later (held_back) is down until then, by design
PEERS = 'up{job=~"peers|cdn",held_back!="true"}'  # the overlay's and the CDN's nodes


class _Queries(Protocol):
    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]: ...


def scrape_health(prometheus: _Queries, started: float, ended: float) -> dict[str, Any]:
    """Targets never scraped over the run, and targets down at its end (a scenario may
    have them down on purpose; a target never scraped is the testbed's failure)."""
    window = max(1, int(ended - started))
    total = prometheus.query(f"count({PEERS})", at=ended)
    never = prometheus.query(f"max_over_time({PEERS}[{window}s]) == 0", at=ended)
    down = prometheus.query(f"{PEERS} == 0", at=ended)

    def nodes(result: list[dict[str, Any]]) -> list[str]:
        return sorted(r["metric"].get("node", r["metric"].get("instance", "?"))
                      for r in result)

    return {"total": int(float(total[0]["value"][1])) if total else 0,
            "never_scraped": nodes(never), "down_at_end": nodes(down)}


def warning(health: dict[str, Any]) -> str | None:
    """The console line, when some targets were never scraped."""
    never = health["never_scraped"]
    if not never:
        return None
    shown = ", ".join(never[:10]) + (" ..." if len(never) > 10 else "")
    return (f"!! {len(never)} of {health['total']} scrape targets were NEVER scraped during "
            f"the run ({shown}): their metrics are missing and they count as offline. "
            f"Check the management network (`testbed exec NODE -- ip addr show mgmt0`) "
            f"and the kernel log (neighbour table overflow?)")
