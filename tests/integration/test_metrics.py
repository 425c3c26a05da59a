"""Prometheus metrics beyond the basic counters (test_admin.py): the request duration histogram,
requests by host, the response cache's results, TLS handshakes, reloads and the configuration
generation; every exposition passes `promtool check metrics`. Then scrapes under h2load load:
each one valid, counters monotonic, and the final count equal to what h2load reports."""
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from cache_origin import Origin
from conftest import GATEWAY_BIN, PORT_PLACEHOLDER, make_config
from test_admin import parse_metrics
from tls_helpers import start_tls

needs_promtool = pytest.mark.skipif(not shutil.which("promtool"),
                                    reason="promtool (Debian package prometheus) is not installed")


def promtool_check(body):
    if not shutil.which("promtool"):
        return
    p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode == 0 and not out.strip(), out


def scrape(gw):
    r = gw.get("/metrics")
    assert r.status == 200, r
    promtool_check(r.body)
    return parse_metrics(r.body.decode())


def wait_for(gw, pred, timeout=3.0):
    """Scrapes until pred(metrics) holds (a request is counted as it is logged, just after its
    response went out); returns the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(gw)
        if pred(m) or time.monotonic() > deadline:
            return m
        time.sleep(0.05)


def total(m):
    return sum(v for k, v in m.items() if k.startswith("gateway_http_requests_total{"))


def by_host(m, host):
    return sum(v for k, v in m.items() if k.startswith(f'gateway_http_requests_by_host_total{{host="{host}",'))


def bucket(m, le):
    return m[f'gateway_http_request_duration_seconds_bucket{{le="{le}"}}']


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.close()


def proxied(origin, **props):
    text = make_config(proxyTo=origin.url, metricsPath="/metrics", **props)
    return text.replace("global:\n", "global:\n  loadModules: [cache, rproxy]\n", 1)


def test_duration_histogram(start_gateway, origin):
    origin.route("/slow", delay=0.3, body=b"slow")
    origin.route("/fast", body=b"fast")
    gw = start_gateway(proxied(origin))
    assert gw.get("/slow").status == 200
    assert gw.get("/fast").status == 200
    m = wait_for(gw, lambda m: m["gateway_http_request_duration_seconds_count"] >= 3)
    les = ["0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
    counts = [bucket(m, le) for le in les]
    assert counts == sorted(counts), counts  # cumulative
    assert counts[-1] == m["gateway_http_request_duration_seconds_count"] == total(m)
    # the first scrape and /fast are quick; /slow took 0.3 s: above 0.25, within 0.5
    assert bucket(m, "0.25") == counts[-1] - 1, m
    assert bucket(m, "0.5") == counts[-1], m
    assert 0.3 <= m["gateway_http_request_duration_seconds_sum"] < 0.5 + 0.25 * counts[-1], m


def test_requests_by_host_across_reloads(start_gateway, wwwroot, tmp_path):
    hosts = '  - domain: "a.test"\n    locations:\n      - path: /sub\n        wwwroot: "{w}"\n' \
            '  - domain: "*.b.test"\n'.format(w=wwwroot)
    gw = start_gateway(make_config(wwwroot, hosts=hosts, metricsPath="/metrics"))
    assert gw.get("/hello.txt", host="a.test").status == 200
    assert gw.get("/sub/page.txt", host="a.test").status == 200  # a location counts under its host
    assert gw.get("/missing", host="x.b.test").status == 404
    assert gw.get("/hello.txt", host="elsewhere.test").status == 200
    m = wait_for(gw, lambda m: total(m) >= 5)
    assert m['gateway_http_requests_by_host_total{host="a.test",code="2xx"}'] == 2, m
    assert m['gateway_http_requests_by_host_total{host="*.b.test",code="4xx"}'] == 1, m
    assert by_host(m, "default") == total(m) - 3 >= 2, m  # elsewhere.test and the scrapes (Host: localhost)
    # a reload that puts a new host first keeps every label's counters where they were
    hosts2 = '  - domain: "c.test"\n' + hosts
    gw.config_path.write_text(make_config(wwwroot, hosts=hosts2, metricsPath="/metrics")
                              .replace(PORT_PLACEHOLDER, str(gw.port)))
    gw.signal(signal.SIGHUP)
    m = wait_for(gw, lambda m: m["gateway_config_generation"] == 2)
    assert m["gateway_config_generation"] == 2
    assert gw.get("/hello.txt", host="a.test").status == 200
    assert gw.get("/hello.txt", host="c.test").status == 200
    m2 = wait_for(gw, lambda m: by_host(m, "c.test") >= 1 and by_host(m, "a.test") >= 3)
    assert m2['gateway_http_requests_by_host_total{host="a.test",code="2xx"}'] == 3, m2
    assert m2['gateway_http_requests_by_host_total{host="c.test",code="2xx"}'] == 1, m2
    assert sum(v for k, v in m2.items() if k.startswith("gateway_http_requests_by_host_total{")) == total(m2)


def test_hosts_beyond_the_limit_count_as_other(start_gateway, wwwroot):
    hosts = "".join(f'  - domain: "h{i}.test"\n' for i in range(3))
    gw = start_gateway(make_config(wwwroot, hosts=hosts, metricsPath="/metrics", metricsMaxHosts=2))
    for i in range(3):
        assert gw.get("/hello.txt", host=f"h{i}.test").status == 200
    m = wait_for(gw, lambda m: total(m) >= 4)
    assert by_host(m, "h0.test") == 1 and by_host(m, "h1.test") == 1, m
    assert by_host(m, "other") == 1 and by_host(m, "h2.test") == 0, m


def test_max_hosts_is_checked(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("global:\n  port: 8080\n  metricsMaxHosts: 0\n")
    p = subprocess.run([str(GATEWAY_BIN), "-t", "-c", str(bad)], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0 and f"{bad}:3:20: metricsMaxHosts:" in p.stderr, p.stderr
    host = tmp_path / "host.yaml"
    host.write_text("global:\n  port: 8080\nhosts:\n  - domain: a.test\n    metricsMaxHosts: 5\n")
    p = subprocess.run([str(GATEWAY_BIN), "-t", "-c", str(host)], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0 and "metricsMaxHosts: not allowed in a host" in p.stderr, p.stderr


def test_cache_results(start_gateway, origin):
    def revalidated(method, hmap, n):
        if hmap.get("if-none-match") == '"v1"':
            return 304, [("ETag", '"v1"'), ("Cache-Control", "max-age=60")], b""
        return 200, [("ETag", '"v1"'), ("Cache-Control", "max-age=60")], b"full"
    origin.route("/c", headers=[("Cache-Control", "max-age=60")], body=b"cached")
    origin.route("/v", fn=revalidated)
    gw = start_gateway(proxied(origin))
    assert gw.get("/c").header("x-gateway-cache") == "MISS"
    assert gw.get("/c").header("x-gateway-cache") == "HIT"
    assert gw.get("/c").header("x-gateway-cache") == "HIT"
    gw.get("/v")
    r = gw.get("/v", headers={"Cache-Control": "no-cache"})  # the backend answers 304: the stored one
    assert r.header("x-gateway-cache") == "HIT" and "fwd=request" in r.header("cache-status"), r
    status, _, _ = gw.http("DELETE", "/c")
    assert status == 200
    m = wait_for(gw, lambda m: m['gateway_cache_requests_total{result="bypass"}'] >= 1)
    assert m['gateway_cache_requests_total{result="miss"}'] == 2, m
    assert m['gateway_cache_requests_total{result="hit"}'] == 2, m
    assert m['gateway_cache_requests_total{result="stale"}'] == 1, m
    assert m['gateway_cache_requests_total{result="bypass"}'] == 1, m


def tls_client(version=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version:
        ctx.maximum_version = version
    return ctx


def tls_get(ctx, port, session=None):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw_sock:
        with ctx.wrap_socket(raw_sock, server_hostname="localhost", session=session) as s:
            s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200"), data
            return s.session, s.session_reused


def test_tls_handshakes(start_gateway, wwwroot, tmp_path):
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path, extra={"metricsPath": "/metrics"})
    ctx = tls_client(ssl.TLSVersion.TLSv1_2)
    session, reused = tls_get(ctx, sport)
    assert not reused
    _, reused = tls_get(ctx, sport, session)
    assert reused
    with socket.create_connection(("127.0.0.1", sport), timeout=5) as s:  # not TLS at all
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        try:
            s.recv(4096)
        except ConnectionResetError:
            pass
    m = wait_for(gw, lambda m: m['gateway_tls_handshakes_total{result="failed"}'] >= 1)
    assert m['gateway_tls_handshakes_total{result="full"}'] == 1, m
    assert m['gateway_tls_handshakes_total{result="resumed"}'] == 1, m
    assert m['gateway_tls_handshakes_total{result="failed"}'] == 1, m


def test_reloads_and_generation(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, metricsPath="/metrics"))
    m = scrape(gw)
    assert m["gateway_config_generation"] == 1
    assert m['gateway_config_reloads_total{result="success"}'] == 0
    gw.signal(signal.SIGHUP)
    m = wait_for(gw, lambda m: m['gateway_config_reloads_total{result="success"}'] == 1)
    assert m["gateway_config_generation"] == 2, m
    good = gw.config_path.read_text()
    gw.config_path.write_text(good + "  maxConnections: lots\n")
    gw.signal(signal.SIGHUP)
    m = wait_for(gw, lambda m: m['gateway_config_reloads_total{result="failure"}'] == 1)
    assert m['gateway_config_reloads_total{result="failure"}'] == 1, m
    assert m['gateway_config_reloads_total{result="success"}'] == 1, m
    assert m["gateway_config_generation"] == 2, m  # the running configuration stayed
    gw.config_path.write_text(good)


# ---- under load ----

def counters(m):
    """The samples that may only grow: counters and histogram series."""
    return {k: v for k, v in m.items()
            if "_total" in k or "_bucket{" in k or k.endswith(("_sum", "_count"))}


def h2load(port, n, *args):
    p = subprocess.run(["h2load", "-n", str(n), "-c", "8", "-t", "1", *args, f"http://127.0.0.1:{port}/hello.txt"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("requests:"))
    done = int(line.split()[1])
    status = next(ln for ln in p.stdout.splitlines() if ln.startswith("status codes:"))
    ok = int(status.split()[2])
    return done, ok


@needs_promtool
@pytest.mark.skipif(not shutil.which("h2load"), reason="h2load (Debian package nghttp2-client) is not installed")
def test_scrapes_under_load(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, workers=2, metricsPath="/metrics"))
    before = scrape(gw)
    scrapes = [before]
    stop = threading.Event()
    errors = []

    def scraper():
        try:
            while not stop.is_set():
                scrapes.append(scrape(gw))  # each one checked by promtool
                time.sleep(0.1)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    t = threading.Thread(target=scraper)
    t.start()
    try:
        sent = 0
        for args in (["--h1"], []):  # HTTP/1.1 with keep-alive, then HTTP/2 (h2c)
            done, ok = h2load(gw.port, 20000, *args)
            assert done == ok == 20000
            sent += done
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert len(scrapes) >= 5, len(scrapes)
    for a, b in zip(scrapes, scrapes[1:]):
        ca, cb = counters(a), counters(b)
        assert set(ca) <= set(cb), set(ca) - set(cb)
        assert all(cb[k] >= ca[k] for k in ca), {k: (ca[k], cb[k]) for k in ca if cb[k] < ca[k]}
    own = len(scrapes)  # the scrapes since `before`, and `before` itself, are requests too
    while True:  # a scrape does not count itself: it is logged after its answer
        m = scrape(gw)
        if total(m) - total(before) >= sent + own:
            break
        own += 1
        time.sleep(0.05)
    assert total(m) - total(before) == sent + own, (total(m) - total(before), sent, own)
    assert m['gateway_http_requests_total{code="2xx"}'] - before['gateway_http_requests_total{code="2xx"}'] \
        == sent + own
    assert m["gateway_http_request_duration_seconds_count"] == total(m)
    assert m['gateway_http_requests_by_protocol_total{protocol="HTTP/2"}'] >= 20000
