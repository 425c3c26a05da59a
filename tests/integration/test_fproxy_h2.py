"""CONNECT tunnels from HTTP/2 clients (RFC 9113 8.5) through the forward proxy, with python h2 on
h2c prior knowledge: a raw TCP echo target and a TLS origin, half-close, a target that closes or
resets, malformed CONNECT streams, flow control as back-pressure, the destination policy, the
access log, and the other streams of the connection going on meanwhile."""
import json
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import pytest

from conftest import PORT_PLACEHOLDER
from tcp_echo import FLOOD_BYTES, EchoServer, pattern
from test_backend_tls import TlsBackend
from tls_helpers import make_cert

NO_ERROR, PROTOCOL_ERROR, CONNECT_ERROR = 0x0, 0x1, 0xA


def config(ports, allow=("127.0.0.1",), extra=""):
    allow_list = ", ".join(f'"{a}"' for a in allow)
    port_list = ", ".join(str(p) for p in ports)
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [fproxy]\n"
            f"  forwardProxyAllow: [{allow_list}]\n  forwardProxyPorts: [{port_list}]\n{extra}")


class Stream:
    def __init__(self):
        self.headers = None
        self.data = bytearray()
        self.ended = False
        self.reset = None


class H2Proxy:
    """One h2c connection to the gateway; CONNECT streams and plain requests on it."""

    def __init__(self, port, ack=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        # python-h2 insists on :path and :scheme for every request: CONNECT needs them off
        cfg = h2.config.H2Configuration(client_side=True, validate_outbound_headers=False)
        self.conn = h2.connection.H2Connection(cfg)
        self.conn.initiate_connection()
        self.ack = ack  # False: received DATA is not acknowledged (the window stays used up)
        self.streams = {}
        self.settings_seen = False  # the gateway's SETTINGS arrived (and were acknowledged)
        self.flush()

    def close(self):
        self.sock.close()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def open(self, headers, end_stream=False):
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = Stream()
        self.conn.send_headers(sid, headers, end_stream=end_stream)
        self.flush()
        return sid

    def connect(self, authority, extra=()):
        return self.open([(":method", "CONNECT"), (":authority", authority), *extra])

    def get(self, path="/"):
        return self.open([(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "localhost")],
                         end_stream=True)

    def room(self, sid):
        return min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)

    def send(self, sid, data, end=False, timeout=10.0):
        """Sends as the stream's window allows (waiting for WINDOW_UPDATE frames)."""
        view, deadline = memoryview(data), time.monotonic() + timeout
        while view:
            assert self.streams[sid].reset is None, f"stream reset ({self.streams[sid].reset})"
            n = self.room(sid)
            if n <= 0:
                assert time.monotonic() < deadline, "the window never opened"
                self.flush()
                self.pump(0.5)
                continue
            self.conn.send_data(sid, view[:n].tobytes())
            view = view[n:]
        if end:
            self.conn.end_stream(sid)
        self.flush()

    def pump(self, timeout=5.0):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(262144)
        except (socket.timeout, TimeoutError):
            return False
        if not data:
            raise EOFError("the gateway closed the connection")
        for ev in self.conn.receive_data(data):
            st = self.streams.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived):
                st.headers = dict(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                st.data += ev.data
                if self.ack:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                st.ended = True
            elif isinstance(ev, h2.events.StreamReset):
                st.reset = ev.error_code
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                self.settings_seen = True
        self.flush()
        return True

    def wait(self, sid, cond, timeout=10.0):
        st, deadline = self.streams[sid], time.monotonic() + timeout
        while not cond(st):
            assert time.monotonic() < deadline, f"stream {sid}: timed out (data {bytes(st.data[:80])!r})"
            self.pump(0.5)
        return st

    def response(self, sid, timeout=10.0):
        return self.wait(sid, lambda s: s.headers is not None or s.reset is not None, timeout)

    def finished(self, sid, timeout=10.0):
        return self.wait(sid, lambda s: s.ended or s.reset is not None, timeout)


@pytest.fixture
def echo():
    e = EchoServer()
    yield e
    e.close()


@pytest.fixture
def client_factory():
    made = []

    def make(port, **kw):
        c = H2Proxy(port, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def status(st):
    return int(st.headers[b":status"])


def read_log(path, needle, timeout=5.0):
    """The access log's lines once one contains `needle` (the log is written once a second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text():
            return path.read_text().splitlines()
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not in the access log")


def test_connect_echo_half_close_and_access_log(start_gateway, echo, client_factory, tmp_path):
    log = tmp_path / "access.log"
    gw = start_gateway(config([echo.port], extra=f'  logFilePath: "{log}"\n  logFormat: json\n'))
    c = client_factory(gw.port)
    sid = c.connect(f"127.0.0.1:{echo.port}")
    st = c.response(sid)
    assert status(st) == 200 and not st.ended
    assert b"content-length" not in st.headers
    c.send(sid, b"hello")
    c.wait(sid, lambda s: bytes(s.data) == b"hello")
    # END_STREAM from the client half-closes the target, which still answers before it closes
    c.send(sid, b"world", end=True)
    st = c.finished(sid)
    assert st.reset is None and st.ended
    assert bytes(st.data) == b"helloworld<eof>"
    lines = read_log(log, '"CONNECT"')
    doc = json.loads([ln for ln in lines if '"CONNECT"' in ln][0])
    assert doc["status"] == 200 and doc["protocol"] == "HTTP/2.0"
    assert doc["target"] == f"127.0.0.1:{echo.port}"
    assert doc["bytes_sent"] == len(b"helloworld<eof>")


def tls_over_stream(c, sid, hostname, cafile):
    """A TLS client (memory BIOs) whose records travel as the stream's DATA."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname=hostname)
    consumed = 0

    def move(block=True):
        nonlocal consumed
        if out.pending:
            c.send(sid, out.read())
        st = c.streams[sid]
        if block and consumed == len(st.data):
            c.pump(0.5)
        inc.write(bytes(st.data[consumed:]))
        consumed = len(st.data)

    deadline = time.monotonic() + 10
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            assert time.monotonic() < deadline, "TLS handshake through the tunnel timed out"
            move()
    return tls, move


def test_connect_to_tls_origin_while_other_streams_go_on(start_gateway, tmp_path, client_factory, wwwroot):
    cert, key = make_cert(tmp_path / "certs", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    origin = TlsBackend(cert, key)
    try:
        gw = start_gateway(config([origin.port], extra=f'  wwwroot: "{wwwroot}"\n'))
        c = client_factory(gw.port)
        sid = c.connect(f"localhost:{origin.port}")
        assert status(c.response(sid)) == 200
        tls, move = tls_over_stream(c, sid, "localhost", cert)
        other = c.get("/hello.txt")  # a plain stream of the same connection, mid-tunnel
        tls.write(b"GET /echo/through HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        plain, deadline = b"", time.monotonic() + 10
        while b'"backend"' not in plain or not plain.rstrip().endswith(b"}"):
            assert time.monotonic() < deadline, plain
            move()
            try:
                plain += tls.read(65536)
            except ssl.SSLWantReadError:
                pass
        head, body = plain.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200")
        doc = json.loads(body)
        assert doc["backend"] == "tls" and doc["target"] == "/echo/through"
        st = c.finished(other)
        assert status(st) == 200 and bytes(st.data) == b"hello world\n"
    finally:
        origin.close()


def test_target_that_closes_ends_the_stream(start_gateway, echo, client_factory):
    gw = start_gateway(config([echo.port]))
    c = client_factory(gw.port)
    sid = c.connect(f"127.0.0.1:{echo.port}")
    assert status(c.response(sid)) == 200
    c.send(sid, b"before")
    c.wait(sid, lambda s: bytes(s.data) == b"before")
    c.send(sid, b"!close")
    st = c.finished(sid)
    assert st.ended and st.reset in (None, NO_ERROR), st.reset  # a clean end, never CONNECT_ERROR
    assert bytes(st.data) == b"before"
    st = c.finished(c.get("/"))  # the connection serves on
    assert st.headers is not None


def test_target_reset_is_connect_error(start_gateway, echo, client_factory):
    gw = start_gateway(config([echo.port]))
    c = client_factory(gw.port)
    keep = c.connect(f"127.0.0.1:{echo.port}")
    sid = c.connect(f"127.0.0.1:{echo.port}")
    assert status(c.response(sid)) == 200 and status(c.response(keep)) == 200
    c.send(sid, b"!reset")
    st = c.finished(sid)
    assert st.reset == CONNECT_ERROR and not st.ended
    c.send(keep, b"still here")  # the other tunnel is unaffected
    c.wait(keep, lambda s: bytes(s.data) == b"still here")


@pytest.mark.parametrize("extra, missing_authority", [
    ([(":path", "/")], False),
    ([(":scheme", "http")], False),
    ([(":scheme", "http"), (":path", "/")], False),
    ([], True),
])
def test_malformed_connect_is_protocol_error(start_gateway, echo, client_factory, extra, missing_authority):
    gw = start_gateway(config([echo.port]))
    c = client_factory(gw.port)
    if missing_authority:
        sid = c.open([(":method", "CONNECT")])
    else:
        sid = c.connect(f"127.0.0.1:{echo.port}", extra)
    st = c.finished(sid)
    assert st.reset == PROTOCOL_ERROR and st.headers is None
    assert echo.accepted == 0
    st = c.finished(c.get("/"))  # a stream error, not a connection error
    assert st.headers is not None and st.reset is None


def test_policy_and_proxy_authorization_apply(start_gateway, echo, client_factory):
    sha1 = "{SHA}7YX78Oz8LXLfkqQdW9a5bxXYgCQ="  # s-secret
    users = f'  forwardProxyAuth: true\n  users:\n    - name: "sam"\n      pass: "{sha1}"\n'
    gw = start_gateway(config([echo.port], allow=("127.0.0.2",), extra=users))
    c = client_factory(gw.port)
    st = c.finished(c.connect(f"127.0.0.1:{echo.port}"))
    assert status(st) == 407 and st.headers[b"proxy-authenticate"].startswith(b"Basic ")
    good = [("proxy-authorization", "Basic c2FtOnMtc2VjcmV0")]  # sam:s-secret
    st = c.finished(c.connect(f"127.0.0.1:{echo.port}", good))
    assert status(st) == 403  # loopback outside forwardProxyAllow
    st = c.finished(c.connect("127.0.0.2:443", good))
    assert status(st) == 403  # port not in forwardProxyPorts
    assert echo.accepted == 0
    text = gw.stderr()
    assert "private or special address" in text and "port not in forwardProxyPorts" in text

    gw2 = start_gateway(config([echo.port], extra=users))
    c2 = client_factory(gw2.port)
    sid = c2.connect(f"127.0.0.1:{echo.port}", good)
    assert status(c2.response(sid)) == 200
    c2.send(sid, b"authorised")
    c2.wait(sid, lambda s: bytes(s.data) == b"authorised")


def send_until_blocked(c, sid, limit, quiet=1.0):
    """Sends up to `limit` bytes; returns how many went before the window stayed shut `quiet` s."""
    sent, chunk = 0, b"z" * 16384
    while sent < limit:
        n = c.room(sid)
        if n <= 0:
            c.flush()
            deadline = time.monotonic() + quiet
            while c.room(sid) <= 0 and time.monotonic() < deadline:
                c.pump(0.1)
            if c.room(sid) <= 0:
                return sent
            continue
        c.conn.send_data(sid, chunk[:n])
        sent += n
        if sent % (256 * 1024) < n:
            c.flush()
    c.flush()
    return sent


def test_flow_control_is_back_pressure(start_gateway, echo, client_factory, wwwroot):
    gw = start_gateway(config([echo.port], extra=f'  wwwroot: "{wwwroot}"\n'))
    c = client_factory(gw.port)
    sid = c.connect(f"127.0.0.1:{echo.port}")
    assert status(c.response(sid)) == 200
    echo.pause()  # the target reads nothing: its buffers fill, then the stream's window must stay shut
    limit = 64 * 1024 * 1024
    sent = send_until_blocked(c, sid, limit)
    assert sent < limit, "the stream window was given back for bytes the target never took"
    st = c.finished(c.get("/hello.txt"))  # other streams of the connection are not held up
    assert bytes(st.data) == b"hello world\n"
    echo.resume()
    rest = b"y" * (1024 * 1024)
    c.send(sid, rest, end=True, timeout=30)
    st = c.wait(sid, lambda s: s.ended or s.reset is not None, timeout=60)
    assert st.reset is None
    assert len(st.data) == sent + len(rest) + len(b"<eof>")
    assert bytes(st.data[-len(rest) - 5:]) == rest + b"<eof>"


def test_idle_tunnel_is_closed(start_gateway, echo, client_factory):
    gw = start_gateway(config([echo.port], extra="  forwardProxyIdleTimeout: 600\n"))
    c = client_factory(gw.port)
    busy = c.connect(f"127.0.0.1:{echo.port}")
    idle = c.connect(f"127.0.0.1:{echo.port}")
    assert status(c.response(busy)) == 200 and status(c.response(idle)) == 200
    start = time.monotonic()
    for i in range(8):  # traffic every 0.25 s keeps a tunnel open past its idle timeout
        c.send(busy, b"%d" % i)
        c.wait(busy, lambda s, n=i: bytes(s.data).endswith(b"%d" % n))
        time.sleep(0.25)
    assert c.streams[busy].reset is None and not c.streams[busy].ended
    st = c.finished(idle)
    assert st.reset is not None and time.monotonic() - start < 10
    assert "timed out" in gw.stderr() or "timeout" in gw.stderr()


def test_client_that_does_not_read_holds_the_target_back(start_gateway, echo, client_factory):
    gw = start_gateway(config([echo.port]))
    c = client_factory(gw.port, ack=False)  # the windows it gives the gateway are never returned
    sid = c.connect(f"127.0.0.1:{echo.port}")
    assert status(c.response(sid)) == 200
    c.send(sid, b"!flood")
    c.wait(sid, lambda s: len(s.data) >= 65535 - 16384)  # about one window's worth arrives
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        c.pump(0.1)
    stalled = echo.flooded
    time.sleep(0.5)
    assert echo.flooded == stalled < FLOOD_BYTES // 2, "the gateway kept reading a target its client did not read"
    assert len(c.streams[sid].data) <= 65535
    c.ack = True
    c.conn.acknowledge_received_data(len(c.streams[sid].data), sid)
    c.flush()
    st = c.wait(sid, lambda s: len(s.data) >= FLOOD_BYTES or s.reset is not None, timeout=60)
    assert st.reset is None and bytes(st.data) == pattern(FLOOD_BYTES)
