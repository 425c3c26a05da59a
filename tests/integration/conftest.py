"""
Integration test harness: runs the real gateway binary (normally the ASan+UBSan build) against a
throw-away configuration and talks to it over TCP.

Every test that uses the `gateway` or `start_gateway` fixture gets its own process, its own port
and its own temporary directory. At teardown the process gets SIGTERM and must exit 0 within
10 s with no sanitizer report on stderr.

The binary is taken from $GATEWAY_BIN, default build-asan/gateway under the repository root.
"""
import http.client as httpclient
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GATEWAY_BIN = Path(os.environ.get("GATEWAY_BIN", str(REPO_ROOT / "build-asan" / "gateway")))
if not GATEWAY_BIN.is_absolute():
    GATEWAY_BIN = (REPO_ROOT / GATEWAY_BIN).resolve()

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer", "WARNING: ThreadSanitizer")
# GATEWAY_TEST_WORKERS=N runs every "workers: 1" config with N workers (the ThreadSanitizer run)
TEST_WORKERS = os.environ.get("GATEWAY_TEST_WORKERS")
START_TIMEOUT = 10.0


def gateway_has_tsan():
    """True for a ThreadSanitizer build (its runtime's symbols are in the binary's dynamic table)."""
    try:
        return b"__tsan_init" in GATEWAY_BIN.read_bytes()
    except OSError:
        return False


STOP_TIMEOUT = 10.0
PORT_PLACEHOLDER = "@PORT@"

# Contents of the demo site, shared by the tests that check bytes.
INDEX_HTML = b"<!DOCTYPE html>\n<html><head><title>demo</title></head><body>demo index</body></html>\n"
SUB_INDEX_HTML = b"<html><body>sub index</body></html>\n"
FILE_1K = bytes((i * 7 + 3) % 251 for i in range(1024))
FILE_2M = bytes(range(256)) * (2 * 1024 * 1024 // 256)


def child_env():
    env = dict(os.environ)
    asan = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "detect_leaks=1"
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


# Ports come from a range of this test process's own, below the kernel's ephemeral range, and are
# never handed out twice. A port the kernel picked for bind(0) could be picked again for another
# xdist process, and the gateway listens with SO_REUSEPORT: two gateways would then share the port
# and split its connections between them.
_PORT_SLOT = 2500
_PORT_FIRST = 12000
_PORT_SLOTS = 8  # 12000-31999: the ephemeral range starts at 32768


def _port_slot():
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gwN" under xdist
    digits = name[2:] if name.startswith("gw") else ""
    return int(digits) % _PORT_SLOTS if digits.isdigit() else 0


_next_port = [0]


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on, and that no other test of this run gets."""
    base = _PORT_FIRST + _port_slot() * _PORT_SLOT
    for _ in range(_PORT_SLOT):
        port = base + _next_port[0] % _PORT_SLOT
        _next_port[0] += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue  # in use (or in TIME_WAIT): the next one
        finally:
            s.close()
    raise RuntimeError("no free port left in this test process's range")


def yaml_scalar(v):
    """A Python value as a YAML scalar (strings double-quoted, JSON escapes are valid YAML)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))


def make_config(wwwroot=None, hosts=None, port=PORT_PLACEHOLDER, workers=1, **props):
    """YAML text of a config: a global section (port placeholder, workers, wwwroot, props) and an
    optional `hosts` section given as YAML text (indented as under `hosts:`)."""
    lines = ["global:", f"  port: {port}"]
    if workers is not None:
        lines.append(f"  workers: {workers}")
    if wwwroot is not None:
        lines.append(f"  wwwroot: {yaml_scalar(str(wwwroot))}")
    for k, v in props.items():
        lines.append(f"  {k}: {yaml_scalar(v)}")
    text = "\n".join(lines) + "\n"
    if hosts:
        text += "hosts:\n" + hosts.rstrip("\n") + "\n"
    return text


# ---------------------------------------------------------------------------------------------
# Client helpers
# ---------------------------------------------------------------------------------------------


class Response:
    def __init__(self, version, status, reason, headers, body, head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in wire order
        self.body = body
        self.head = head  # raw head bytes, status line included

    @property
    def status_line(self):
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    def header(self, name):
        vals = self.header_all(name)
        return vals[0] if vals else None

    def header_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def has_token(self, name, token):
        """True when header `name` lists `token` (case-insensitive), e.g. Connection: close."""
        for v in self.header_all(name):
            if token.lower() in [t.strip().lower() for t in v.split(",")]:
                return True
        return False

    def __repr__(self):
        return f"<Response {self.status_line!r} headers={self.headers!r} body={self.body[:80]!r}>"


class RawConn:
    """A plain TCP connection with an HTTP/1.x response reader that keeps leftover bytes."""

    def __init__(self, port, timeout=5.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            raise EOFError("connection closed by the server")
        try:
            chunk = self.sock.recv(262144)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def _read_line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        version, status, reason = (lines[0].decode("latin-1").split(" ", 2) + [""])[:3]
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.decode("latin-1").partition(":")
            headers.append((k, v.strip()))
        return version, int(status), reason, headers, head + b"\r\n\r\n"

    def read_response(self, method="GET", allow_informational=False):
        """Reads one response. 1xx responses are skipped unless allow_informational."""
        while True:
            version, status, reason, headers, head = self.read_head()
            if status >= 200 or allow_informational:
                break
        resp = Response(version, status, reason, headers, b"", head)
        if method == "HEAD" or status < 200 or status in (204, 304):
            return resp
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if te and "chunked" in te.lower():
            body = b""
            while True:
                size = int(self._read_line().split(b";")[0], 16)
                if size == 0:
                    while self._read_line():
                        pass
                    break
                body += self._read_exact(size)
                assert self._read_exact(2) == b"\r\n", "bad chunk framing from the server"
            resp.body = body
        elif cl is not None:
            resp.body = self._read_exact(int(cl))
        else:
            resp.body = self.read_until_close()
        return resp

    def read_until_close(self, timeout=None):
        """All bytes until the server closes (raises socket.timeout if it does not)."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            while True:
                self._fill()
        except EOFError:
            pass
        data, self.buf = self.buf, b""
        return data

    def closed_by_server(self, timeout=3.0):
        """True when the server closes the connection within `timeout` (extra bytes are kept)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                self._fill()
        except EOFError:
            return True
        except (socket.timeout, TimeoutError):
            return False


def raw(port, data, timeout=5.0, addr="127.0.0.1"):
    """Sends `data` on a new connection and returns every byte until the server closes or the
    timeout expires."""
    s = socket.create_connection((addr, port), timeout=timeout)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        s.sendall(data)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out


def http(port, method="GET", path="/", headers=None, body=None, timeout=5.0, host="localhost", addr="127.0.0.1"):
    """One request with http.client; returns (status, headers as a case-insensitive message,
    body bytes)."""
    conn = httpclient.HTTPConnection(addr, port, timeout=timeout)
    try:
        hdrs = {"Host": host}
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return r.status, r.msg, data
    finally:
        conn.close()


def get(port, path="/", host="localhost", headers=None, timeout=5.0, addr="127.0.0.1"):
    """A GET with Connection: close over a raw socket, parsed; returns a Response."""
    hdr = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    with RawConn(port, timeout=timeout, host=addr) as c:
        c.send(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{hdr}Connection: close\r\n\r\n".encode("latin-1"))
        return c.read_response()


# ---------------------------------------------------------------------------------------------
# The gateway process
# ---------------------------------------------------------------------------------------------


class Gateway:
    def __init__(self, workdir, binary=GATEWAY_BIN, addr="127.0.0.1", keep_workers=False):
        self.addr = addr  # the address clients (and the readiness probe) connect to
        self.keep_workers = keep_workers  # ignore GATEWAY_TEST_WORKERS (per-worker state counted)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.binary = str(binary)
        self.proc = None
        self.port = None
        self.config_path = None
        self.returncode = None
        self._n = 0
        self.stderr_path = None

    # -- lifecycle --

    def start(self, config_text, retries=5):
        """Writes the config (PORT_PLACEHOLDER replaced by a free port) and starts the gateway;
        returns once the port accepts connections."""
        last = ""
        for _ in range(retries):
            self._n += 1
            port = free_port()
            self.config_path = self.workdir / f"gateway-{self._n}.yaml"
            text = config_text.replace(PORT_PLACEHOLDER, str(port))
            if TEST_WORKERS and not self.keep_workers:
                text = text.replace("  workers: 1\n", f"  workers: {TEST_WORKERS}\n")
            self.config_path.write_text(text)
            self.stderr_path = self.workdir / f"gateway-{self._n}.stderr"
            self.stdout_path = self.workdir / f"gateway-{self._n}.stdout"
            with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
                self.proc = subprocess.Popen(
                    [self.binary, "-c", str(self.config_path)],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=child_env(),
                    cwd=str(self.workdir),
                )
            self.port = port
            self.returncode = None
            if self._wait_ready():
                return self
            last = self.stderr()
            if "Address already in use" in last or "EADDRINUSE" in last:
                self._reap()
                continue
            self._reap()
            raise AssertionError(f"gateway did not start (rc={self.returncode}); stderr:\n{last}")
        raise AssertionError(f"gateway could not find a free port; stderr:\n{last}")

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection((self.addr, self.port), timeout=0.5).close()
                return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def _reap(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.returncode = self.proc.wait(timeout=STOP_TIMEOUT)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait; returns the exit code (a hung process is killed and fails)."""
        if self.proc is None:
            return None
        if self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.returncode = "hung"
            raise AssertionError(
                f"gateway did not exit within {timeout}s of SIGTERM; stderr:\n{self.stderr()}")
        return self.returncode

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    def sanitizer_reports(self):
        text = self.stderr()
        return [m for m in SANITIZER_MARKERS if m in text]

    def check_clean_exit(self):
        rc = self.stop()
        reports = self.sanitizer_reports()
        assert rc == 0 and not reports, (
            f"gateway exit code {rc}, sanitizer markers {reports}; stderr:\n{self.stderr()}")

    # -- client shortcuts --

    def raw(self, data, timeout=5.0):
        return raw(self.port, data, timeout, addr=self.addr)

    def http(self, method="GET", path="/", **kw):
        kw.setdefault("addr", self.addr)
        return http(self.port, method, path, **kw)

    def get(self, path="/", **kw):
        kw.setdefault("addr", self.addr)
        return get(self.port, path, **kw)

    def connect(self, timeout=5.0):
        return RawConn(self.port, timeout=timeout, host=self.addr)

    def assert_alive(self):
        """The process is still running and serves a fresh request."""
        assert self.alive(), f"gateway died (rc={self.proc.poll()}); stderr:\n{self.stderr()}"
        r = self.get("/")
        assert r.status == 200, r
        assert self.alive()


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gateway_bin():
    if not (GATEWAY_BIN.is_file() and os.access(GATEWAY_BIN, os.X_OK)):
        pytest.fail(f"gateway binary not found at {GATEWAY_BIN} (set GATEWAY_BIN or build build-asan)")
    return GATEWAY_BIN


def build_demo_root(root):
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_bytes(INDEX_HTML)
    (root / "file1k.bin").write_bytes(FILE_1K)
    (root / "big.bin").write_bytes(FILE_2M)
    (root / "hello.txt").write_bytes(b"hello world\n")
    (root / "style.css").write_bytes(b"body { color: black; }\n")
    (root / "data.json").write_bytes(b'{"ok": true}\n')
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    (root / "noext").write_bytes(b"no extension\n")
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(SUB_INDEX_HTML)
    (root / "sub" / "page.txt").write_bytes(b"sub page\n")
    (root / "noindex").mkdir()
    (root / "noindex" / "file.txt").write_bytes(b"in noindex\n")
    (root / "htmdir").mkdir()
    (root / "htmdir" / "index.htm").write_bytes(b"<p>htm index</p>\n")
    (root / "link-inside.txt").symlink_to("hello.txt")
    (root / "link-outside").symlink_to("/etc/passwd")
    (root / "link-outside-dir").symlink_to("/etc")
    return root


@pytest.fixture
def wwwroot(tmp_path):
    """A demo site: index.html, a 1 KiB and a 2 MiB file, a directory with and without an index,
    symlinks to a file inside the root and to /etc/passwd outside it."""
    return build_demo_root(tmp_path / "www")


@pytest.fixture
def start_gateway(tmp_path, gateway_bin, request):
    """Factory: start_gateway(config_text) -> running Gateway. Every started gateway is stopped at
    teardown and must exit 0 without sanitizer reports."""
    started = []
    keep = request.node.get_closest_marker("one_worker") is not None

    def start(config_text, subdir=None, addr="127.0.0.1"):
        gw = Gateway(tmp_path / (subdir or f"gw{len(started)}"), gateway_bin, addr=addr, keep_workers=keep)
        started.append(gw)
        return gw.start(config_text)

    yield start
    failures = []
    for gw in started:
        try:
            gw.check_clean_exit()
        except AssertionError as e:
            failures.append(str(e))
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


@pytest.fixture
def gateway(start_gateway, wwwroot):
    """A gateway with one worker serving the demo site from the global wwwroot."""
    return start_gateway(make_config(wwwroot))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "one_worker: the test counts per-worker state; GATEWAY_TEST_WORKERS does not apply")
