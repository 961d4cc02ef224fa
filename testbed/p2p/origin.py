"""The origin's service: write the catalogue once, then become lighttpd.

`python -m testbed.p2p.origin --config origin.json` (cwd: the node's state directory)
writes www/ep/epNN.bin (the episodes) and www/torrents/epNN.torrent (their metainfo,
the origin as web seed), renders lighttpd.conf and execs `lighttpd -D`: the supervisor
then holds lighttpd's own pid, and a reboot kills and restarts the real server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

from testbed.p2p.catalogue import episode_bytes, episode_name, torrent, write_episode

STATUS_PATH = "/server-status"


def lighttpd_config(root: Path, port: int) -> str:
    """Range requests are lighttpd's default for static files; mod_status gives the
    exporter its byte and request counters (`?auto`), from loopback only. No
    server.errorlog: lighttpd then writes its errors to stderr, the service's journaled
    log, which the lab's log guard keeps bounded (a file of its own would grow unseen)."""
    return "\n".join([
        "# written by outage-testbed for this lab node",
        'server.modules = ("mod_access", "mod_status")',
        f'server.document-root = "{root / "www"}"',
        f"server.port = {port}",
        "server.max-connections = 1024",
        'mimetype.assign = (".torrent" => "application/x-bittorrent", '
        '"" => "application/octet-stream")',
        '$HTTP["remoteip"] == "127.0.0.1" {',
        f'  status.status-url = "{STATUS_PATH}"',
        "}",
        "",
    ])


def write_catalogue(root: Path, config: dict[str, Any]) -> None:
    www = root / "www"
    for index in range(1, config["episodes"] + 1):
        name = episode_name(index)
        write_episode(www / "ep" / f"{name}.bin", config["seed"], index, config["size"])
        meta = www / "torrents" / f"{name}.torrent"
        if not meta.exists():
            content = episode_bytes(config["seed"], index, config["size"])
            data, _ = torrent(content, f"{name}.bin", config["piece_size"],
                              config["announce"], f"{config['base_url']}/ep/{name}.bin")
            meta.parent.mkdir(parents=True, exist_ok=True)
            meta.write_bytes(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    path = Path(args.config).resolve()
    config = json.loads(path.read_text())
    root = path.parent
    write_catalogue(root, config)
    conf = root / "lighttpd.conf"
    conf.write_text(lighttpd_config(root, config["port"]))
    binary = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
    os.execv(binary, [binary, "-D", "-f", str(conf)])


if __name__ == "__main__":
    main()
