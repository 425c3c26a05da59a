"""Access rules: blocklist / allowlist per host and location, the client address from the socket or
from X-Forwarded-For sent by a trusted proxy, Ferron's enableIPSpoofing, and the access log."""
import time

import pytest

from conftest import make_config


def cfg(wwwroot, hosts="", **props):
    text = make_config(wwwroot, **props)
    return text + ("hosts:\n" + hosts if hosts else "")


def as_client(gw, ip, path="/hello.txt", host="localhost"):
    return gw.get(path, host=host, headers={"X-Forwarded-For": ip}).status


@pytest.fixture
def acl_gw(start_gateway, wwwroot, tmp_path):
    log = tmp_path / "access.log"
    text = make_config(wwwroot, logFilePath=str(log)) + """\
  trustedProxies: ["127.0.0.1", "10.255.0.0/16"]
  blocklist: ["192.0.2.0/24", "2001:db8:bad::/48", "203.0.113.7"]
hosts:
  - domain: open.test
  - domain: closed.test
    allowlist: ["198.51.100.0/24", "2001:db8:600d::/48"]
    locations:
      - path: /wider
        allowlist: ["100.64.0.1"]
"""
    gw = start_gateway(text)
    gw.log = log
    return gw


@pytest.mark.parametrize("ip,status", [
    ("192.0.2.1", 403), ("192.0.2.254", 403), ("203.0.113.7", 403), ("203.0.113.8", 200),
    ("::ffff:192.0.2.9", 403), ("2001:db8:bad::1", 403), ("2001:db8:bad:ffff::9", 403),
    ("2001:db8:bad0::1", 200), ("198.51.100.1", 200),
])
def test_blocklist(acl_gw, ip, status):
    assert as_client(acl_gw, ip, host="open.test") == status


def test_blocklist_socket_address(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot) + '  blocklist: ["127.0.0.0/8"]\n')
    r = gw.get("/hello.txt")
    assert r.status == 403
    assert b"403 Forbidden" in r.body
    # no trusted proxy: X-Forwarded-For is ignored
    assert gw.get("/hello.txt", headers={"X-Forwarded-For": "198.51.100.1"}).status == 403


@pytest.mark.parametrize("ip,path,status", [
    ("198.51.100.20", "/hello.txt", 200), ("2001:db8:600d::5", "/hello.txt", 200),
    ("198.51.101.20", "/hello.txt", 403), ("2001:db8:600e::5", "/hello.txt", 403),
    # a location's list is added to the host's (Ferron merges lists by concatenation)
    ("100.64.0.1", "/wider/x", 404), ("198.51.100.20", "/wider/x", 404), ("100.64.0.1", "/hello.txt", 403),
    ("192.0.2.5", "/hello.txt", 403),  # the global blocklist still applies
])
def test_allowlist(acl_gw, ip, path, status):
    assert as_client(acl_gw, ip, path, host="closed.test") == status


def test_xff_chain_of_trusted_proxies(acl_gw):
    # client -> 10.255.1.1 (trusted) -> 127.0.0.1: the first untrusted from the right is the client
    assert as_client(acl_gw, "198.51.100.9, 10.255.1.1", host="closed.test") == 200
    # a forged left-most entry does not help a blocked client
    assert as_client(acl_gw, "198.51.100.9, 192.0.2.1", host="closed.test") == 403
    assert as_client(acl_gw, "192.0.2.1, 198.51.100.9", host="closed.test") == 200
    # several header lines are one list
    r = acl_gw.get("/hello.txt", host="closed.test",
                   headers={"X-Forwarded-For": "198.51.100.3", "X-Forwarded-for": "10.255.0.9"})
    assert r.status == 200


def test_access_log_has_client_address(acl_gw):
    assert as_client(acl_gw, "198.51.100.77", host="open.test") == 200
    acl_gw.stop()
    text = acl_gw.log.read_text()
    assert text.splitlines()[-1].startswith("198.51.100.77 - - ["), text


def test_untrusted_peer_xff_ignored(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot) + '  trustedProxies: ["10.0.0.1"]\n  allowlist: ["198.51.100.1"]\n')
    assert as_client(gw, "198.51.100.1") == 403  # 127.0.0.1 is not a trusted proxy


def test_enable_ip_spoofing(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, enableIPSpoofing=True) + '  blocklist: ["192.0.2.1"]\n')
    assert as_client(gw, "192.0.2.1, 198.51.100.1") == 403  # Ferron: the first element
    assert as_client(gw, "198.51.100.1, 192.0.2.1") == 200
    assert as_client(gw, "not-an-ip") == 400
    assert gw.get("/hello.txt").status == 200


def test_bad_cidr_is_a_located_error(tmp_path, gateway_bin):
    import subprocess
    p = tmp_path / "bad.yaml"
    p.write_text('global:\n  port: 1\n  allowlist: ["10.0.0.0/99"]\n')
    r = subprocess.run([str(gateway_bin), "-t", "-c", str(p)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "bad.yaml:3:15: allowlist: '10.0.0.0/99' is not an IP address or CIDR prefix" in r.stderr + r.stdout
