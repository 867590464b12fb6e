"""One rule for "only this machine can reach it", at every place that asks: the local server
(off loopback it takes no write and gives no read without its key), the bridge's listener, and
a client (no API key over plain ``http://`` off loopback). ``LOCALHOST`` is loopback; a name
under ``.localhost`` is when this machine resolves it to loopback alone (RFC 6761), and not
when it does not (the name could then lead anywhere)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
import requests

from trubrics_otel import settings
from trubrics_otel.receive.bridge import Bridge
from trubrics_otel.server import LocalServer


def resolves_to_loopback_alone(name: str) -> bool:
    """What this machine's resolver does with ``name``: the truth the rule must follow."""
    try:
        found = socket.getaddrinfo(name, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(a[4][0]).is_loopback for a in found)


LOCALHOST_NAMES = ("app.localhost", "API.Dev.LOCALHOST")
HOSTS = {"localhost": True, "LOCALHOST": True, "127.0.0.1": True, "127.9.8.7": True, "::1": True,
         "0.0.0.0": False, "192.0.2.7": False, "example.com": False, "localhost.example.com": False,
         "notlocalhost": False, "localhost.": False,
         **{name: resolves_to_loopback_alone(name) for name in LOCALHOST_NAMES}}


def server_refuses_without_a_key(host: str, tmp_path) -> bool:
    try:
        LocalServer(tmp_path / "refused.sqlite3", host=host).store.close()
    except ValueError as error:
        assert "not a loopback address" in str(error)
        return True
    return False


def bridge_refuses_without_a_key(host: str) -> bool:
    try:
        Bridge(host="http://127.0.0.1:9", api_key="k", listen=f"[{host}]:0" if ":" in host else f"{host}:0",
               grpc_listen="off")
    except ValueError as error:
        assert "not loopback" in str(error)
        return True
    return False


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_the_server_the_bridge_and_the_client_agree(host, tmp_path):
    off_loopback = not HOSTS[host]
    assert settings.loopback(host) is HOSTS[host]
    assert server_refuses_without_a_key(host, tmp_path) is off_loopback
    assert bridge_refuses_without_a_key(host) is off_loopback
    url = f"http://[{host}]:8000" if ":" in host else f"http://{host}:8000"
    refusal = settings.host_refusal(url, url)
    assert (refusal is not None and "plain http:// off loopback" in refusal) is off_loopback


def test_a_server_named_in_capitals_listens_on_loopback_without_a_key_of_its_own(tmp_path):
    with LocalServer(tmp_path / "e.sqlite3", host="LOCALHOST") as server:
        url = f"http://127.0.0.1:{server.port}"  # where it really listens
        sent = requests.post(f"{url}/publish_events", timeout=10, headers={"x-api-key": "any"},  # any key: no key set
                             json=[{"user_id": "u", "event": "Signed up", "properties": {}}])
        assert sent.status_code == 200, sent.text
        assert [e["event"] for e in requests.get(f"{url}/api/events", timeout=10).json()] == ["Signed up"]


def test_a_server_off_loopback_takes_no_write_and_gives_no_read_without_its_key(tmp_path):
    with LocalServer(tmp_path / "e.sqlite3", host="0.0.0.0", api_key="secret") as server:
        url = f"http://127.0.0.1:{server.port}"
        event = [{"user_id": "u", "event": "Signed up", "properties": {}}]
        assert requests.post(f"{url}/publish_events", json=event, timeout=10).status_code == 401
        assert requests.get(f"{url}/api/events", timeout=10).status_code == 401
        assert requests.post(f"{url}/publish_events", json=event, headers={"x-api-key": "secret"}, timeout=10).ok
        assert len(requests.get(f"{url}/api/events", headers={"x-api-key": "secret"}, timeout=10).json()) == 1
