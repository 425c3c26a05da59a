"""errorConfig re-runs the handler chain on a copy of the request with an empty body and
Content-Length: 0 (spec §1): what a backend, a CGI program or a FastCGI application of the error
route sees, and what becomes of the client's body (read and dropped on HTTP/1.1 so keep-alive
survives, consumed with its window returned on HTTP/2)."""
import json
import socket
import threading
import time

import pytest

from backends import Backend
from cgi_backends import PhpFpm, find_php_fpm
from conftest import PORT_PLACEHOLDER, RawConn
from test_http2 import Client, request_headers

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class Closer:
    """A backend that reads a little of each request and closes: the proxy answers 502."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                c.settimeout(2)
                c.recv(65536)
            except OSError:
                pass
            c.close()

    def close(self):
        self.sock.close()


class HeldBackend(Backend):
    """Answers like /echo, but only once the test sets `release`: the error route is still busy
    while the client sends its body."""

    def __init__(self):
        super().__init__("held")
        self.release = threading.Event()

    def _respond(self, c, method, target, version, headers, hmap, body):
        self.release.wait(20)
        return super()._respond(c, method, "/echo" + target, version, headers, hmap, body)


def config(closer, origin, errors, extra_global="", extra_host=""):
    """/dead proxies to a backend that closes (502), /status/N to a real one with
    proxyInterceptErrors (its 404 is ours); errorConfig sends both to `errors` under /echo."""
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [rproxy]\n{extra_global}"
            f"hosts:\n  - domain: \"*\"\n{extra_host}"
            f"    locations:\n"
            f"      - path: /dead\n        proxyTo: \"{closer.url}\"\n"
            f"      - path: /status\n        proxyTo: \"{origin.url}\"\n        proxyInterceptErrors: true\n"
            f"    errorConfig:\n"
            f"      - scode: 502\n        proxyTo: \"{errors}\"\n"
            f"        customHeaders:\n          X-Error-Config: \"502\"\n"
            f"      - scode: 404\n        proxyTo: \"{errors}\"\n"
            f"        customHeaders:\n          X-Error-Config: \"404\"\n")


def seen(doc):
    """What the error route's backend received: body length and a header map."""
    return doc["body_len"], {k.lower(): v for k, v in doc["headers"]}


def assert_empty_body(doc, method="POST"):
    n, h = seen(doc)
    assert doc["method"] == method and n == 0 and doc["body_sha256"] == EMPTY_SHA256
    assert h.get("content-length") == "0" and "transfer-encoding" not in h and "expect" not in h


def sized_post(path, body, extra=b""):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n" + extra +
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def chunked_post(path, pieces):
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
    head = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + chunks + b"0\r\n\r\n"


def test_sized_and_chunked_bodies_become_empty_on_http1(start_gateway):
    closer, origin, errors = Closer(), Backend("origin"), Backend("errors")
    try:
        host_proxy = f"    proxyTo: \"{origin.url}\"\n"  # what /echo/after goes to
        gw = start_gateway(config(closer, origin, errors.url + "/echo", extra_host=host_proxy))
        with RawConn(gw.port) as c:
            c.send(sized_post(b"/dead/form", b"name=value&" * 300, extra=b"Expect: 100-continue\r\n"))
            r = c.read_response()
            assert r.status == 200 and r.header("x-error-config") == "502"
            doc = json.loads(r.body)
            assert doc["target"] == "/echo/dead/form"
            assert_empty_body(doc)
            assert seen(doc)[1]["content-type"] == "text/plain"  # the rest of the request is kept
            assert r.header("connection") != "close"
            c.send(chunked_post(b"/dead/chunks", [b"a" * 100, b"b" * 5000, b"c"]))
            r = c.read_response()
            assert r.status == 200 and r.header("x-error-config") == "502"
            assert_empty_body(json.loads(r.body))
            # keep-alive: the bodies were skipped, the next request on the connection is parsed as one
            c.send(b"GET /echo/after HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and json.loads(r.body)["target"] == "/echo/after"
            assert json.loads(r.body)["backend"] == "origin"
        # a request without a body is re-run as it is: no Content-Length appears
        r = gw.get("/dead/get")
        assert r.status == 200
        n, h = seen(json.loads(r.body))
        assert n == 0 and "content-length" not in h
    finally:
        closer.close(), origin.close(), errors.close()


def test_intercepted_404_after_the_body_went_to_the_first_backend(start_gateway):
    closer, origin, errors = Closer(), Backend("origin"), Backend("errors")
    try:
        gw = start_gateway(config(closer, origin, errors.url + "/echo"))
        body = bytes(range(256)) * 64
        with RawConn(gw.port) as c:
            c.send(sized_post(b"/status/404", body))
            r = c.read_response()
            assert r.status == 200 and r.header("x-error-config") == "404"
            doc = json.loads(r.body)
            assert doc["backend"] == "errors" and doc["target"] == "/echo/status/404"
            assert_empty_body(doc)
            assert origin.requests == 1  # the first run sent the whole body there
            c.send(sized_post(b"/status/404", b"again"))
            assert c.read_response().header("x-error-config") == "404"
    finally:
        closer.close(), origin.close(), errors.close()


def test_large_body_while_the_error_route_answers_http1(start_gateway):
    """5 MiB arrive while the error route's backend holds its answer: the gateway reads and drops
    them as they come, answers, and keeps the connection (the whole body was there)."""
    closer, origin, held = Closer(), Backend("origin"), HeldBackend()
    try:
        gw = start_gateway(config(closer, origin, held.url))
        body = b"x" * (5 * 1024 * 1024)
        with RawConn(gw.port, timeout=20) as c:
            c.send(sized_post(b"/dead/big", body))  # kernel buffers hold part of it, not all
            time.sleep(1.0)  # the gateway reads the rest from its socket before the answer is released
            held.release.set()
            r = c.read_response()
            assert r.status == 200 and r.header("x-error-config") == "502"
            assert_empty_body(json.loads(r.body))
            assert r.header("connection") != "close"
            c.send(b"GET /status/200 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.read_response().body == b"status 200\n"
        # a body that stops arriving part way: the answer still comes, with Connection: close
        held.release.clear()
        with RawConn(gw.port, timeout=20) as c:
            c.send(b"POST /dead/big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
            c.send(body[:1024 * 1024])
            held.release.set()
            r = c.read_response()
            assert r.status == 200 and r.header("connection") == "close"
    finally:
        closer.close(), origin.close(), held.close()


def h2_post(client, path, body, sized=True):
    extra = [("content-length", str(len(body)))] if sized else []
    sid = client.conn.get_next_available_stream_id()
    client.responses[sid] = {"headers": None, "body": b""}
    client.conn.send_headers(sid, request_headers(path, "POST", extra=extra), end_stream=False)
    client.flush()
    return sid


def send_all(client, sid, body, timeout=10.0):
    """Sends the body as flow control allows; True when all of it went out before the deadline."""
    deadline, off = time.monotonic() + timeout, 0
    while off < len(body):
        if sid in client.resets or sid in client.ended or time.monotonic() > deadline:
            return False
        room = min(client.conn.local_flow_control_window(sid), client.conn.max_outbound_frame_size)
        if room <= 0:
            client.pump(0.2)
            continue
        piece = body[off:off + room]
        off += len(piece)
        client.conn.send_data(sid, piece, end_stream=off == len(body))
        client.flush()
    return True


def test_http2_body_becomes_empty_and_its_window_comes_back(start_gateway):
    closer, origin, held = Closer(), Backend("origin"), HeldBackend()
    try:
        gw = start_gateway(config(closer, origin, held.url))
        c = Client(socket.create_connection(("127.0.0.1", gw.port)))
        body = bytes(range(256)) * 1024  # 256 KiB: four times the stream window
        sized, unsized = h2_post(c, "/dead/sized", body), h2_post(c, "/dead/unsized", body, sized=False)
        # the error route waits on its backend meanwhile: only the returned window lets this finish
        assert send_all(c, sized, body) and send_all(c, unsized, body)
        held.release.set()
        for sid in (sized, unsized):
            r = c.wait(sid)
            assert r["headers"][b":status"] == b"200" and r["headers"][b"x-error-config"] == b"502"
            assert_empty_body(json.loads(r["body"]))
            assert sid not in c.resets
        after = c.request("/status/200")
        assert c.wait(after)["body"] == b"status 200\n" and c.terminated is None
    finally:
        closer.close(), origin.close(), held.close()


def test_cgi_in_the_error_route_reads_content_length_zero(start_gateway, tmp_path):
    closer = Closer()
    site, empty = tmp_path / "site", tmp_path / "empty"
    (site / "cgi-bin").mkdir(parents=True)
    empty.mkdir()
    script = site / "cgi-bin" / "len.py"
    script.write_text("#!/usr/bin/env python3\nimport os, sys\n"
                      "n = os.environ.get('CONTENT_LENGTH')\nb = sys.stdin.buffer.read()\n"
                      "sys.stdout.write('Content-Type: text/plain\\r\\n\\r\\n%s %d' % (n, len(b)))\n")
    script.chmod(0o755)
    try:
        cfg = (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [cgi, rproxy]\n"
               f"hosts:\n  - domain: \"*\"\n    wwwroot: \"{empty}\"\n    proxyTo: \"{closer.url}\"\n"
               f"    errorConfig:\n      - wwwroot: \"{site}\"\n")
        gw = start_gateway(cfg)
        with RawConn(gw.port) as c:
            c.send(sized_post(b"/cgi-bin/len.py", b"q" * 4000))
            r = c.read_response()
            assert r.status == 200 and r.body == b"0 0"
            c.send(chunked_post(b"/cgi-bin/len.py", [b"z" * 70000]))
            r = c.read_response()
            assert r.status == 200 and r.body == b"0 0"
    finally:
        closer.close()


@pytest.mark.skipif(not find_php_fpm(), reason="php-fpm not installed")
def test_fastcgi_in_the_error_route_reads_content_length_zero(start_gateway, tmp_path):
    closer, fpm = Closer(), PhpFpm(tmp_path / "fpm", children=2)
    site, empty = tmp_path / "site", tmp_path / "empty"
    site.mkdir()
    empty.mkdir()
    (site / "len.php").write_text("<?php echo $_SERVER['CONTENT_LENGTH'], ' ',"
                                  " strlen(file_get_contents('php://input'));")
    try:
        cfg = (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [fcgi, rproxy]\n"
               f"  fcgiScriptExtensions: [\".php\"]\n  fcgiTo: \"{fpm.url}\"\n"
               f"hosts:\n  - domain: \"*\"\n    wwwroot: \"{empty}\"\n    proxyTo: \"{closer.url}\"\n"
               f"    errorConfig:\n      - wwwroot: \"{site}\"\n")
        gw = start_gateway(cfg)
        with RawConn(gw.port) as c:
            c.send(sized_post(b"/len.php", b"q" * 4000))
            r = c.read_response()
            assert r.status == 200 and r.body == b"0 0"
            c.send(chunked_post(b"/len.php", [b"z" * 70000]))
            r = c.read_response()
            assert r.status == 200 and r.body == b"0 0"
    finally:
        closer.close()
        fpm.stop()
