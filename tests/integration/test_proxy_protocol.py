"""
PROXY protocol v1 and v2: headers written by the test ahead of HTTP/1.1 and TLS on connections
from a trusted source (127.0.0.1), the address they carry used by access rules (IPv4 and IPv6
CIDRs) and the access log; an untrusted source (127.0.0.2) that sends one, a trusted one that does
not, malformed, oversized and stalled headers are closed; proxyProtocolToBackend seen by a
raw-socket backend; configuration errors located.
"""
import ipaddress
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from conftest import make_config
from tls_helpers import make_cert, tls_config, wait_port, free_port

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
REQ = b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
TRUSTED, UNTRUSTED = "127.0.0.1", "127.0.0.2"


def v1(src, dst=None, sport=40000, dport=80):
    fam = "TCP6" if ":" in src else "TCP4"
    dst = dst or ("2001:db8::200" if ":" in src else "192.0.2.200")
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


def v2(src, dst=None, sport=40000, dport=80, command=0x21, tlvs=b""):
    a = ipaddress.ip_address(src)
    d = ipaddress.ip_address(dst or ("192.0.2.200" if a.version == 4 else "2001:db8::200"))
    fam = 0x11 if a.version == 4 else 0x21
    body = a.packed + d.packed + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + bytes([command, fam]) + struct.pack("!H", len(body)) + body


def exchange(port, data, source=TRUSTED, timeout=5.0):
    """Sends `data` from `source` and returns every byte until the server closes."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def status(resp):
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.1 ") else None


@pytest.fixture
def pp_gw(start_gateway, wwwroot, tmp_path):
    log = tmp_path / "access.log"
    text = make_config(wwwroot, logFilePath=str(log), proxyProtocol=True, headerReadTimeout=700) + """\
  proxyProtocolTrusted: ["127.0.0.1/32", "::1"]
  blocklist: ["198.51.100.0/24", "2001:db8:bad::/48"]
hosts:
  - domain: open.test
  - domain: closed.test
    allowlist: ["203.0.113.0/24", "2001:db8:600d::/48"]
"""
    gw = start_gateway(text)
    gw.log = log
    return gw


def request(host):
    return f"GET /hello.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


@pytest.mark.parametrize("make", [v1, v2], ids=["v1", "v2"])
@pytest.mark.parametrize("src,host,code", [
    ("203.0.113.5", "open.test", 200), ("198.51.100.9", "open.test", 403),
    ("2001:db8:bad::1", "open.test", 403), ("2001:db8:bad1::1", "open.test", 200),
    ("203.0.113.5", "closed.test", 200), ("203.0.114.5", "closed.test", 403),
    ("2001:db8:600d::7", "closed.test", 200), ("2001:db8:600e::7", "closed.test", 403),
])
def test_access_rules_use_the_proxy_address(pp_gw, make, src, host, code):
    assert status(exchange(pp_gw.port, make(src) + request(host))) == code


def test_access_log_shows_the_proxy_address(pp_gw):
    assert status(exchange(pp_gw.port, v1("203.0.113.77") + REQ)) == 200
    assert status(exchange(pp_gw.port, v2("2001:db8::77") + REQ)) == 200
    pp_gw.stop()
    lines = pp_gw.log.read_text().splitlines()[-2:]  # two workers may write them in either order
    assert sorted(ln.split(" ", 1)[0] for ln in lines) == ["2001:db8::77", "203.0.113.77"], lines


def test_v2_local_and_v1_unknown_keep_the_socket_address(pp_gw):
    local = V2_SIG + b"\x20\x00\x00\x00"
    assert status(exchange(pp_gw.port, local + REQ)) == 200
    assert status(exchange(pp_gw.port, b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n" + REQ)) == 200
    pp_gw.stop()
    assert all(ln.startswith("127.0.0.1 ") for ln in pp_gw.log.read_text().splitlines()[-2:])


def test_v2_with_tlvs_and_keep_alive(pp_gw):
    tlv = b"\x04" + struct.pack("!H", 5) + b"hello"  # PP2_TYPE_NOOP
    two = request("open.test").replace(b"Connection: close\r\n", b"") + request("open.test")
    out = exchange(pp_gw.port, v2("203.0.113.5", tlvs=tlv) + two)
    assert out.count(b"HTTP/1.1 200 OK") == 2, out


def test_header_split_across_packets(pp_gw):
    s = socket.create_connection(("127.0.0.1", pp_gw.port), timeout=5)
    try:
        hdr = v2("203.0.113.5")
        for piece in (hdr[:5], hdr[5:14], hdr[14:20], hdr[20:] + request("closed.test")):
            s.sendall(piece)
            time.sleep(0.05)
        out = s.recv(65536)
    finally:
        s.close()
    assert status(out) == 200, out


@pytest.mark.parametrize("data", [
    v1("203.0.113.5") + REQ,  # a header from a source that is not trusted
    v2("203.0.113.5") + REQ,
])
def test_untrusted_source_sending_a_header_is_closed(pp_gw, data):
    assert exchange(pp_gw.port, data, source=UNTRUSTED) == b""
    assert "PROXY header from a peer not in proxyProtocolTrusted" in pp_gw.stderr()


def test_untrusted_source_without_a_header_is_served_as_itself(pp_gw):
    assert status(exchange(pp_gw.port, REQ, source=UNTRUSTED)) == 200
    pp_gw.stop()
    assert pp_gw.log.read_text().splitlines()[-1].startswith(UNTRUSTED + " ")


def test_trusted_source_without_a_header_is_closed(pp_gw):
    assert exchange(pp_gw.port, REQ) == b""
    assert "no PROXY header from a peer in proxyProtocolTrusted" in pp_gw.stderr()


@pytest.mark.parametrize("data", [
    b"PROXY TCP4 203.0.113.5 192.0.2.1 1 80\n",  # LF without CR
    b"PROXY TCP4 203.0.113.500 192.0.2.1 1 80\r\n",  # not an address
    b"PROXY TCP4 2001:db8::1 192.0.2.1 1 80\r\n",  # family and address disagree
    b"PROXY TCP4 203.0.113.5 192.0.2.1 1 65536\r\n",  # port out of range
    b"PROXY TCP4 203.0.113.5  192.0.2.1 1 80\r\n",  # double space
    b"PROXY TCP4 203.0.113.5 192.0.2.1 1\r\n",  # a field missing
    b"PROXY UDP4 203.0.113.5 192.0.2.1 1 80\r\n",
    b"PROXY TCP4 " + b"1" * 120 + b"\r\n",  # longer than the 107 bytes v1 allows
    v2("203.0.113.5", command=0x22),  # unknown command
    V2_SIG + b"\x21\x11\x00\x04" + b"\x01\x02\x03\x04",  # address block too short
    v2("203.0.113.5", tlvs=b"\x04" + struct.pack("!H", 600) + b"x" * 600),  # > proxyProtocolMaxBytes
], ids=["lf", "bad-addr", "family", "port", "spaces", "fields", "udp", "v1-long", "v2-cmd", "v2-short",
        "v2-long"])
def test_malformed_or_oversized_headers_are_closed(pp_gw, data):
    assert exchange(pp_gw.port, data + REQ) == b""
    assert "malformed PROXY header" in pp_gw.stderr()
    assert status(exchange(pp_gw.port, v1("203.0.113.5") + REQ)) == 200  # and the gateway goes on


def test_stalled_header_is_closed_by_header_read_timeout(pp_gw):
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", pp_gw.port), timeout=5) as s:
        s.sendall(b"PROXY TCP4 203.0.")
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:  # closed with the peeked bytes unread
            pass
    assert 0.5 < time.monotonic() - t0 < 4
    assert "no complete PROXY header or request within headerReadTimeout" in pp_gw.stderr()


@pytest.mark.parametrize("make", [v1, v2], ids=["v1", "v2"])
def test_header_then_tls(start_gateway, wwwroot, tmp_path, make):
    cert, key = make_cert(tmp_path / "certs", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    sport = free_port()
    log = tmp_path / "tls-access.log"
    text = tls_config(wwwroot, cert, key, sport, extra={
        "proxyProtocol": True, "proxyProtocolTrusted": '["127.0.0.1"]', "logFilePath": str(log),
        "allowlist": '["2001:db8:600d::/48"]'})
    gw = start_gateway(text)
    wait_port(sport)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for src, code in (("2001:db8:600d::9", 200), ("2001:db8:600e::9", 403)):
        raw_sock = socket.create_connection(("127.0.0.1", sport), timeout=5)
        raw_sock.sendall(make(src, dport=sport))
        with ctx.wrap_socket(raw_sock, server_hostname="localhost") as s:
            s.sendall(REQ)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        assert status(out) == code, out
    gw.stop()
    # the client address the PROXY header gave, on the logged line of each request (two workers
    # may write them in either order)
    lines = log.read_text().splitlines()
    assert any(ln.startswith("2001:db8:600d::9 - - [") and '" 200 ' in ln for ln in lines), lines
    assert any(ln.startswith("2001:db8:600e::9 - - [") and '" 403 ' in ln for ln in lines), lines


# ---- proxyProtocolToBackend ----

class RawBackend:
    """Records the first bytes of every connection and answers one keep-alive 200 per connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _recv_until(c, data, enough):
        while not enough(data):
            chunk = c.recv(4096)
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def _serve(self, c):
        c.settimeout(5)
        try:
            # a v2 header starts with CRLF CRLF: take it by its length before looking for a head
            data = self._recv_until(c, b"", lambda d: len(d) >= 16)
            pre = b""
            if data.startswith(V2_SIG):
                size = 16 + struct.unpack("!H", data[14:16])[0]
                data = self._recv_until(c, data, lambda d: len(d) >= size)
                pre, data = data[:size], data[size:]
            while True:
                data = self._recv_until(c, data, lambda d: b"\r\n\r\n" in d)
                head, _, data = data.partition(b"\r\n\r\n")
                self.received.append(pre + head)
                pre = b""
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def raw_backend():
    b = RawBackend()
    yield b
    b.close()


def backend_gw(start_gateway, wwwroot, port, version):
    return start_gateway(make_config(wwwroot, proxyProtocol=True, proxyProtocolToBackend=version) +
                         '  loadModules: [rproxy]\n  proxyProtocolTrusted: ["127.0.0.1"]\n'
                         f'  proxyTo: "http://127.0.0.1:{port}"\n')


def test_v1_to_backend_on_fresh_connections(start_gateway, wwwroot, raw_backend):
    gw = backend_gw(start_gateway, wwwroot, raw_backend.port, "v1")
    for _ in range(2):
        out = exchange(gw.port, v1("203.0.113.9", sport=5555, dport=gw.port) + request("localhost"))
        assert status(out) == 200 and out.endswith(b"ok"), out
    assert len(raw_backend.received) == 2  # one connection each: never pooled
    for head in raw_backend.received:
        first, _, rest = head.partition(b"\r\n")
        # the client from the PROXY header; the destination is the gateway's own socket address
        assert first == f"PROXY TCP4 203.0.113.9 127.0.0.1 5555 {gw.port}".encode(), head
        assert rest.startswith(b"GET /hello.txt HTTP/1.1\r\n")
        assert b"X-Forwarded-For: 203.0.113.9" in rest


def test_v2_to_backend_ipv6_client(start_gateway, wwwroot, raw_backend):
    gw = backend_gw(start_gateway, wwwroot, raw_backend.port, "v2")
    out = exchange(gw.port, v2("2001:db8::9", sport=6000) + request("localhost"))
    assert status(out) == 200, out
    head = raw_backend.received[-1]
    assert head.startswith(V2_SIG + b"\x21\x21\x00\x24"), head
    body = head[16:52]
    assert ipaddress.ip_address(body[:16]) == ipaddress.ip_address("2001:db8::9")
    assert ipaddress.ip_address(body[16:32]) == ipaddress.ip_address("::ffff:127.0.0.1")
    assert struct.unpack("!HH", body[32:36]) == (6000, gw.port)
    assert head[52:].startswith(b"GET /hello.txt HTTP/1.1\r\n")


# ---- configuration errors ----

@pytest.mark.parametrize("extra,message", [
    ("  proxyProtocol: true\n", "bad.yaml:3:18: proxyProtocol: needs proxyProtocolTrusted"),
    ('  proxyProtocolTrusted: ["10.0.0.0/33"]\n',
     "bad.yaml:3:26: proxyProtocolTrusted: '10.0.0.0/33' is not an IP address or CIDR prefix"),
    ("  proxyProtocolToBackend: v3\n",
     "bad.yaml:3:27: proxyProtocolToBackend: 'v3' is not a PROXY protocol version (expected v1, v2 or off)"),
    ("  proxyProtocolMaxBytes: 50\n", "bad.yaml:3:26: proxyProtocolMaxBytes:"),
])
def test_config_errors_are_located(tmp_path, gateway_bin, extra, message):
    p = tmp_path / "bad.yaml"
    p.write_text("global:\n  port: 1\n" + extra)
    r = subprocess.run([str(gateway_bin), "-t", "-c", str(p)], capture_output=True, text=True)
    assert r.returncode != 0
    assert message in r.stderr + r.stdout, r.stderr


def test_header_goes_before_tls_to_an_https_backend(start_gateway, wwwroot, tmp_path):
    cert, key = make_cert(tmp_path / "certs", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    seen = []

    def serve():
        c, _ = srv.accept()
        c.settimeout(5)
        line = b""
        while not line.endswith(b"\r\n"):  # the PROXY line, byte by byte: TLS starts right after it
            line += c.recv(1)
        seen.append(line)
        with ctx.wrap_socket(c, server_side=True) as t:
            head = b""
            while b"\r\n\r\n" not in head:
                head += t.recv(4096)
            t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\ntls")

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    gw = start_gateway(make_config(wwwroot, proxyProtocolToBackend="v1", disableProxyCertificateVerification=True) +
                       f'  loadModules: [rproxy]\n  proxyTo: "https://127.0.0.1:{srv.getsockname()[1]}"\n')
    out = exchange(gw.port, REQ)
    th.join(5)
    srv.close()
    assert status(out) == 200 and out.endswith(b"tls"), out
    assert seen and seen[0].startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 "), seen
