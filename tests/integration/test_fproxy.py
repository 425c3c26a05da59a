"""The forward proxy (fproxy): absolute-form http:// requests, CONNECT tunnels, destination policy.

Every destination here is on loopback; loopback is refused by default, so the configs allow
127.0.0.1 explicitly (and the refusal tests leave it out)."""
import hashlib
import json
import subprocess

import pytest

from backends import Backend
from conftest import PORT_PLACEHOLDER
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
    r = gw.raw(b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 501 "), r


def test_connect_refused_origin_is_502(start_gateway):
    from conftest import free_port
    port = free_port()
    gw = start_gateway(allow_config([port]))
    r = gw.raw(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert r.startswith(b"HTTP/1.1 502 ") or r.startswith(b"HTTP/1.1 503 "), r


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
