"""Backend names resolved through a resolver the test controls (the `resolver` property)."""
import json
import time

import pytest

from backends import Backend
from conftest import PORT_PLACEHOLDER
from dnsserver import DnsServer


@pytest.fixture
def dns():
    servers = []

    def make(names, silent=()):
        servers.append(DnsServer(names, silent))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def config(dns_port, url, extra=""):
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [rproxy]\n"
            f"  resolver: \"127.0.0.1:{dns_port}\"\n  dnsTimeout: 200\n  dnsTries: 1\n"
            f"  proxyTo: \"{url}\"\n{extra}")


@pytest.mark.one_worker  # counts per-worker state
def test_name_resolved_and_cached(start_gateway, dns):
    b = Backend()
    try:
        d = dns({"app.test": ("127.0.0.1", 300)})
        gw = start_gateway(config(d.port, f"http://app.test:{b.port}"))
        for _ in range(5):
            r = gw.get("/echo")
            assert r.status == 200
            assert dict((k.lower(), v) for k, v in json.loads(r.body)["headers"])["host"] == f"app.test:{b.port}"
        assert d.count("app.test") == 1  # cached for the record's TTL
    finally:
        b.close()


def test_ttl_expiry_requeries(start_gateway, dns):
    b = Backend()
    try:
        d = dns({"app.test": ("127.0.0.1", 1)})
        gw = start_gateway(config(d.port, f"http://app.test:{b.port}", "  dnsMinTtl: 100\n  proxyKeepaliveConnections: 0\n"))
        assert gw.get("/echo").status == 200
        time.sleep(1.3)
        assert gw.get("/echo").status == 200
        assert d.count("app.test") == 2
    finally:
        b.close()


@pytest.mark.one_worker  # counts per-worker state
def test_nxdomain_is_503_and_negatively_cached(start_gateway, dns):
    d = dns({})
    gw = start_gateway(config(d.port, "http://missing.test:80", "  dnsNegativeTtl: 5000\n"))
    assert gw.get("/").status == 503
    assert gw.get("/").status == 503
    assert d.count("missing.test") == 1


def test_silent_resolver_times_out_with_503(start_gateway, dns):
    d = dns({}, silent={"slow.test"})
    gw = start_gateway(config(d.port, "http://slow.test:80"))
    t0 = time.monotonic()
    assert gw.get("/", timeout=10).status == 503
    assert time.monotonic() - t0 < 3


def test_bad_resolver_is_a_config_error(start_gateway, gateway_bin, tmp_path):
    import subprocess
    cfg = tmp_path / "c.yaml"
    cfg.write_text("global:\n  resolver: \"1.2.3.4:99999\"\n")
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 1 and f"{cfg}:2:" in out.stderr and "resolver" in out.stderr
