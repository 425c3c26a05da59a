"""HTTP/1.x connection handling: keep-alive, pipelining, HTTP/1.0, HEAD, request bodies, Expect."""
import socket
import time

from conftest import FILE_1K, FILE_2M, INDEX_HTML, RawConn


def req(path="/", method="GET", extra="", version="HTTP/1.1", host="localhost"):
    h = f"Host: {host}\r\n" if host is not None else ""
    return f"{method} {path} {version}\r\n{h}{extra}\r\n".encode("latin-1")


def test_keepalive_several_requests_one_socket(gateway):
    paths = [("/", INDEX_HTML), ("/hello.txt", b"hello world\n"), ("/file1k.bin", FILE_1K),
             ("/nope", None), ("/hello.txt", b"hello world\n"), ("/big.bin", FILE_2M)]
    with RawConn(gateway.port, timeout=10) as c:
        for path, body in paths:
            c.send(req(path))
            r = c.read_response()
            if body is None:
                assert r.status == 404
            else:
                assert r.status == 200 and r.body == body, path
            assert not r.has_token("connection", "close"), r
        # still open and usable after all of them
        c.send(req("/hello.txt", extra="Connection: close\r\n"))
        r = c.read_response()
        assert r.status == 200 and r.has_token("connection", "close")
        assert c.closed_by_server(3)


def test_pipelining_three_in_one_send(gateway):
    data = req("/hello.txt") + req("/file1k.bin") + req("/", extra="Connection: close\r\n")
    with RawConn(gateway.port) as c:
        c.send(data)
        r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
        assert (r1.status, r1.body) == (200, b"hello world\n")
        assert (r2.status, r2.body) == (200, FILE_1K)
        assert (r3.status, r3.body) == (200, INDEX_HTML)
        assert c.closed_by_server(3)
        assert c.buf == b""


def test_pipelining_mixed_methods_and_errors(gateway):
    data = (req("/hello.txt", method="HEAD") + req("/missing") + req("/big.bin")
            + req("/hello.txt", method="OPTIONS") + req("/hello.txt", method="DELETE")
            + req("/sub") + req("/hello.txt", extra="Connection: close\r\n"))
    with RawConn(gateway.port, timeout=10) as c:
        c.send(data)
        r = c.read_response("HEAD")
        assert r.status == 200 and r.header("content-length") == "12"
        assert c.read_response().status == 404
        big = c.read_response()
        assert big.status == 200 and big.body == FILE_2M
        assert c.read_response().status == 204
        assert c.read_response().status == 405
        assert c.read_response().status == 301
        last = c.read_response()
        assert last.body == b"hello world\n"
        assert c.closed_by_server(3)


def test_pipelining_twenty_requests(gateway):
    n = 20
    data = b"".join(req(f"/hello.txt?n={i}") for i in range(n - 1)) + req("/file1k.bin", extra="Connection: close\r\n")
    with RawConn(gateway.port) as c:
        c.send(data)
        for _ in range(n - 1):
            r = c.read_response()
            assert r.status == 200 and r.body == b"hello world\n"
        assert c.read_response().body == FILE_1K
        assert c.closed_by_server(3)


def test_request_trickled_byte_by_byte(gateway):
    data = req("/hello.txt", extra="User-Agent: slow\r\nConnection: close\r\n")
    with RawConn(gateway.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            c.send(data[i:i + 1])
            time.sleep(0.002)
        r = c.read_response()
    assert r.status == 200 and r.body == b"hello world\n"


def test_pipelined_request_split_across_sends(gateway):
    data = req("/hello.txt") + req("/file1k.bin", extra="Connection: close\r\n")
    cut = len(req("/hello.txt")) + 7
    with RawConn(gateway.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send(data[:cut])
        r1 = c.read_response()
        time.sleep(0.05)
        c.send(data[cut:])
        r2 = c.read_response()
    assert r1.body == b"hello world\n" and r2.body == FILE_1K


def test_leading_empty_lines_ignored(gateway):
    with RawConn(gateway.port) as c:
        c.send(b"\r\n\r\n" + req("/hello.txt", extra="Connection: close\r\n"))
        r = c.read_response()
    assert r.status == 200 and r.body == b"hello world\n"


def test_http10_closes_by_default(gateway):
    with RawConn(gateway.port) as c:
        c.send(b"GET /hello.txt HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello world\n"
        assert r.header("content-length") == "12"
        assert r.has_token("connection", "close")
        assert c.closed_by_server(3)


def test_http10_keepalive(gateway):
    with RawConn(gateway.port) as c:
        for _ in range(3):
            c.send(b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.body == b"hello world\n"
            assert r.has_token("connection", "keep-alive")
        c.send(b"GET /file1k.bin HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.body == FILE_1K
        assert c.closed_by_server(3)


def test_http10_with_host(gateway):
    with RawConn(gateway.port) as c:
        c.send(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        r = c.read_response()
    assert r.status == 200 and r.body == INDEX_HTML


def test_connection_close_in_http11(gateway):
    with RawConn(gateway.port) as c:
        c.send(req("/hello.txt", extra="connection: CLOSE\r\n"))
        r = c.read_response()
        assert r.status == 200 and r.has_token("connection", "close")
        assert c.closed_by_server(3)


def test_header_names_case_insensitive(gateway):
    with RawConn(gateway.port) as c:
        c.send(b"GET /hello.txt HTTP/1.1\r\nhOsT: localhost\r\nCONNECTION: close\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert c.closed_by_server(3)


def test_head_has_length_but_no_body(gateway):
    with RawConn(gateway.port, timeout=10) as c:
        c.send(req("/big.bin", method="HEAD"))
        r = c.read_response("HEAD")
        assert r.status == 200
        assert r.header("content-length") == str(len(FILE_2M))
        assert r.header("etag")
        # no body bytes follow: the next response starts right after the head
        c.send(req("/hello.txt", extra="Connection: close\r\n"))
        rest = c.read_until_close(5)
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), rest[:60]
        assert rest.endswith(b"\r\n\r\nhello world\n")


def test_head_of_error_page_has_no_body(gateway):
    with RawConn(gateway.port) as c:
        c.send(req("/missing", method="HEAD") + req("/hello.txt", extra="Connection: close\r\n"))
        r = c.read_response("HEAD")
        assert r.status == 404
        assert int(r.header("content-length")) > 0
        rest = c.read_until_close(5)
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), rest[:60]


def test_chunked_request_body_on_get_is_skipped(gateway):
    body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer-A: x\r\n\r\n"
    data = req("/hello.txt", extra="Transfer-Encoding: chunked\r\n") + body + req("/file1k.bin", extra="Connection: close\r\n")
    with RawConn(gateway.port) as c:
        c.send(data)
        r1 = c.read_response()
        assert r1.status == 200 and r1.body == b"hello world\n"
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == FILE_1K
        assert c.closed_by_server(3)


def test_content_length_body_on_get_is_skipped(gateway):
    data = req("/hello.txt", extra="Content-Length: 10\r\n") + b"0123456789" + req("/", extra="Connection: close\r\n")
    with RawConn(gateway.port) as c:
        c.send(data)
        assert c.read_response().body == b"hello world\n"
        assert c.read_response().body == INDEX_HTML


def test_body_that_looks_like_a_request_is_not_executed(gateway):
    inner = req("/file1k.bin")
    data = req("/hello.txt", extra=f"Content-Length: {len(inner)}\r\n") + inner + req("/", extra="Connection: close\r\n")
    with RawConn(gateway.port) as c:
        c.send(data)
        r1 = c.read_response()
        r2 = c.read_response()
        assert r1.body == b"hello world\n"
        assert r2.body == INDEX_HTML
        assert c.closed_by_server(3)
        assert c.buf == b""


def test_unread_large_body_closes_connection(gateway):
    with RawConn(gateway.port) as c:
        c.send(req("/hello.txt", extra="Content-Length: 100000\r\n") + b"x" * 1000)
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello world\n"
        assert c.closed_by_server(3)


def test_expect_100_continue_without_body_needed(gateway):
    # A GET with Expect and no body: just the final response.
    with RawConn(gateway.port) as c:
        c.send(req("/hello.txt", extra="Expect: 100-continue\r\n"))
        r = c.read_response(allow_informational=True)
        assert r.status == 200 and r.body == b"hello world\n"
        c.send(req("/hello.txt", extra="Connection: close\r\n"))
        assert c.read_response().status == 200


def test_expect_100_continue_with_body(gateway):
    # The client waits for 100 Continue or the final status before sending its body.
    with RawConn(gateway.port) as c:
        c.send(req("/hello.txt", method="POST", extra="Content-Length: 5\r\nExpect: 100-continue\r\n"))
        r = c.read_response(allow_informational=True)
        if r.status == 100:
            c.send(b"hello")
            r = c.read_response()
        assert r.status_line == "HTTP/1.1 405 Method Not Allowed"


def test_expect_100_continue_body_sent_eagerly(gateway):
    data = req("/hello.txt", extra="Content-Length: 5\r\nExpect: 100-continue\r\n") + b"hello" + \
        req("/file1k.bin", extra="Connection: close\r\n")
    with RawConn(gateway.port) as c:
        c.send(data)
        r1 = c.read_response()
        r2 = c.read_response()
        assert r1.status == 200 and r1.body == b"hello world\n"
        assert r2.status == 200 and r2.body == FILE_1K


def test_early_response_before_body_announces_close(gateway):
    # The server answers before the body arrived and will not read it: it must say so
    # (RFC 9110 10.1.1, RFC 9112 9.6) so that the client does not reuse the connection.
    with RawConn(gateway.port) as c:
        c.send(req("/hello.txt", method="POST", extra="Content-Length: 50000\r\nExpect: 100-continue\r\n"))
        r = c.read_response(allow_informational=True)
        assert r.status == 405
        closed = c.closed_by_server(3)
        if closed:
            assert r.has_token("connection", "close"), r


def test_http_client_keepalive(gateway):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=5)
    try:
        for _ in range(5):
            conn.request("GET", "/hello.txt")
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read() == b"hello world\n"
        conn.request("HEAD", "/big.bin")
        resp = conn.getresponse()
        assert resp.getheader("Content-Length") == str(len(FILE_2M))
        assert resp.read() == b""
        conn.request("GET", "/file1k.bin")
        assert conn.getresponse().read() == FILE_1K
    finally:
        conn.close()


def test_client_disconnect_mid_download_does_not_hurt(gateway):
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
        s.sendall(req("/big.bin"))
        s.recv(1000)
        s.close()
    gateway.assert_alive()
    status, _, body = gateway.http("GET", "/big.bin", timeout=10)
    assert status == 200 and body == FILE_2M
