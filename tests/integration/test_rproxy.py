"""Reverse proxy (rproxy) against real backends: pooling, balancing, streaming, failures."""
import hashlib
import json
import socket
import subprocess
import time

import pytest

from backends import Backend
from conftest import PORT_PLACEHOLDER


@pytest.fixture
def backends():
    made = []

    def make(n=1):
        for i in range(n):
            made.append(Backend(f"b{len(made)}"))
        return made[-n:] if n > 1 else made[-1]

    yield make
    for b in made:
        b.close()


def proxy_config(urls, extra=""):
    if isinstance(urls, str):
        urls = [urls]
    lines = "\n".join(f"    - \"{u}\"" for u in urls)
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [rproxy]\n"
            f"  proxyTo:\n{lines}\n{extra}")


def test_get_through_proxy(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url))
    r = gw.get("/echo/a?x=1", host="site.test")
    assert r.status == 200
    doc = json.loads(r.body)
    assert doc["target"] == "/echo/a?x=1"
    h = {k.lower(): v for k, v in doc["headers"]}
    assert h["host"] == f"127.0.0.1:{b.port}"
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-host"] == "site.test"
    assert "connection" not in h


def test_base_path_and_normalised_path(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url + "/echo/base/"))
    r = gw.get("/a/../b/%2e%2e/c?q")
    assert json.loads(r.body)["target"] == "/echo/base/c?q"


def test_keepalive_reuse(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url))
    with gw.connect() as c:
        for i in range(20):
            c.send(b"GET /bytes/100 HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and len(r.body) == 100
    assert b.requests == 20
    assert b.connections == 1, "pooled backend connection was not reused"


def test_request_bodies(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url))
    body = bytes(range(256)) * 4000  # 1 MB
    status, _, data = gw.http("POST", "/echo", body=body, headers={"Content-Type": "application/octet-stream"})
    assert status == 200
    doc = json.loads(data)
    assert doc["body_len"] == len(body)
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()
    # chunked upload of unknown length is sent on chunked
    with gw.connect() as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        doc = json.loads(c.read_response().body)
        assert doc["body_len"] == 11
        h = {k.lower(): v for k, v in doc["headers"]}
        assert h.get("transfer-encoding") == "chunked"


def test_large_download_streams(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url))
    n = 20 * 1024 * 1024
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                          f"http://127.0.0.1:{gw.port}/bytes/{n}"], capture_output=True, text=True, timeout=60)
    assert out.stdout == f"200 {n}"


def test_chunked_and_close_delimited_responses(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url))
    r = gw.get("/chunked/50/1000")
    assert r.status == 200 and len(r.body) == 50000
    r = gw.get("/close/5000")
    assert r.status == 200 and r.body == bytes(i % 251 for i in range(5000))
    status, headers, _ = gw.http("HEAD", "/bytes/1234")
    assert status == 200 and headers["content-length"] == "1234"


def test_load_spread_over_three_backends(start_gateway, backends):
    bs = backends(3)
    gw = start_gateway(proxy_config([b.url for b in bs]))
    seen = {}
    for _ in range(60):
        name = json.loads(gw.get("/echo").body)["backend"]
        seen[name] = seen.get(name, 0) + 1
    assert set(seen) == {b.name for b in bs}
    assert min(seen.values()) >= 5


def test_backend_refused_is_503(start_gateway):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    gw = start_gateway(proxy_config(f"http://127.0.0.1:{port}"))
    r = gw.get("/")
    assert r.status == 503


def test_backend_dies_mid_response(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url))
    with gw.connect() as c:
        c.send(b"GET /die HTTP/1.1\r\nHost: x\r\n\r\n")
        status = c.read_head()[1]
        assert status == 200
        data = c.read_until_close(timeout=5)
        assert len(data) < 100000  # truncated, then the connection closes: never a clean end
    r = gw.get("/echo")
    assert r.status == 200


def test_backend_never_answers_is_504(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url, "  proxyReadTimeout: 500\n"))
    t0 = time.monotonic()
    r = gw.get("/never", timeout=10)
    assert r.status == 504
    assert time.monotonic() - t0 < 5


def test_bad_backend_response_is_502(start_gateway):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    port = s.getsockname()[1]
    import threading

    def serve():
        c, _ = s.accept()
        c.recv(65536)
        c.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        c.close()

    threading.Thread(target=serve, daemon=True).start()
    gw = start_gateway(proxy_config(f"http://127.0.0.1:{port}"))
    assert gw.get("/").status == 502
    s.close()


def test_dns_name_localhost(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(f"http://localhost:{b.port}"))
    r = gw.get("/echo")
    assert r.status == 200


def test_unresolvable_name_is_503(start_gateway):
    gw = start_gateway(proxy_config("http://no-such-host.invalid:80", "  dnsTimeout: 300\n  dnsTries: 1\n"))
    r = gw.get("/", timeout=10)
    assert r.status == 503


def test_sse_streams_each_event(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url))
    with gw.connect(timeout=5) as c:
        c.send(b"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_head()[1] == 200
        t0 = time.monotonic()
        first = c.buf or c.sock.recv(4096)
        assert b"event 0" in first
        assert time.monotonic() - t0 < 0.15  # forwarded at once, not buffered until the end


def test_x_forwarded_disabled(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url, "  disableProxyXForwarded: true\n"))
    h = {k.lower() for k, _ in json.loads(gw.get("/echo").body)["headers"]}
    assert "x-forwarded-for" not in h


def test_client_hop_headers_not_forwarded(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url))
    r = gw.get("/echo", headers={"Connection": "keep-alive, X-Secret", "X-Secret": "1", "X-Forwarded-For": "6.6.6.6"})
    h = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
    assert "x-secret" not in h
    assert h["x-forwarded-for"] == "127.0.0.1"


def test_intercept_errors(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url, "  proxyInterceptErrors: true\n"))
    r = gw.get("/status/404")
    assert r.status == 404 and b"<title>404 Not Found</title>" in r.body
    assert gw.get("/status/200").body == b"status 200\n"
    gw2 = start_gateway(proxy_config(b.url))
    assert gw2.get("/status/404").body == b"status 404\n"


def test_header_rules_and_keep_host(start_gateway, backends):
    b = backends()
    extra = ("  proxyKeepHost: true\n"
             "  proxySetRequestHeaders: {X-Env: prod, User-Agent: gateway-test}\n"
             "  proxyRemoveRequestHeaders: [X-Drop]\n"
             "  proxySetResponseHeaders: {X-Served-By: edge}\n"
             "  proxyRemoveResponseHeaders: [X-Backend]\n")
    gw = start_gateway(proxy_config(b.url, extra))
    r = gw.get("/echo", host="public.test", headers={"X-Drop": "1", "User-Agent": "curl"})
    h = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
    assert h["host"] == "public.test"
    assert h["x-env"] == "prod" and h["user-agent"] == "gateway-test"
    assert "x-drop" not in h
    r = gw.get("/status/200")
    assert r.header("x-served-by") == "edge" and r.header("x-backend") is None


def test_fail_over_to_a_live_target(start_gateway, backends):
    b = backends()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    gw = start_gateway(proxy_config([f"http://127.0.0.1:{dead}", b.url]))
    for _ in range(10):
        assert gw.get("/echo").status == 200


def group_config(servers, balance, extra_group="", extra_global=""):
    srv = "\n".join(f"      - {s}" for s in servers)
    return (f"upstreams:\n  api:\n    balance: {balance}\n{extra_group}    servers:\n{srv}\n"
            f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [rproxy]\n"
            f"  proxyTo: http://api\n{extra_global}")


def spread(gw, n=60, **kw):
    seen = {}
    for _ in range(n):
        name = json.loads(gw.get("/echo", **kw).body)["backend"]
        seen[name] = seen.get(name, 0) + 1
    return seen


@pytest.mark.one_worker  # round-robin position is per worker
def test_group_round_robin_with_weights(start_gateway, backends):
    bs = backends(3)
    servers = [f"{{url: \"{bs[0].url}\", weight: 2}}", f"\"{bs[1].url}\"", f"\"{bs[2].url}\""]
    gw = start_gateway(group_config(servers, "roundRobin"))
    seen = spread(gw, 40)
    assert seen == {bs[0].name: 20, bs[1].name: 10, bs[2].name: 10}


def test_group_hash_on_header_is_sticky(start_gateway, backends):
    bs = backends(3)
    gw = start_gateway(group_config([f"\"{b.url}\"" for b in bs], "hash", "    hashKey: header:X-User\n"))
    owners = set()
    for user in ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar"):
        seen = spread(gw, 5, headers={"X-User": user})
        assert len(seen) == 1  # one user always reaches the same backend
        owners |= set(seen)
    assert len(owners) >= 2  # and users are spread


def test_group_least_connections_and_two_choices(start_gateway, backends):
    bs = backends(2)
    for balance in ("leastConnections", "twoRandomChoices", "random"):
        gw = start_gateway(group_config([f"\"{b.url}\"" for b in bs], balance))
        seen = spread(gw, 30)
        assert sum(seen.values()) == 30


def test_group_errors_are_located(gateway_bin, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("upstreams:\n  api:\n    balance: fastest\n    servers: [\"http://127.0.0.1:1\"]\n")
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 1 and f"{cfg}:3:14: balance:" in out.stderr
    cfg.write_text("upstreams:\n  api:\n    servers: []\n")
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 1 and "needs a non-empty 'servers' list" in out.stderr


def test_passive_health_skips_failing_target(start_gateway, backends):
    b = backends()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    extra = "  enableLoadBalancerHealthCheck: true\n  loadBalancerHealthCheckMaximumFails: 1\n"
    gw = start_gateway(proxy_config([f"http://127.0.0.1:{dead}", b.url], extra))
    for _ in range(20):
        assert gw.get("/echo").status == 200
    # after the dead target failed twice it is skipped: the live one serves without fail-over
    before = b.requests
    spread(gw, 10)
    assert b.requests - before == 10


@pytest.mark.one_worker  # back-off is per worker (its pool)
def test_refusing_backend_is_backed_off(start_gateway):
    import threading
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    port = s.getsockname()[1]
    gw = start_gateway(proxy_config(f"http://127.0.0.1:{port}"))
    assert gw.get("/").status == 503
    s.listen(8)
    accepted = []

    def serve():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            accepted.append(c)
            c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    threading.Thread(target=serve, daemon=True).start()
    assert gw.get("/").status == 503  # still paused: no connection attempt
    assert not accepted
    time.sleep(0.3)
    assert gw.get("/").status == 200  # the pause is short at first
    s.close()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_100mib_both_ways_with_flat_memory(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url, "  maxRequestBodyBytes: 209715200\n"))
    n = 100 * 1024 * 1024
    base = rss_kb(gw.proc.pid)
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                          f"http://127.0.0.1:{gw.port}/bytes/{n}"], capture_output=True, text=True, timeout=120)
    assert out.stdout == f"200 {n}"
    out = subprocess.run(f"head -c {n} /dev/zero | curl -s -T - -H 'Transfer-Encoding: chunked' -X POST "
                         f"http://127.0.0.1:{gw.port}/echo", shell=True, capture_output=True, timeout=120)
    assert json.loads(out.stdout)["body_len"] == n
    grown = rss_kb(gw.proc.pid) - base
    assert grown < 20 * 1024, f"gateway grew by {grown} KiB moving 200 MiB"  # buffers, not bodies


def test_chunked_upload_over_the_limit_is_413(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url, "  maxRequestBodyBytes: 1000\n"))
    with gw.connect() as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"800\r\n" + b"x" * 2048 + b"\r\n")
        r = c.read_response()
        assert r.status == 413 and r.header("connection") == "close"


def test_backend_date_kept_server_and_connection_listed_dropped(start_gateway):
    import threading
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)

    def serve():
        c, _ = s.accept()
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nServer: backend/1\r\n"
                  b"Connection: close, X-Hop\r\nX-Hop: secret\r\nX-Keep: yes\r\nContent-Length: 2\r\n\r\nok")
        c.close()

    threading.Thread(target=serve, daemon=True).start()
    gw = start_gateway(proxy_config(f"http://127.0.0.1:{s.getsockname()[1]}"))
    with gw.connect() as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
    s.close()
    assert r.status == 200 and r.body == b"ok"
    assert r.header_all("date") == ["Mon, 01 Jan 2024 00:00:00 GMT"]
    assert r.header_all("server") == ["gateway"]
    assert r.header("x-hop") is None and r.header("x-keep") == "yes"


def test_websocket_tunnel(start_gateway, backends):
    b = backends()
    gw = start_gateway(proxy_config(b.url))
    with gw.connect() as c:
        c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        version, status, _, headers, _ = c.read_head()
        h = {k.lower(): v for k, v in headers}
        assert status == 101
        assert h["upgrade"] == "websocket" and h["connection"].lower() == "upgrade"
        assert h["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        for msg in (b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", b"x" * 100000):
            c.send(msg)
            got = b""
            while len(got) < len(msg):
                got += c.buf or c.sock.recv(65536)
                c.buf = b""
            assert got == msg
    # the tunnel ended with the client; the gateway still serves
    assert gw.get("/echo").status == 200


def test_one_date_on_http2_too(start_gateway):
    import threading
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)

    def serve():
        c, _ = s.accept()
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nok")
        c.close()

    threading.Thread(target=serve, daemon=True).start()
    gw = start_gateway(proxy_config(f"http://127.0.0.1:{s.getsockname()[1]}"))
    out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "--http2-prior-knowledge",
                          f"http://127.0.0.1:{gw.port}/"], capture_output=True, text=True, timeout=20)
    s.close()
    dates = [l for l in out.stdout.lower().splitlines() if l.startswith("date:")]
    assert dates == ["date: mon, 01 jan 2024 00:00:00 gmt"]
