"""Where a run's Prometheus UI listens: loopback unless TESTBED_UI_ADDRESS says otherwise
(the lab VM, for Vagrant's forwarded port); a bad address is a clear error."""

from __future__ import annotations

import socket

import pytest

from testbed.errors import LabError
from testbed.metrics.forward import LoopbackForwarder, default_ui_address


def test_loopback_unless_the_environment_says_otherwise() -> None:
    assert default_ui_address({}) == "127.0.0.1"
    assert default_ui_address({"TESTBED_UI_ADDRESS": " "}) == "127.0.0.1"
    assert default_ui_address({"TESTBED_UI_ADDRESS": "0.0.0.0"}) == "0.0.0.0"


def test_the_forwarder_listens_where_asked_and_shows_a_url_that_works_here() -> None:
    forwarder = LoopbackForwarder("unused-ns", ("100.127.0.1", 9090), port=19390,
                                  address="0.0.0.0")
    try:
        assert forwarder.listener.getsockname()[0] == "0.0.0.0"
        assert forwarder.url == f"http://127.0.0.1:{forwarder.port}"
        with socket.create_connection(("127.0.0.1", forwarder.port), timeout=2) as client:
            # accepted; with no such management namespace it hangs up instead of failing
            assert client.recv(1) == b""
    finally:
        forwarder.close()


def test_an_address_that_is_not_one_is_named_in_the_error() -> None:
    with pytest.raises(LabError, match="'lab-vm' .*TESTBED_UI_ADDRESS"):
        LoopbackForwarder("unused-ns", ("100.127.0.1", 9090), address="lab-vm")
