"""HTTP/2 to backends: h2c with prior knowledge (h2c:// URLs, `protocol: h2c` groups) and h2 over TLS
(`protocol: h2`, ALPN), streams multiplexed on shared sessions, trailers, resets and GOAWAY."""
import concurrent.futures
import hashlib
import json
import socket
import subprocess
import time

import h2.events
import pytest

from conftest import PORT_PLACEHOLDER, free_port, http
from h2_backend import H2Backend
from test_http2 import Client
from tls_helpers import make_cert, wait_port


@pytest.fixture
def h2backend():
    made = []

    def make(**kw):
        made.append(H2Backend(**kw))
        return made[-1]

    yield make
    for b in made:
        b.close()


def proxy_config(target, extra="", groups=""):
    return (f"{groups}global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [rproxy]\n"
            f"  proxyTo: \"{target}\"\n{extra}")


def group(name, urls, protocol, more=""):
    servers = "\n".join(f"      - \"{u}\"" for u in urls)
    return f"upstreams:\n  {name}:\n    protocol: {protocol}\n{more}    servers:\n{servers}\n"


class TrailerClient(Client):
    """The HTTP/2 test client, also keeping response trailers."""

    def pump(self, timeout=5.0):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        if not data:
            raise EOFError
        for ev in self.conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                self.responses.setdefault(ev.stream_id, {"body": b""})["headers"] = dict(ev.headers)
            elif isinstance(ev, h2.events.TrailersReceived):
                self.responses[ev.stream_id]["trailers"] = dict(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                self.responses[ev.stream_id]["body"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.ended.add(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.resets[ev.stream_id] = ev.error_code
        self.flush()
        return True


def h2_client(gw):
    return TrailerClient(socket.create_connection(("127.0.0.1", gw.port), timeout=10))


# ---- layer 1: plain requests over h2c and TLS ----

def test_get_over_h2c_url(start_gateway, h2backend):
    b = h2backend()
    gw = start_gateway(proxy_config(b.url + "/echo"))
    r = gw.get("/a?x=1", host="site.test")
    assert r.status == 200, r
    echo = json.loads(r.body)
    assert echo["path"] == "/echo/a?x=1"
    assert echo["authority"] == f"127.0.0.1:{b.port}"
    assert echo["headers"]["x-forwarded-host"] == "site.test"
    assert "connection" not in echo["headers"] and "host" not in echo["headers"]
    assert b.connections == 1


def test_post_body_and_large_response(start_gateway, h2backend):
    b = h2backend()
    gw = start_gateway(proxy_config("http://up", groups=group("up", [f"http://127.0.0.1:{b.port}"], "h2c")))
    body = bytes(range(256)) * 1200  # 300 KiB: several stream windows each way
    status, _, data = gw.http("POST", "/echo", body=body, timeout=20,
                              headers={"Content-Type": "application/octet-stream"})
    assert status == 200, data
    assert json.loads(data)["body_length"] == len(body)
    r = gw.get("/bytes/1000000", timeout=20)
    assert r.status == 200
    assert r.header("content-length") == "1000000"
    assert hashlib.sha256(r.body).digest() == hashlib.sha256(bytes(i % 251 for i in range(1000000))).digest()


def test_chunked_upload_from_http1_client(start_gateway, h2backend):
    b = h2backend()
    gw = start_gateway(proxy_config(b.url))
    req = (b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    head, _, body = gw.raw(req).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert json.loads(body)["body_length"] == 11


def test_trailers_reach_http2_and_http1_clients(start_gateway, h2backend):
    b = h2backend()
    gw = start_gateway(proxy_config(b.url))
    c = h2_client(gw)
    sid = c.request("/trailers", extra=[("te", "trailers")])
    res = c.wait(sid)
    assert res["headers"][b":status"] == b"200"
    assert res["body"] == b"body before trailers"
    assert res["trailers"] == {b"x-checksum": b"abc", b"x-count": b"2"}
    data = gw.raw(b"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200")
    assert b"body before trailers" in data
    assert data.endswith(b"0\r\nx-checksum: abc\r\nx-count: 2\r\n\r\n")  # chunked trailers


def test_backend_reset_mid_response_is_an_abort(start_gateway, h2backend):
    b = h2backend()
    gw = start_gateway(proxy_config(b.url))
    c = h2_client(gw)
    sid = c.request("/reset")
    c.wait(sid)
    assert sid in c.resets and sid not in c.ended  # never a clean end
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(b"GET /reset HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert len(data.split(b"\r\n\r\n", 1)[1]) < 100000  # cut short, then closed


def test_backend_refused_is_503(start_gateway):
    gw = start_gateway(proxy_config(f"h2c://127.0.0.1:{free_port()}"))
    assert gw.get("/").status == 503  # as for HTTP/1.1 backends


def test_backend_speaking_http1_is_502(start_gateway):
    from backends import Backend
    b = Backend()
    try:
        gw = start_gateway(proxy_config(f"h2c://127.0.0.1:{b.port}"))
        assert gw.get("/echo").status == 502
    finally:
        b.close()


@pytest.mark.parametrize("groups,target,message", [
    (group("up", ["https://127.0.0.1:1"], "h2c"), "http://up", "protocol h2c needs an http:// URL"),
    (group("up", ["http://127.0.0.1:1"], "h2"), "http://up", "protocol h2 needs an https:// URL"),
    (group("up", ["http://127.0.0.1:1"], "spdy"), "http://up", "protocol: expected http1, h2, h2c or auto"),
    (group("up", ["http://127.0.0.1:1"], "auto"), "http://up", "protocol auto needs an https:// URL"),
    (group("up", ["http://127.0.0.1:1"], "h2c", more="    healthCheck:\n      path: /h\n"), "http://up",
     "active health checks speak HTTP/1.1"),
    ("", "h2c://127.0.0.1:1", None),
])
def test_protocol_config_errors(tmp_path, gateway_bin, groups, target, message):
    cfg = tmp_path / "g.yaml"
    cfg.write_text(proxy_config(target, groups=groups).replace(PORT_PLACEHOLDER, "8080"))
    p = subprocess.run([gateway_bin, "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=20)
    if message is None:
        assert p.returncode == 0, p.stderr
        return
    assert p.returncode != 0
    assert message in p.stderr
    assert f"{cfg}:" in p.stderr  # file:line:column


def test_mixed_protocol_list_and_authto_refused(tmp_path, gateway_bin):
    cfg = tmp_path / "g.yaml"
    cfg.write_text("global:\n  port: 8080\n  loadModules: [rproxy, fauth]\n"
                   "  proxyTo: [\"http://127.0.0.1:1\", \"h2c://127.0.0.1:2\"]\n"
                   "  authTo: \"h2c://127.0.0.1:3/auth\"\n")
    p = subprocess.run([gateway_bin, "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "cannot mix HTTP/1.1 and HTTP/2" in p.stderr
    assert "authTo: HTTP/2 backends" in p.stderr


# ---- h2 over TLS (ALPN) to h2o ----

@pytest.fixture
def h2o_tls(tmp_path):
    """h2o serving files over TLS (HTTP/2 by ALPN), with a certificate for localhost."""
    root = tmp_path / "h2o-root"
    root.mkdir()
    (root / "index.html").write_text("hello from h2o\n")
    (root / "big.bin").write_bytes(bytes(i % 251 for i in range(500000)))
    cert, key = make_cert(tmp_path / "h2o-cert", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    port = free_port()
    conf = tmp_path / "h2o.conf"
    conf.write_text(f"""user: root
pid-file: {tmp_path}/h2o.pid
error-log: {tmp_path}/h2o-error.log
access-log: {tmp_path}/h2o-access.log
listen:
  host: 127.0.0.1
  port: {port}
  ssl:
    certificate-file: {cert}
    key-file: {key}
hosts:
  default:
    paths:
      /:
        file.dir: {root}
""")
    proc = subprocess.Popen(["h2o", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield port, cert, tmp_path / "h2o-access.log"
    finally:
        proc.terminate()
        proc.wait(10)


def test_h2_over_tls_to_h2o(start_gateway, h2o_tls):
    port, cert, access_log = h2o_tls
    gw = start_gateway(proxy_config("http://up", groups=group("up", [f"https://localhost:{port}"], "h2"),
                                    extra=f"  proxyCaFile: \"{cert}\"\n"))
    r = gw.get("/index.html")
    assert r.status == 200, r
    assert r.body == b"hello from h2o\n"
    r = gw.get("/big.bin", timeout=20)
    assert r.status == 200 and len(r.body) == 500000
    assert r.body == bytes(i % 251 for i in range(500000))
    deadline = time.monotonic() + 3
    while b"HTTP/2" not in access_log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b"HTTP/2" in access_log.read_bytes()  # h2o saw HTTP/2, negotiated by ALPN


def test_auto_protocol_picks_h2_by_alpn(start_gateway, h2o_tls):
    port, cert, access_log = h2o_tls
    gw = start_gateway(proxy_config("http://up", groups=group("up", [f"https://localhost:{port}"], "auto"),
                                    extra=f"  proxyCaFile: \"{cert}\"\n"))
    for _ in range(3):
        r = gw.get("/index.html")
        assert r.status == 200 and r.body == b"hello from h2o\n"
    deadline = time.monotonic() + 3
    while access_log.read_bytes().count(b"HTTP/2") < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert access_log.read_bytes().count(b"HTTP/2") == 3


@pytest.mark.one_worker
def test_auto_protocol_falls_back_to_http1(start_gateway, tmp_path):
    from test_backend_tls import TlsBackend  # HTTP/1.1 over TLS, no ALPN answer
    cert, key = make_cert(tmp_path / "certs", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    b = TlsBackend(cert, key)
    try:
        groups = group("up", [f"https://localhost:{b.port}"], "auto")
        gw = start_gateway(proxy_config("http://up", groups=groups, extra=f"  proxyCaFile: \"{cert}\"\n"))
        for i in range(3):
            status, _, body = gw.http("POST", f"/echo/{i}", body=b"abc")
            assert status == 200, body
            assert json.loads(body)["target"] == f"/echo/{i}"
        assert b.connections == 1  # the first handshake's connection is reused by the HTTP/1.1 engine
    finally:
        b.close()


# ---- layer 2: streams multiplexed on shared sessions ----

def concurrent_gets(port, path, n):
    def one(_):
        status, _, body = http(port, "GET", path, timeout=20)
        return status, body
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


@pytest.mark.one_worker
def test_fifty_concurrent_requests_share_one_connection(start_gateway, h2backend):
    b = h2backend()
    gw = start_gateway(proxy_config(b.url))
    results = concurrent_gets(gw.port, "/slow/500", 50)
    assert all(r == (200, b"ok") for r in results), results
    assert b.connections == 1
    assert b.max_active > 10  # the streams really were open at the same time


@pytest.mark.one_worker
def test_sessions_beyond_max_concurrent_streams(start_gateway, h2backend):
    b = h2backend(max_concurrent_streams=10)
    gw = start_gateway(proxy_config(b.url))
    gw.get("/slow/1")  # the session learns the backend's limit
    results = concurrent_gets(gw.port, "/slow/500", 30)
    assert all(r == (200, b"ok") for r in results), results
    assert 3 <= b.connections <= 4
    assert b.max_active <= 10


@pytest.mark.one_worker
def test_goaway_lets_streams_finish_and_new_ones_go_elsewhere(start_gateway, h2backend):
    b = h2backend()
    gw = start_gateway(proxy_config(b.url))
    c = h2_client(gw)
    slow = [c.request("/slow/700") for _ in range(5)]
    time.sleep(0.2)
    bye = c.request("/goaway")  # the backend ends its session after this one
    assert c.wait(bye)["body"] == b"bye"
    for sid in slow:  # the streams in flight before the GOAWAY finish
        assert c.wait(sid)["body"] == b"ok"
    r = gw.get("/echo")  # a new stream goes to a new session
    assert r.status == 200
    assert b.connections == 2


@pytest.mark.one_worker
def test_idle_session_without_ping_answer_is_closed(start_gateway, h2backend):
    b = h2backend()
    gw = start_gateway(proxy_config(b.url, extra="  proxyHttp2PingInterval: 200\n"))
    assert gw.get("/echo").status == 200
    time.sleep(0.5)  # PINGs answered: the idle session stays
    assert b.ended == 0
    b.mute = True
    deadline = time.monotonic() + 3
    while b.ended == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.ended == 1  # the unanswered PING closed it
    b.mute = False
    assert gw.get("/echo").status == 200  # on a new session, never on the dead one
    assert b.connections == 2


@pytest.mark.one_worker
def test_slow_client_does_not_stall_other_streams(start_gateway, h2backend):
    """Back-pressure per stream: a client that reads nothing holds only its stream's window."""
    b = h2backend()
    gw = start_gateway(proxy_config(b.url))
    stalled = socket.create_connection(("127.0.0.1", gw.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /bytes/20000000 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.5)
    results = concurrent_gets(gw.port, "/bytes/300000", 5)
    assert all(s == 200 and len(body) == 300000 for s, body in results)
    assert b.connections == 1
    stalled.close()


@pytest.mark.one_worker
def test_client_leaving_cancels_the_backend_stream(start_gateway, h2backend):
    b = h2backend()
    gw = start_gateway(proxy_config(b.url))
    c = h2_client(gw)
    sid = c.request("/bytes/20000000")
    while not c.responses[sid]["body"]:
        c.pump(1.0)
    c.conn.reset_stream(sid)
    c.flush()
    deadline = time.monotonic() + 3
    while b.resets == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.resets == 1  # RST_STREAM(CANCEL) went to the backend
    assert gw.get("/echo").status == 200  # and the session goes on serving
    assert b.connections == 1
