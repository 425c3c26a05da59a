"""Size limits (414, 431, 413) and timeouts (header read, keep-alive idle, send)."""
import socket
import time

import pytest

from conftest import RawConn, make_config


def refused(gw, data, status_line, timeout=5):
    with RawConn(gw.port, timeout=timeout) as c:
        c.send(data)
        r = c.read_response()
        assert r.status_line == status_line, r
        assert r.has_token("connection", "close"), r
        assert c.closed_by_server(3)
    gw.assert_alive()
    return r


def test_414_default_limit(gateway):
    target = "/" + "a" * 9000
    refused(gateway, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), "HTTP/1.1 414 URI Too Long")


def test_414_before_the_head_is_complete(gateway):
    # the limit is enforced while the target is still arriving
    with RawConn(gateway.port) as c:
        c.send(b"GET /" + b"a" * 9000)
        r = c.read_response()
        assert r.status_line == "HTTP/1.1 414 URI Too Long"
        assert c.closed_by_server(3)


def test_414_configured_limit(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, maxRequestTargetBytes=64))
    ok = "/hello.txt?" + "q" * (64 - len("/hello.txt?"))
    assert len(ok) == 64
    r = gw.get(ok)
    assert r.status == 200 and r.body == b"hello world\n"
    refused(gw, f"GET {ok}x HTTP/1.1\r\nHost: x\r\n\r\n".encode(), "HTTP/1.1 414 URI Too Long")


def test_431_head_too_large(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, maxRequestHeaderBytes=2048))
    r = gw.get("/hello.txt", headers={"X-Fill": "f" * 1500})
    assert r.status == 200
    refused(gw, b"GET / HTTP/1.1\r\nHost: x\r\nX-Fill: " + b"f" * 3000 + b"\r\n\r\n",
            "HTTP/1.1 431 Request Header Fields Too Large")


def test_431_head_too_large_without_end(start_gateway, wwwroot):
    """A head that never ends is refused as soon as it exceeds the limit."""
    gw = start_gateway(make_config(wwwroot, maxRequestHeaderBytes=2048))
    with RawConn(gw.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Fill: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n" * 100)
        r = c.read_response()
        assert r.status_line == "HTTP/1.1 431 Request Header Fields Too Large"
        assert c.closed_by_server(3)


def test_431_default_limit(gateway):
    refused(gateway, b"GET / HTTP/1.1\r\nHost: x\r\nX-Fill: " + b"f" * 20000 + b"\r\n\r\n",
            "HTTP/1.1 431 Request Header Fields Too Large")


def test_431_too_many_headers(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, maxRequestHeaders=10))
    eight = "".join(f"X-H{i}: {i}\r\n" for i in range(8))
    with RawConn(gw.port) as c:  # Host + 8 + Connection = 10 fields: accepted
        c.send(f"GET /hello.txt HTTP/1.1\r\nHost: x\r\n{eight}Connection: close\r\n\r\n".encode())
        assert c.read_response().status == 200
    ten = "".join(f"X-H{i}: {i}\r\n" for i in range(10))
    refused(gw, f"GET / HTTP/1.1\r\nHost: x\r\n{ten}\r\n".encode(), "HTTP/1.1 431 Request Header Fields Too Large")


def test_431_too_many_headers_default(gateway):
    many = "".join(f"X-H{i}: {i}\r\n" for i in range(150))
    refused(gateway, f"GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode(), "HTTP/1.1 431 Request Header Fields Too Large")


def test_413_content_length_over_limit(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, maxRequestBodyBytes=1000))
    with RawConn(gw.port) as c:
        c.send(b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
        r = c.read_response()
        assert r.status_line == "HTTP/1.1 413 Content Too Large"
        assert b"<title>413 Content Too Large</title>" in r.body
        assert c.closed_by_server(3)
    # at the limit: not 413 (the static handler answers 405 for POST)
    with RawConn(gw.port) as c:
        c.send(b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"b" * 1000)
        assert c.read_response().status == 405
    gw.assert_alive()


def test_413_announces_close(start_gateway, wwwroot):
    """The server closes after a 413 whose body it did not read, so the response must say so."""
    gw = start_gateway(make_config(wwwroot, maxRequestBodyBytes=1000))
    with RawConn(gw.port) as c:
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n")
        r = c.read_response()
        assert r.status == 413
        assert c.closed_by_server(3)
        assert r.has_token("connection", "close"), r


def test_413_per_location(start_gateway, wwwroot):
    hosts = f"""\
  - domain: localhost
    locations:
      - path: /upload
        maxRequestBodyBytes: 10
"""
    gw = start_gateway(make_config(wwwroot, hosts=hosts))
    with RawConn(gw.port) as c:
        c.send(b"POST /upload/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\n01234567890")
        assert c.read_response().status == 413
    with RawConn(gw.port) as c:
        c.send(b"POST /other HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\n01234567890")
        assert c.read_response().status == 405


def test_408_slow_header(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, headerReadTimeout=500))
    with RawConn(gw.port) as c:
        t0 = time.monotonic()
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n")
        r = c.read_response()
        elapsed = time.monotonic() - t0
        assert r.status_line == "HTTP/1.1 408 Request Timeout"
        assert r.has_token("connection", "close")
        assert c.closed_by_server(3)
    assert 0.4 <= elapsed < 3.0, elapsed
    gw.assert_alive()


def test_408_slowloris_trickle(start_gateway, wwwroot):
    """The header timeout bounds the whole head, not the gap between bytes."""
    gw = start_gateway(make_config(wwwroot, headerReadTimeout=500))
    with RawConn(gw.port) as c:
        t0 = time.monotonic()
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        got = None
        for i in range(40):
            try:
                c.send(f"X-{i}: y\r\n".encode())
            except OSError:
                break
            c.sock.settimeout(0.1)
            try:
                c._fill()
            except (socket.timeout, TimeoutError):
                continue
            except EOFError:
                break
            if b"\r\n\r\n" in c.buf:
                break
        c.sock.settimeout(3)
        got = c.read_response()
        elapsed = time.monotonic() - t0
        assert got.status == 408
    assert elapsed < 2.5, elapsed


def test_408_on_idle_keepalive_with_partial_second_request(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, headerReadTimeout=400))
    with RawConn(gw.port) as c:
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.txt HTTP/1.1\r\n")
        assert c.read_response().status == 200
        r = c.read_response()
        assert r.status == 408
        assert c.closed_by_server(3)


def test_keepalive_timeout_closes_idle_connection(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, keepaliveTimeout=300))
    with RawConn(gw.port) as c:
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
        t0 = time.monotonic()
        assert c.closed_by_server(3), "idle keep-alive connection not closed"
        elapsed = time.monotonic() - t0
        assert c.buf == b""  # closed silently: no 408 on an idle connection
    assert 0.2 <= elapsed < 2.0, elapsed


def test_keepalive_kept_before_timeout(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, keepaliveTimeout=3000))
    with RawConn(gw.port) as c:
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
        time.sleep(0.5)
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200


def test_send_timeout_closes_stalled_reader(start_gateway, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_bytes(b"ok\n")
    size = 16 * 1024 * 1024
    with open(root / "huge.bin", "wb") as f:
        f.truncate(size)
    gw = start_gateway(make_config(root, sendTimeout=300))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(("127.0.0.1", gw.port))
    try:
        s.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(1.5)  # never read: the server must give up after sendTimeout
        total = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:
            try:
                b = s.recv(1 << 20)
            except ConnectionResetError:
                break
            if not b:
                break
            total += len(b)
        assert total < size, "the whole body was delivered to a reader that stalled"
        assert time.monotonic() - t0 < 5, "connection still open after the send timeout"
    finally:
        s.close()
    gw.assert_alive()


@pytest.mark.parametrize("prop,value", [("maxRequestHeaderBytes", 100), ("maxRequestHeaders", 0),
                                        ("maxRequestTargetBytes", 1), ("headerReadTimeout", 10)])
def test_limit_out_of_range_is_a_config_error(gateway_bin, tmp_path, prop, value):
    import subprocess
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"global:\n  port: 8080\n  {prop}: {value}\n")
    p = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=10)
    assert p.returncode == 1
    assert f"{cfg}:3:{len(prop) + 5}: {prop}: " in p.stderr, p.stderr


@pytest.mark.parametrize("framing", [b"Content-Length: 100000\r\n", b"Transfer-Encoding: chunked\r\n"])
def test_408_slow_post_is_bounded_by_the_request_timeout(start_gateway, framing):
    """A client trickling a request body (slow POST) holds the request at most `timeout`: it gets
    408 and the connection is closed, whatever the backend does meanwhile."""
    from backends import Backend

    b = Backend()
    try:
        gw = start_gateway(make_config(None, timeout=800, proxyTo=b.url) + "  loadModules: [rproxy]\n")
        with RawConn(gw.port) as c:
            t0 = time.monotonic()
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n")
            chunked = b"chunked" in framing
            c.sock.settimeout(0.1)
            while time.monotonic() - t0 < 5:
                try:
                    c.send(b"1\r\na\r\n" if chunked else b"a")
                    c._fill()
                except (socket.timeout, TimeoutError):
                    continue
                except (EOFError, OSError):
                    break
                if b"\r\n\r\n" in c.buf:
                    break
            c.sock.settimeout(3)
            r = c.read_response()
            assert r.status == 408, r
            assert time.monotonic() - t0 < 2.5
            assert c.closed_by_server(3)
        assert gw.get("/echo").status == 200
    finally:
        b.close()
