"""The read buffer of backend responses (proxyBufferSize): sized from a response's Content-Length and
from the target's recent responses, bounded by the property, with back-pressure intact."""
import hashlib
import socket
import subprocess
import threading
import time

import pytest

from backends import Backend
from conftest import PORT_PLACEHOLDER

BASE = bytes(range(251))


def pattern(n):
    """What the test backend's /bytes/N sends."""
    return (BASE * (n // 251 + 1))[:n]


@pytest.fixture
def backend():
    b = Backend("b")
    yield b
    b.close()


def proxy_config(url, extra=""):
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [rproxy]\n"
            f"  proxyTo: \"{url}\"\n{extra}")


# Small, larger than the I/O chunk, larger than the default bound, tiny again: the target's size
# hint grows and shrinks while every body must arrive intact.
SIZES = [100, 70000, 1, 300000, 40000, 3_000_000, 65536, 0, 200, 32768, 262144, 5000]


@pytest.mark.parametrize("bound", [None, 16384, 100000, 1048576])
def test_bodies_of_every_size_on_one_connection(start_gateway, backend, bound):
    extra = f"  proxyBufferSize: {bound}\n" if bound else ""
    gw = start_gateway(proxy_config(backend.url, extra))
    with gw.connect(timeout=15) as c:
        for n in SIZES:
            c.send(f"GET /bytes/{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            r = c.read_response()
            assert r.status == 200 and r.header("content-length") == str(n)
            assert r.body == pattern(n), f"body of /bytes/{n} differs"
        c.send(b"GET /chunked/40/5000 HTTP/1.1\r\nHost: x\r\n\r\n")  # no length: the hint alone
        r = c.read_response()
        assert r.body == b"".join(bytes([65 + i % 26]) * 5000 for i in range(40))
        c.send(b"HEAD /bytes/500000 HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response(method="HEAD")
        assert r.status == 200 and r.header("content-length") == "500000" and r.body == b""
    assert backend.connections == 1


def test_large_bodies_to_http2_clients(start_gateway, backend, tmp_path):
    gw = start_gateway(proxy_config(backend.url))
    for n in (70000, 1_000_000):
        out = tmp_path / f"b{n}"
        p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", str(out),
                            "-w", "%{http_code} %{http_version}", f"http://127.0.0.1:{gw.port}/bytes/{n}"],
                           capture_output=True, text=True, timeout=30)
        assert p.stdout == "200 2"
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(pattern(n)).digest()


class StreamingBackend:
    """Answers one request with `total` bytes, counting what the kernel took from it."""

    def __init__(self, total):
        self.total = total
        self.sent = 0
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        c, _ = self.srv.accept()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)  # no autotuned megabytes in between
        with c:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(4096)
            c.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {self.total}\r\n\r\n".encode())
            piece = pattern(251 * 256)
            left = self.total
            try:
                while left:
                    n = c.send(piece[:min(left, len(piece))])
                    self.sent += n
                    left -= n
            except OSError:
                pass

    def close(self):
        self.srv.close()


def test_slow_client_holds_the_backend_back(start_gateway):
    total = 64 * 1024 * 1024
    b = StreamingBackend(total)
    try:
        gw = start_gateway(proxy_config(f"http://127.0.0.1:{b.port}", "  proxyBufferSize: 4194304\n"))
        with gw.connect(timeout=15) as c:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.read_head()[1] == 200
            got = len(c.buf)
            time.sleep(1.0)  # the client stops reading: the gateway must stop reading the backend
            stalled_at = b.sent
            assert stalled_at < 40 * 1024 * 1024, f"the backend sent {stalled_at} bytes to a stalled client"
            digest = hashlib.sha256(c.buf)
            c.buf = b""
            while got < total:
                data = c.sock.recv(1 << 20)
                assert data, f"closed after {got} bytes"
                digest.update(data)
                got += len(data)
            assert got == total
            assert digest.digest() == hashlib.sha256(pattern(total)).digest()
    finally:
        b.close()


def test_bound_out_of_range_is_located(gateway_bin, tmp_path):
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text("global:\n  port: 8080\n  loadModules: [rproxy]\n  proxyBufferSize: 1000\n")
    p = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=15)
    assert p.returncode == 1
    assert f"{cfg}:4:20: proxyBufferSize: " in p.stderr, p.stderr
