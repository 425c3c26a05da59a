"""The forward proxy (fproxy): absolute-form http:// requests, CONNECT tunnels, destination policy.

Every destination here is on loopback; loopback is refused by default, so the configs allow
127.0.0.1 explicitly (and the refusal tests leave it out)."""
import hashlib
import json
import resource
import socket
import subprocess
import time
from pathlib import Path

import pytest

from backends import Backend
from conftest import PORT_PLACEHOLDER
from tcp_echo import EchoServer
from test_backend_tls import TlsBackend
from tls_helpers import make_cert


def config(extra="", modules="[fproxy]"):
    return f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: {modules}\n{extra}"


def allow_config(ports, allow=("127.0.0.1",), extra=""):
    allow_list = ", ".join(f'"{a}"' for a in allow)
    port_list = ", ".join(str(p) for p in ports)
    return config(f"  forwardProxyAllow: [{allow_list}]\n  forwardProxyPorts: [{port_list}]\n{extra}")


def curl(*args, timeout=30):
    p = subprocess.run(["curl", "-sS", "--noproxy", "", "--max-time", str(timeout - 5), *args],
                       capture_output=True, timeout=timeout)
    return p


def curl_status(*args):
    p = curl("-o", "/dev/null", "-w", "%{http_code}", *args)
    return p.stdout.decode()


@pytest.fixture
def backend():
    b = Backend("fwd")
    yield b
    b.close()


@pytest.fixture
def tls_backend(tmp_path):
    cert, key = make_cert(tmp_path / "certs", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    b = TlsBackend(cert, key)
    yield b
    b.close()


def test_absolute_form_by_name_and_ip(start_gateway, backend):
    gw = start_gateway(allow_config([backend.port]))
    for host in ("localhost", "127.0.0.1"):
        p = curl("-x", f"http://127.0.0.1:{gw.port}", f"http://{host}:{backend.port}/echo?q=1")
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        assert doc["backend"] == "fwd"
        assert doc["target"] == "/echo?q=1"  # origin-form towards the origin
        names = {k.lower(): v for k, v in doc["headers"]}
        assert names["host"] == f"{host}:{backend.port}"
        assert "proxy-connection" not in names and "proxy-authorization" not in names


def test_hop_by_hop_and_proxy_headers_removed_and_body_forwarded(start_gateway, backend):
    gw = start_gateway(allow_config([backend.port]))
    body = b"x" * 100000
    with gw.connect() as c:
        for _ in range(3):  # keep-alive towards the client, pooled towards the origin
            c.send(f"POST http://127.0.0.1:{backend.port}/echo HTTP/1.1\r\nHost: 127.0.0.1:{backend.port}\r\n"
                   f"Proxy-Authorization: Basic Zm9vOmJhcg==\r\nProxy-Connection: keep-alive\r\n"
                   f"Connection: X-Drop\r\nX-Drop: 1\r\nX-Keep: 2\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                   + body)
            r = c.read_response()
            assert r.status == 200, r
            doc = json.loads(r.body)
            names = {k.lower(): v for k, v in doc["headers"]}
            assert names.get("x-keep") == "2"
            for n in ("x-drop", "proxy-authorization", "proxy-connection", "connection"):
                assert n not in names
            assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert backend.connections == 1  # the origin connection was kept alive and reused


def test_https_absolute_form_is_400(start_gateway):
    gw = start_gateway(allow_config([443]))
    r = gw.raw(b"GET https://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 400 "), r


def test_connect_tunnel_to_tls_backend(start_gateway, tls_backend):
    gw = start_gateway(allow_config([tls_backend.port]))
    p = curl("-p", "-x", f"http://127.0.0.1:{gw.port}", "-k", f"https://localhost:{tls_backend.port}/echo")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["backend"] == "tls"


def test_connect_answer_has_no_framing(start_gateway, backend):
    gw = start_gateway(allow_config([backend.port]))
    with gw.connect() as c:
        c.send(f"CONNECT 127.0.0.1:{backend.port} HTTP/1.1\r\nHost: 127.0.0.1:{backend.port}\r\n\r\n".encode())
        _, status, _, headers, _ = c.read_head()
        assert status == 200
        names = {k.lower() for k, _ in headers}
        assert "content-length" not in names and "transfer-encoding" not in names
        # plain HTTP through the tunnel: the origin sees exactly our bytes
        c.send(b"GET /echo/raw HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and json.loads(r.body)["target"] == "/echo/raw"


def test_long_transfer_through_tunnel(start_gateway, tls_backend, tmp_path):
    gw = start_gateway(allow_config([tls_backend.port]))
    n = 10 * 1024 * 1024
    out = tmp_path / "big"
    p = curl("-p", "-x", f"http://127.0.0.1:{gw.port}", "-k", "-o", str(out),
             f"https://127.0.0.1:{tls_backend.port}/bytes/{n}", timeout=60)
    assert p.returncode == 0, p.stderr
    data = out.read_bytes()
    assert len(data) == n
    pattern = bytes(i % 251 for i in range(251 * 4096))
    assert data == (pattern * (n // len(pattern) + 1))[:n]


def test_large_upload_through_tunnel(start_gateway, backend):
    gw = start_gateway(allow_config([backend.port]))
    body = bytes(range(256)) * (4 * 1024 * 1024 // 256)
    with gw.connect(timeout=30) as c:
        c.send(f"CONNECT 127.0.0.1:{backend.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert c.read_head()[1] == 200
        c.send(f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        doc = json.loads(c.read_response().body)
        assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_loopback_refused_by_default(start_gateway, backend):
    gw = start_gateway(config(f"  forwardProxyPorts: [{backend.port}]\n"))
    for host in ("127.0.0.1", "localhost"):  # a name resolving to loopback is refused too
        assert curl_status("-x", f"http://127.0.0.1:{gw.port}", f"http://{host}:{backend.port}/echo") == "403"
    assert backend.requests == 0
    assert "private or special address" in gw.stderr()


def test_denied_destination(start_gateway, backend):
    gw = start_gateway(allow_config([backend.port], extra='  forwardProxyDeny: ["localhost"]\n'))
    assert curl_status("-x", f"http://127.0.0.1:{gw.port}", f"http://localhost:{backend.port}/echo") == "403"
    assert curl_status("-x", f"http://127.0.0.1:{gw.port}", f"http://127.0.0.1:{backend.port}/echo") == "200"
    gw2 = start_gateway(allow_config([backend.port], allow=("127.0.0.2",)))
    assert curl_status("-x", f"http://127.0.0.1:{gw2.port}", f"http://127.0.0.1:{backend.port}/echo") == "403"


def test_connect_port_not_allowed(start_gateway, backend):
    gw = start_gateway(allow_config([443]))
    with gw.connect() as c:
        c.send(f"CONNECT 127.0.0.1:{backend.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert c.read_head()[1] == 403
    assert backend.connections == 0
    assert "port not in forwardProxyPorts" in gw.stderr()


def test_connect_without_fproxy_is_501(start_gateway):
    gw = start_gateway(config(modules="[rproxy]"))
    with gw.connect() as c:
        c.send(b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n")
        assert c.read_response().status == 501


def test_connect_refused_origin_is_502(start_gateway):
    from conftest import free_port
    port = free_port()
    gw = start_gateway(allow_config([port]))
    with gw.connect() as c:
        c.send(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert c.read_response().status in (502, 503)


def test_origin_form_passes_through(start_gateway, wwwroot):
    gw = start_gateway(config(f"  wwwroot: \"{wwwroot}\"\n"))
    assert gw.get("/hello.txt").body == b"hello world\n"



def test_proxy_authorization(start_gateway, backend):
    sha1 = "{SHA}7YX78Oz8LXLfkqQdW9a5bxXYgCQ="  # s-secret
    users = f'  forwardProxyAuth: true\n  users:\n    - name: "sam"\n      pass: "{sha1}"\n'
    gw = start_gateway(allow_config([backend.port], extra=users))
    url = f"http://127.0.0.1:{backend.port}/echo"
    with gw.connect() as c:
        c.send(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        r = c.read_response()
        assert r.status == 407, r
        assert r.header("proxy-authenticate").startswith("Basic ")
    assert curl_status("-x", f"http://127.0.0.1:{gw.port}", "-U", "sam:wrong", url) == "407"
    p = curl("-x", f"http://127.0.0.1:{gw.port}", "-U", "sam:s-secret", "-i", url)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(b"HTTP/1.1 200"), p.stdout + gw.stderr().encode()
    p.stdout = p.stdout.split(b"\r\n\r\n", 1)[1]
    names = {k.lower() for k, _ in json.loads(p.stdout)["headers"]}
    assert "proxy-authorization" not in names  # the credentials stop at the proxy
    assert backend.requests == 1


# ---- raw TCP tunnels from HTTP/1.1 clients ----


@pytest.fixture
def echo():
    e = EchoServer()
    yield e
    e.close()


def open_tunnel(gw, port, timeout=5.0):
    c = gw.connect(timeout=timeout)
    c.send(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert c.read_head()[1] == 200
    return c


def test_tunnel_target_that_closes_closes_the_client(start_gateway, echo):
    gw = start_gateway(allow_config([echo.port]))
    with open_tunnel(gw, echo.port) as c:
        c.send(b"abc")
        assert c._read_exact(3) == b"abc"
        c.send(b"!close")
        assert c.closed_by_server(5.0)
    with open_tunnel(gw, echo.port) as c:  # a reset ends the client's connection too
        c.send(b"!reset")
        assert c.closed_by_server(5.0)
    assert "backend closed" in gw.stderr()


def test_idle_tunnel_closed_busy_one_kept(start_gateway, echo):
    gw = start_gateway(allow_config([echo.port], extra="  forwardProxyIdleTimeout: 600\n"))
    with open_tunnel(gw, echo.port) as busy, open_tunnel(gw, echo.port) as idle:
        start = time.monotonic()
        for i in range(8):  # a byte each way every 0.25 s: never idle for 0.6 s
            busy.send(b"%d" % i)
            assert busy._read_exact(1) == b"%d" % i
            time.sleep(0.25)
        assert idle.closed_by_server(5.0) and time.monotonic() - start < 8
        busy.send(b"z")
        assert busy._read_exact(1) == b"z"


def settled_count(fds):
    """Descriptors of the gateway once the count holds still (the start-up probe's connection
    may still be open right after the start)."""
    last = -1
    while True:
        now = len(list(fds.iterdir()))
        if now == last:
            return now
        last = now
        time.sleep(0.2)


def test_thousand_concurrent_tunnels(start_gateway, echo):
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * n + 256  # our client sockets and the echo server's, both in this process
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    gw = start_gateway(allow_config([echo.port]))
    fds = Path(f"/proc/{gw.proc.pid}/fd")
    baseline = settled_count(fds)
    started = time.monotonic()
    socks = []
    try:
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=15)
            s.sendall(f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            socks.append(s)
        for s in socks:
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)  # byte by byte: nothing after the head may be swallowed
            assert head.startswith(b"HTTP/1.1 200 "), head
        for i, s in enumerate(socks):
            s.sendall(b"tunnel-%04d" % i)
        for i, s in enumerate(socks):
            got = b""
            while len(got) < 11:
                got += s.recv(11 - len(got))
            assert got == b"tunnel-%04d" % i
        assert echo.open_connections == n  # all open at once
        assert len(list(fds.iterdir())) >= baseline + 2 * n
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 10
    while (len(list(fds.iterdir())) > baseline or echo.open_connections) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(list(fds.iterdir())) == baseline, "the gateway kept descriptors of closed tunnels"
    assert echo.open_connections == 0
    assert time.monotonic() - started < 20


# ---- located configuration errors ----


def check_config(gateway_bin, tmp_path, body):
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(config(body).replace(PORT_PLACEHOLDER, "18080"))  # -t binds nothing
    p = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=15)
    return cfg, p


@pytest.mark.parametrize("body, line, column, prop, what", [
    ('  forwardProxyAllow: ["10.0.0.0/33"]\n', 5, 23, "forwardProxyAllow", "'10.0.0.0/33' is neither"),
    ('  forwardProxyAllow: ["ok.example", "example.com:80"]\n', 5, 37, "forwardProxyAllow", "'example.com:80'"),
    ('  forwardProxyDeny:\n    - "*.example.com"\n    - "bad host"\n', 7, 7, "forwardProxyDeny", "'bad host'"),
    ('  forwardProxyDeny: ["*foo"]\n', 5, 22, "forwardProxyDeny", "'*foo'"),
    ('  forwardProxyDeny: [""]\n', 5, 22, "forwardProxyDeny", "entry 1 is empty"),
    ('  forwardProxyAllow: "10.0.0.0/8"\n', 5, 22, "forwardProxyAllow", "expected a list"),
    ('  forwardProxyPorts: [80, 0]\n', 5, 27, "forwardProxyPorts", "'0' is not a port"),
    ('  forwardProxyPorts: [70000]\n', 5, 23, "forwardProxyPorts", "'70000' is not a port"),
    ('  forwardProxyPorts: [https]\n', 5, 23, "forwardProxyPorts", "'https' is not a port"),
    ('  forwardProxyPorts: [{a: 1}]\n', 5, 23, "forwardProxyPorts", "entry 1 is not a port"),
    ('  forwardProxyPorts: 443\n', 5, 22, "forwardProxyPorts", "expected a list"),
    ('  forwardProxyAuth: yes\n', 5, 21, "forwardProxyAuth", "expected a boolean"),
    ('  forwardProxyIdleTimeout: 0\n', 5, 28, "forwardProxyIdleTimeout", "out of range"),
    ('  forwardProxyIdleTimeout: soon\n', 5, 28, "forwardProxyIdleTimeout", "expected an integer"),
])
def test_bad_forward_proxy_settings_are_located(gateway_bin, tmp_path, body, line, column, prop, what):
    cfg, p = check_config(gateway_bin, tmp_path, body)
    assert p.returncode == 1, (p.stdout, p.stderr)
    prefix = f"{cfg}:{line}:{column}: {prop}: "
    hits = [ln for ln in p.stderr.splitlines() if ln.startswith(prefix)]
    assert hits and what in hits[0], p.stderr


def test_good_forward_proxy_settings_pass(gateway_bin, tmp_path):
    body = ('  forwardProxyAllow: ["*.example.com", "example.org", "10.0.0.0/8", "fd00::/8", "*"]\n'
            '  forwardProxyDeny: ["169.254.169.254", "bad.example.com", "::1"]\n'
            '  forwardProxyPorts: [80, "443", 8443]\n  forwardProxyIdleTimeout: 60000\n')
    _, p = check_config(gateway_bin, tmp_path, body)
    assert p.returncode == 0, p.stderr


def test_tunnel_bytes_in_access_log(start_gateway, echo, tmp_path):
    log = tmp_path / "access.log"
    gw = start_gateway(allow_config([echo.port], extra=f'  logFilePath: "{log}"\n'))
    with open_tunnel(gw, echo.port) as c:
        c.send(b"0123456789")
        assert c._read_exact(10) == b"0123456789"
        c.sock.shutdown(socket.SHUT_WR)  # an HTTP/1.1 client ending its side ends the tunnel
        assert c.closed_by_server(5.0)
    deadline, line = time.monotonic() + 5, ""
    while time.monotonic() < deadline and not line:
        line = next((ln for ln in (log.read_text() if log.exists() else "").splitlines() if "CONNECT" in ln), "")
        time.sleep(0.1)
    assert f'"CONNECT 127.0.0.1:{echo.port} HTTP/1.1" 200 10 ' in line, line
