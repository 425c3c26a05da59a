"""Built-in health, readiness and metrics endpoints (healthPath, readyPath, metricsPath, adminAllow),
and `gateway --version`."""
import re
import shutil
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from backends import Backend
from conftest import GATEWAY_BIN, PORT_PLACEHOLDER, RawConn, make_config

SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def parse_metrics(text):
    """{'name{labels}': value} for every sample; checks every line is a comment or a sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES.match(line)
        assert m, f"not a sample line: {line!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def scrape(gw, path="/metrics"):
    r = gw.get(path)
    assert r.status == 200, r
    assert r.header("content-type").startswith("text/plain; version=0.0.4"), r
    return parse_metrics(r.body.decode())


def wait_metric(gw, name, want, timeout=3.0):
    """Scrapes until sample `name` reaches `want` (a request is counted as it is logged, just
    after its response went out, so a client may be a moment ahead)."""
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(gw)
        if m.get(name, 0) >= want or time.monotonic() > deadline:
            return m
        time.sleep(0.05)


def test_health_and_ready_by_default(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot))
    for path in ("/healthz", "/readyz"):
        r = gw.get(path)
        assert r.status == 200 and r.body == b"ok\n", r
        assert r.header("cache-control") == "no-store"
        assert r.header("content-type").startswith("text/plain")
    # metrics are off unless metricsPath is set: the path is the site's
    assert gw.get("/metrics").status == 404
    # only the exact path
    assert gw.get("/healthz/x").status == 404
    assert gw.get("/").status == 200


def test_head_and_methods(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, metricsPath="/metrics"))
    with gw.connect() as c:
        c.send(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response("HEAD")
        assert r.status == 200 and r.header("content-length") == "3", r
        c.send(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        r = c.read_response()
        assert r.status == 405, r
        assert r.header("allow") == "GET, HEAD"


def test_paths_configurable_and_switched_off(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, healthPath="/_live", readyPath=None, metricsPath="/_metrics"))
    assert gw.get("/_live").status == 200
    assert gw.get("/healthz").status == 404
    assert gw.get("/readyz").status == 404
    assert "gateway_http_requests_total" in gw.get("/_metrics").body.decode()


def test_admin_allow_excludes_client_falls_through_to_site(start_gateway, wwwroot):
    """A client outside adminAllow sees the route's own content at these paths."""
    (wwwroot / "healthz").write_bytes(b"the site's own page\n")
    gw = start_gateway(make_config(wwwroot, metricsPath="/metrics") + '  adminAllow: ["10.0.0.0/8", "fd00::/8"]\n')
    r = gw.get("/healthz")
    assert r.status == 200 and r.body == b"the site's own page\n", r
    assert gw.get("/metrics").status == 404
    assert gw.get("/readyz").status == 404


def test_admin_allow_ipv6_loopback(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot) + '  adminAllow: ["::1"]\n')
    # over IPv4 loopback: not allowed
    assert gw.get("/healthz").status == 404
    try:
        s = socket.create_connection(("::1", gw.port), timeout=3)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data


def test_answered_before_policy(start_gateway, wwwroot):
    """An allowlist that refuses the client applies to the site, not to the health endpoints."""
    gw = start_gateway(make_config(wwwroot) + '  allowlist: ["10.0.0.0/8"]\n')
    assert gw.get("/").status == 403
    assert gw.get("/healthz").status == 200


def test_answered_on_every_host(start_gateway, wwwroot, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "index.html").write_bytes(b"other site\n")
    hosts = f'  - domain: "a.test"\n    wwwroot: "{other}"\n'
    gw = start_gateway(make_config(wwwroot, hosts=hosts))
    assert gw.get("/healthz", host="a.test").status == 200
    assert gw.get("/", host="a.test").body == b"other site\n"


def test_config_errors_are_located(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text('global:\n  port: 8080\n  healthPath: "health"\n  adminAllow: ["127.0.0.1", "10.0.0.0/40"]\n')
    p = subprocess.run([str(GATEWAY_BIN), "-t", "-c", str(bad)], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert f"{bad}:3:15: healthPath:" in p.stderr, p.stderr
    assert f"{bad}:4:29: adminAllow: '10.0.0.0/40'" in p.stderr, p.stderr
    host = tmp_path / "host.yaml"
    host.write_text('global:\n  port: 8080\nhosts:\n  - domain: a.test\n    metricsPath: /m\n')
    p = subprocess.run([str(GATEWAY_BIN), "-t", "-c", str(host)], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0 and "metricsPath: not allowed in a host" in p.stderr, p.stderr


def test_metrics_count_requests_by_class_and_protocol(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, metricsPath="/metrics"))
    before = scrape(gw)
    for _ in range(3):
        assert gw.get("/hello.txt").status == 200
    for _ in range(2):
        assert gw.get("/missing").status == 404
    with gw.connect() as c:
        c.send(b"GET /hello.txt HTTP/1.0\r\n\r\n")
        assert c.read_response().status == 200
    wait_metric(gw, 'gateway_http_requests_total{code="4xx"}', before['gateway_http_requests_total{code="4xx"}'] + 2)
    m = wait_metric(gw, 'gateway_http_requests_by_protocol_total{protocol="HTTP/1.0"}', 1)
    # the first scrape itself is one more 2xx
    assert m['gateway_http_requests_total{code="2xx"}'] - before['gateway_http_requests_total{code="2xx"}'] >= 5
    assert m['gateway_http_requests_total{code="4xx"}'] - before['gateway_http_requests_total{code="4xx"}'] == 2
    assert m['gateway_http_requests_by_protocol_total{protocol="HTTP/1.0"}'] == 1
    assert m['gateway_http_requests_by_protocol_total{protocol="HTTP/1.1"}'] >= 6
    # three times "hello world\n" at least
    assert m["gateway_http_response_body_bytes_total"] - before["gateway_http_response_body_bytes_total"] >= 4 * 12
    assert m["gateway_client_connections_accepted_total"] >= 7
    assert m['gateway_client_connections{state="active"}'] >= 1  # the scrape's own connection
    assert m["gateway_draining"] == 0
    assert [v for k, v in m.items() if k.startswith("gateway_build_info{")] == [1]


def test_metrics_idle_connections(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, metricsPath="/metrics"))
    conns = []
    try:
        for _ in range(3):
            c = gw.connect()
            c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.read_response().status == 200
            conns.append(c)
        m = wait_metric(gw, 'gateway_client_connections{state="idle"}', 3)
        assert m['gateway_client_connections{state="idle"}'] == 3, m
    finally:
        for c in conns:
            c.close()
    deadline = time.monotonic() + 3
    while scrape(gw)['gateway_client_connections{state="idle"}'] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_metrics_summed_over_workers(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, workers=2, metricsPath="/metrics"))
    before = scrape(gw)['gateway_http_requests_total{code="2xx"}']

    def one(_):
        return gw.get("/hello.txt").status

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(s == 200 for s in pool.map(one, range(60)))
    # every request is counted once, whichever worker took it; each scrape is a 2xx too, counted
    # once it has been answered (so a scrape sees the ones before it)
    scrapes = 1  # the one that read `before`
    deadline = time.monotonic() + 3
    while True:
        got = scrape(gw)['gateway_http_requests_total{code="2xx"}']
        if got == before + 60 + scrapes or time.monotonic() > deadline:
            break
        scrapes += 1
        time.sleep(0.05)
    assert got == before + 60 + scrapes, (got, before, scrapes)


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_metrics_count_http2(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, metricsPath="/metrics"))
    url = f"http://127.0.0.1:{gw.port}/hello.txt"
    for _ in range(2):
        p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", url], capture_output=True, timeout=20)
        assert p.returncode == 0 and p.stdout == b"hello world\n"
    m = wait_metric(gw, 'gateway_http_requests_by_protocol_total{protocol="HTTP/2"}', 2)
    assert m['gateway_http_requests_by_protocol_total{protocol="HTTP/2"}'] == 2


@pytest.mark.one_worker  # counts per-worker state
def test_metrics_backend_pool_and_dns(start_gateway):
    b = Backend("m")
    try:
        cfg = (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [rproxy]\n"
               f"  metricsPath: /metrics\n  proxyTo: \"http://localhost:{b.port}\"\n")
        gw = start_gateway(cfg)
        for _ in range(3):
            assert gw.get("/echo/x").status == 200
        m = wait_metric(gw, 'gateway_http_requests_total{code="2xx"}', 3)
        assert m['gateway_backend_connections{state="idle"}'] == 1, m
        assert m['gateway_backend_connections{state="active"}'] == 0, m
        assert m["gateway_backend_connects_total"] == 1, m
        assert m["gateway_backend_connections_reused_total"] == 2, m
        assert m["gateway_dns_cache_entries"] >= 1, m
        assert b.connections == 1
    finally:
        b.close()


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool (Debian package prometheus) is not installed")
def test_metrics_pass_promtool(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, metricsPath="/metrics"))
    gw.get("/hello.txt")
    gw.get("/missing")
    body = gw.get("/metrics").body
    p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert p.returncode == 0, (p.stdout + p.stderr).decode()
    assert not (p.stdout + p.stderr).strip(), (p.stdout + p.stderr).decode()  # no lint warnings either


def test_readyz_503_while_draining(start_gateway, wwwroot):
    """SIGTERM: the worker drains. A request that arrives on a connection still open then (its head
    was half sent) gets 503 from /readyz, while /healthz stays 200."""
    gw = start_gateway(make_config(wwwroot, gracefulShutdownTimeout=5000))
    ready = gw.connect()
    health = gw.connect()
    try:
        ready.send(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
        health.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.3)
        gw.signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        while "draining" not in gw.stderr():
            assert time.monotonic() < deadline, gw.stderr()
            time.sleep(0.02)
        time.sleep(0.2)
        ready.send(b"\r\n")
        health.send(b"\r\n")
        r = ready.read_response()
        assert r.status == 503 and r.body == b"draining\n", r
        assert health.read_response().status == 200
    finally:
        ready.close()
        health.close()


def test_version_lists_libraries():
    for flag in ("--version", "-v"):
        p = subprocess.run([str(GATEWAY_BIN), flag], capture_output=True, text=True, timeout=20)
        assert p.returncode == 0
        out = p.stdout
        assert re.match(r"gateway \d+\.\d+\.\d+\n", out), out
        assert re.search(r"nghttp2\s+\d+\.\d+\.\d+", out), out
        assert re.search(r"BoringSSL\s+.*BoringSSL.*API version \d+", out), out
        assert re.search(r"c-ares\s+\d+\.\d+\.\d+", out), out
        assert re.search(r"libyaml\s+\d+\.\d+\.\d+", out), out
