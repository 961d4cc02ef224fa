"""A proxy-only corporate site with a real tinyproxy: its PCs reach the outside only by
HTTP CONNECT through the proxy, which leaves through the site NAT's public address.
The checks are shared with the replayed containerlab export (site_checks.py)."""

from __future__ import annotations

import pytest

from tests.integration.site_checks import CORP_SITE, check_proxy_only_egress, check_udp_blocked

pytestmark = pytest.mark.root


def test_proxy_only_site_reaches_the_web_only_through_http_connect(make_lab, tmp_path) -> None:
    lab = make_lab("nodes:" + CORP_SITE)
    check_proxy_only_egress(lab, tmp_path, lab.state.node_dir("corp-proxy") / "tinyproxy.log")


def test_udp_from_the_proxy_only_site_is_blocked(make_lab) -> None:
    lab = make_lab("nodes:" + CORP_SITE)
    check_udp_blocked(lab)
