"""Requests to the ACME CA go through the upstream engine on worker 0: the CA's name is resolved by
the `resolver` servers, its certificate checked against automaticTLSCaFile, connections kept alive;
a CA's rate limit (429 + Retry-After, from a fault-injecting proxy in front of pebble) is honoured."""
import re
import socket
import time

import pytest

from acme_fault_proxy import FaultProxy
from conftest import free_port
from dnsserver import DnsServer
from pebble_ca import PEBBLE, Pebble
from test_acme import NAMES, acme_config, wait_for_cert
from tls_helpers import make_cert, wait_port

pytestmark = pytest.mark.skipif(PEBBLE is None, reason="pebble is not installed (scripts/deps.sh test)")

CA_NAME = "acme.test"  # known to the test resolver only


@pytest.fixture
def dns():
    d = DnsServer({n: ("127.0.0.1", 60) for n in NAMES + [CA_NAME]})
    yield d
    d.close()


@pytest.fixture
def pebble(tmp_path):
    p = Pebble(tmp_path / "pebble")
    # its API certificate must name the CA as the gateway reaches it
    p.cert, p.key = make_cert(p.dir, CA_NAME, [f"DNS:{CA_NAME}", "DNS:localhost", "IP:127.0.0.1"])
    yield p
    p.stop()


def resolver_extra(dns, **more):
    extra = {"resolver": f'"127.0.0.1:{dns.port}"', "dnsTimeout": 300, "dnsTries": 1}
    extra.update(more)
    return extra


def wait_log(gw, text, timeout=15, count=1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and gw.stderr().count(text) < count:
        time.sleep(0.1)
    assert gw.stderr().count(text) >= count, gw.stderr()
    return gw.stderr()


def start(start_gateway, wwwroot, tmp_path, directory, ca_file, extra, pebble=None, dns=None, sport=None):
    """The gateway, then pebble (unless started already) validating TLS-ALPN-01 on its HTTPS port."""
    sport = sport or free_port()
    gw = start_gateway(acme_config(wwwroot, sport, directory, ca_file, tmp_path / "cache", extra=extra))
    if pebble and not pebble.proc:
        pebble.start(dns.port, gw.port, sport)
    return gw, sport


def proxied_pebble(tmp_path, dns, sport, retry_after):
    """pebble up before the gateway (its first request must reach it), behind a FaultProxy that
    rate-limits the first newOrder."""
    pebble = Pebble(tmp_path / "pebble")
    pebble.start(dns.port, free_port(), sport)
    return pebble, FaultProxy(tmp_path / "proxy", pebble, reject=1, retry_after=retry_after)


def test_ca_name_resolved_through_the_resolver(start_gateway, pebble, wwwroot, tmp_path, dns):
    gw, sport = start(start_gateway, wwwroot, tmp_path, f"https://{CA_NAME}:{pebble.port}/dir", pebble.cert,
                      resolver_extra(dns), pebble, dns)
    wait_port(sport)
    wait_for_cert(sport, gw)
    assert dns.count(CA_NAME) >= 1  # A queries for the CA went to the test resolver
    # logged once the certificate is saved, which can be after the handshake above served it
    wait_log(gw, "acme: certificate for a.example.test and more installed")


def test_ca_name_that_does_not_resolve(start_gateway, wwwroot, tmp_path, dns):
    ca, _ = make_cert(tmp_path / "ca", "unused")
    gw, _ = start(start_gateway, wwwroot, tmp_path, "https://missing.test:4431/dir", ca,
                  resolver_extra(dns, automaticTLSRetryMax=1))
    log = wait_log(gw, "missing.test:4431: the name did not resolve through the resolver", count=2)
    assert re.search(r"acme: https://missing.test:4431/dir: missing.test:4431: the name did not resolve", log)
    assert dns.count("missing.test") >= 1
    assert gw.get("/").status == 200  # still serving


def test_ca_certificate_not_trusted(start_gateway, pebble, wwwroot, tmp_path, dns):
    other, _ = make_cert(tmp_path / "other", "other-ca", [f"DNS:{CA_NAME}"])
    gw, _ = start(start_gateway, wwwroot, tmp_path, f"https://{CA_NAME}:{pebble.port}/dir", other,
                  resolver_extra(dns, automaticTLSRetryMax=1), pebble, dns)
    log = wait_log(gw, "TLS handshake failed: certificate verify failed", count=2)
    assert f"{CA_NAME}:{pebble.port}: TLS handshake failed: certificate verify failed (" in log, log
    assert "installed" not in log
    assert gw.get("/").status == 200


def test_rate_limit_waits_for_retry_after(start_gateway, wwwroot, tmp_path, dns):
    sport = free_port()
    # Retry-After 3 s is longer than the first back-off (2 s): the wait is the CA's
    pebble, proxy = proxied_pebble(tmp_path, dns, sport, "3")
    try:
        gw, _ = start(start_gateway, wwwroot, tmp_path, proxy.directory, proxy.cert, {}, sport=sport)
        wait_port(sport)
        wait_for_cert(sport, gw, timeout=40)
        limited = proxy.times(proxy.new_order_path, 429)
        accepted = proxy.times(proxy.new_order_path, 201)
        assert len(limited) == 1 and accepted, proxy.log
        assert accepted[0] - limited[0] >= 3.0, (accepted[0] - limited[0], proxy.log)
        log = gw.stderr()
        assert "newOrder: HTTP 429 urn:ietf:params:acme:error:rateLimited: too many new orders" in log, log
        assert "acme: next attempt in 3 s (the CA's Retry-After)" in log, log
        # connections are kept alive: an issuance makes many requests on a few connections
        assert proxy.connections < len(proxy.log) / 2, (proxy.connections, len(proxy.log))
    finally:
        proxy.close()
        pebble.stop()


def test_huge_retry_after_is_capped(start_gateway, wwwroot, tmp_path, dns):
    pebble, proxy = proxied_pebble(tmp_path, dns, free_port(), "999999999")
    try:
        gw, _ = start(start_gateway, wwwroot, tmp_path, proxy.directory, proxy.cert, {})
        wait_log(gw, "acme: next attempt in 86400 s (the CA's Retry-After, capped)", timeout=20)
        assert gw.get("/").status == 200
    finally:
        proxy.close()
        pebble.stop()


@pytest.fixture
def silent_ca():
    """A CA that accepts connections and never says a word (not even the TLS handshake)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    s.settimeout(15)
    yield s
    s.close()


def test_slow_ca_times_out(start_gateway, wwwroot, tmp_path, silent_ca):
    ca, _ = make_cert(tmp_path / "ca", "unused")
    port = silent_ca.getsockname()[1]
    gw, _ = start(start_gateway, wwwroot, tmp_path, f"https://127.0.0.1:{port}/dir", ca,
                  {"automaticTLSTimeout": 300, "automaticTLSRetryMax": 1})
    log = wait_log(gw, "no answer within automaticTLSTimeout (300 ms)", count=2)
    assert f"127.0.0.1:{port}: no answer within automaticTLSTimeout (300 ms)" in log
    assert gw.get("/").status == 200


def test_stopping_cancels_a_request_in_flight(start_gateway, wwwroot, tmp_path, silent_ca):
    ca, _ = make_cert(tmp_path / "ca", "unused")
    port = silent_ca.getsockname()[1]
    gw, _ = start(start_gateway, wwwroot, tmp_path, f"https://127.0.0.1:{port}/dir", ca,
                  {"automaticTLSTimeout": 60000})
    conn, _ = silent_ca.accept()
    try:
        conn.settimeout(5)
        # The client hello has arrived: worker 0 is in the middle of a request to the CA.
        # (The TCP accept alone can come before the hello is written.)
        seen = conn.recv(4096)
        assert seen[:1] == b"\x16", seen
        began = time.monotonic()
        assert gw.stop() == 0, gw.stderr()
        assert time.monotonic() - began < 5, gw.stderr()  # not the 60 s timeout
        while chunk := conn.recv(4096):  # the gateway closed its side
            seen += chunk
    finally:
        conn.close()
