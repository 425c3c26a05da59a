"""Several workers under concurrent load, and graceful shutdown."""
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import FILE_1K, FILE_2M, INDEX_HTML, RawConn, make_config


def test_two_workers_many_connections(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, workers=2))
    deadline = time.monotonic() + 3
    while "(2 workers)" not in gw.stderr():
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.02)
    expected = {"/": INDEX_HTML, "/hello.txt": b"hello world\n", "/file1k.bin": FILE_1K}
    paths = list(expected)

    def one_connection(i):
        """Every fourth connection makes 5 keep-alive requests, the others a single request."""
        n = 5 if i % 4 == 0 else 1
        ok = 0
        with RawConn(gw.port, timeout=10) as c:
            for k in range(n):
                path = paths[(i + k) % len(paths)]
                last = k == n - 1
                c.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n{'Connection: close' if last else 'X-K: 1'}\r\n\r\n".encode())
                r = c.read_response()
                if r.status == 200 and r.body == expected[path]:
                    ok += 1
        return ok, n

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one_connection, range(100)))
    total = sum(n for _, n in results)
    good = sum(ok for ok, _ in results)
    assert total == 200 and good == total, (good, total)
    gw.assert_alive()


def test_two_workers_concurrent_large_downloads(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, workers=2))

    def download(_):
        status, _, body = gw.http("GET", "/big.bin", timeout=20)
        return status == 200 and body == FILE_2M

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(download, range(8)))


def read_response_throttled(s, first, slow_until=1024 * 1024):
    """Reads until the server closes; slowly (about 6 MiB/s) for the first `slow_until` bytes."""
    data = first
    while True:
        b = s.recv(65536)
        if not b:
            return data
        data += b
        if len(data) < slow_until:
            time.sleep(0.01)


def test_graceful_shutdown_finishes_download(start_gateway, wwwroot):
    """SIGTERM while a throttled client downloads 2 MiB: the client still gets every byte and the
    process exits 0."""
    gw = start_gateway(make_config(wwwroot, workers=2))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(10)
    s.connect(("127.0.0.1", gw.port))
    try:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(16384)
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        gw.signal(signal.SIGTERM)
        data = read_response_throttled(s, first)
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"Content-Length: %d" % len(FILE_2M) in head
        assert len(body) == len(FILE_2M) and body == FILE_2M
    finally:
        s.close()
    assert gw.stop() == 0


def test_graceful_shutdown_waits_for_response_in_progress(start_gateway, tmp_path):
    """A response larger than any socket buffer is still being written when SIGTERM arrives: the
    process stays up until it is complete, then closes that connection and exits promptly."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_bytes(b"ok\n")
    size = 32 * 1024 * 1024
    with open(root / "huge.bin", "wb") as f:
        f.truncate(size)
    gw = start_gateway(make_config(root, gracefulShutdownTimeout=3000))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(10)
    s.connect(("127.0.0.1", gw.port))
    try:
        s.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        data = s.recv(16384)
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        time.sleep(0.2)
        gw.signal(signal.SIGTERM)
        time.sleep(0.3)
        assert gw.alive(), "the gateway exited with a response in progress:\n" + gw.stderr()
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        got = len(body)
        zeros = body.count(0)
        while got < size:
            b = s.recv(1 << 20)
            assert b, f"connection closed after {got} of {size} body bytes"
            got += len(b)
            zeros += b.count(0)
        assert got == size and zeros == size
        done = time.monotonic()
        # nothing is in flight any more: the connection is closed and the process exits well
        # before the 3 s graceful timeout
        assert RawConnLike(s).closed_within(2.0), "connection kept open after the drain began"
        rc = gw.stop()
        assert time.monotonic() - done < 2.0, "exit waited for the graceful timeout"
        assert rc == 0
    finally:
        s.close()


def test_graceful_timeout_forces_exit_cleanly(start_gateway, tmp_path):
    """A client that stops reading holds its connection past gracefulShutdownTimeout: the process
    then exits anyway, with status 0 and no leak."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_bytes(b"ok\n")
    with open(root / "huge.bin", "wb") as f:
        f.truncate(32 * 1024 * 1024)
    gw = start_gateway(make_config(root, gracefulShutdownTimeout=300))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(10)
    s.connect(("127.0.0.1", gw.port))
    try:
        s.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(16384).startswith(b"HTTP/1.1 200 OK\r\n")
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        rc = gw.stop()
        assert time.monotonic() - t0 < 3.0
        assert "still open after the graceful timeout" in gw.stderr()
        assert rc == 0, gw.stderr()
    finally:
        s.close()


class RawConnLike:
    def __init__(self, sock):
        self.sock = sock

    def closed_within(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                b = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return False
            except ConnectionResetError:
                return True
            if not b:
                return True
        return False


def test_graceful_shutdown_closes_idle_connections_quickly(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, workers=2))
    conns = []
    for _ in range(4):
        c = RawConn(gw.port)
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
        conns.append(c)
    t0 = time.monotonic()
    gw.signal(signal.SIGTERM)
    for c in conns:
        assert c.closed_by_server(3), "idle keep-alive connection not closed on shutdown"
        c.close()
    assert gw.stop() == 0
    assert time.monotonic() - t0 < 3


def test_no_new_connections_after_sigterm(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    s.settimeout(10)
    s.connect(("127.0.0.1", gw.port))
    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(4096)  # the download is under way and holds the process open
    gw.signal(signal.SIGTERM)
    time.sleep(0.3)
    refused = False
    try:
        c = socket.create_connection(("127.0.0.1", gw.port), timeout=1)
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        refused = c.recv(100) == b""
        c.close()
    except OSError:
        refused = True
    assert refused, "a new connection was served while draining"
    # finish the download so that the drain completes
    while s.recv(1 << 20):
        pass
    s.close()
    assert gw.stop() == 0


def test_sigterm_exit_is_clean_after_load(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, workers=2))
    stop = threading.Event()
    errors = []

    def hammer():
        while not stop.is_set():
            try:
                r = gw.get("/hello.txt", timeout=3)
                if r.status != 200:
                    errors.append(r.status)
            except (OSError, EOFError):
                if not stop.is_set():
                    errors.append("io")
    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(5)
    assert not errors, errors[:10]
    assert gw.stop() == 0
