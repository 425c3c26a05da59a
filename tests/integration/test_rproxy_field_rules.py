"""Which header fields the reverse proxy passes on, in both directions: hop-by-hop fields in any
letter case, fields a Connection field lists wherever it stands, the fields the proxy writes itself
(Host, X-Forwarded-*, X-Real-IP), the backend's Server, and names lower-cased of every length."""
import json
import socket
import threading

import pytest

from backends import Backend
from conftest import PORT_PLACEHOLDER, RawConn


def proxy_config(url, extra=""):
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [rproxy]\n"
            f"  proxyTo: \"{url}\"\n{extra}")


@pytest.fixture
def backend():
    b = Backend("fields")
    yield b
    b.close()


# A request carrying every field the proxy must not pass on, in unusual letter cases; X-Listed comes
# before the Connection field that names it.
HOP_REQUEST = (b"GET /echo HTTP/1.1\r\nHost: public.test\r\nX-Listed: 1\r\nKEEP-ALIVE: timeout=5\r\n"
               b"Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: websocket\r\n"
               b"x-real-ip: 6.6.6.6\r\nX-FORWARDED-PROTO: gopher\r\nx-Forwarded-Host: evil\r\n"
               b"X-Forwarded-For: 6.6.6.6\r\nServer: client-side\r\nX-A-Rather-Long-Field-Name: kept\r\n"
               b"Connection: close, x-LISTED\r\n\r\n")


def echo_headers(gw):
    with RawConn(gw.port) as c:
        c.send(HOP_REQUEST)
        r = c.read_response()
    assert r.status == 200
    return json.loads(r.body)["headers"]


def test_request_hop_by_hop_and_own_fields(start_gateway, backend):
    gw = start_gateway(proxy_config(backend.url))
    pairs = echo_headers(gw)
    h = {k.lower(): v for k, v in pairs}
    for gone in ("keep-alive", "proxy-connection", "te", "trailer", "upgrade", "x-listed"):
        assert gone not in h, gone
    assert [v for k, v in pairs if k.lower() == "x-real-ip"] == ["127.0.0.1"]
    assert [v for k, v in pairs if k.lower() == "x-forwarded-for"] == ["127.0.0.1"]
    assert h["x-forwarded-proto"] == "http" and h["x-forwarded-host"] == "public.test"
    assert h["server"] == "client-side"  # Server is only dropped from responses
    assert h["x-a-rather-long-field-name"] == "kept"


def test_request_real_ip_passes_without_x_forwarded(start_gateway, backend):
    gw = start_gateway(proxy_config(backend.url, "  disableProxyXForwarded: true\n"))
    pairs = echo_headers(gw)
    h = {k.lower(): v for k, v in pairs}
    assert h["x-real-ip"] == "6.6.6.6"  # the proxy writes none, so the client's goes on
    for gone in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-listed", "te"):
        assert gone not in h, gone


def serve_once(head):
    """A backend answering one request with `head` + "ok", then closing; returns its URL."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)

    def serve():
        c, _ = s.accept()
        c.recv(65536)
        c.sendall(head + b"ok")
        c.close()
        s.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_response_hop_by_hop_server_and_names(start_gateway):
    url = serve_once(b"HTTP/1.1 200 OK\r\nX-Listed-Later: secret\r\nKeep-Alive: timeout=5\r\n"
                     b"PROXY-CONNECTION: keep-alive\r\nTrailer: X-T\r\nUpgrade: h2c\r\nSERVER: backend/1\r\n"
                     b"X-Forwarded-Host: b.test\r\nX-Real-IP: 10.0.0.1\r\nContent-Type: text/plain\r\n"
                     b"X-Mixed-CASE-Long-Field-Name: v\r\nTe: x\r\nX-Ab: short\r\n"
                     b"Connection: close, X-LISTED-later\r\nContent-Length: 2\r\n\r\n")
    gw = start_gateway(proxy_config(url))
    with RawConn(gw.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
    assert r.status == 200 and r.body == b"ok"
    names = [k for k, _ in r.headers]
    for gone in ("x-listed-later", "keep-alive", "proxy-connection", "trailer", "upgrade", "te"):
        assert gone not in [n.lower() for n in names], gone
    assert r.header_all("server") == ["gateway"]
    assert r.header("x-forwarded-host") == "b.test" and r.header("x-real-ip") == "10.0.0.1"
    # names reach the client lower-cased (as HTTP/2 needs them), whatever their length
    assert ("x-mixed-case-long-field-name", "v") in r.headers
    assert ("x-ab", "short") in r.headers and ("content-type", "text/plain") in r.headers
