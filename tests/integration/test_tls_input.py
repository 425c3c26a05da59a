"""
How the gateway reads TLS input: one read(2) takes what the socket holds and BoringSSL is served
from it, a short read meaning "nothing more until the next readiness event". These tests feed TLS
in the shapes that stress that: records cut into small segments that arrive one by one (each read
comes back short, the record completes only later), and a flight larger than one read can take
(reads that fill the buffer must be followed by more before waiting for epoll).
"""
import socket
import ssl
import time

from tls_helpers import start_tls


def trickle(sock, data, piece=7, pause=0.001):
    """Sends `data` in segments of `piece` bytes, one after another (Nagle off)."""
    for i in range(0, len(data), piece):
        sock.sendall(data[i:i + piece])
        time.sleep(pause)


def pump_out(sock, obj_out):
    data = obj_out.read()
    if data:
        trickle(sock, data)


def pump_in(sock, obj_in):
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("the gateway closed the connection")
    obj_in.write(chunk)


def trickled_tls(port):
    """A TLS client (HTTP/1.1 by ALPN) whose every byte reaches the gateway in 7-byte segments, the
    handshake included; returns (sock, SSLObject, incoming BIO, outgoing BIO)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pump_out(sock, outgoing)
            pump_in(sock, incoming)
    pump_out(sock, outgoing)
    return sock, obj, incoming, outgoing


def read_response(sock, obj, incoming, length):
    """Decrypted bytes until the head and `length` body bytes arrived."""
    out = b""
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in out or len(out.split(b"\r\n\r\n", 1)[1]) < length:
        assert time.monotonic() < deadline, f"no complete response, got {out[:200]!r}"
        try:
            out += obj.read(65536)
        except ssl.SSLWantReadError:
            pump_in(sock, incoming)
    return out


def test_records_arriving_in_small_segments_are_answered(start_gateway, wwwroot, tmp_path):
    _, sport = start_tls(start_gateway, wwwroot, tmp_path)
    sock, obj, incoming, outgoing = trickled_tls(sport)
    try:
        for _ in range(2):  # the second request: the connection reads again after a short read
            obj.write(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            pump_out(sock, outgoing)
            out = read_response(sock, obj, incoming, len(b"hello world\n"))
            assert out.startswith(b"HTTP/1.1 200 ")
            assert out.endswith(b"\r\n\r\nhello world\n")
    finally:
        sock.close()


def test_flight_larger_than_one_read_is_all_answered(start_gateway, wwwroot, tmp_path):
    _, sport = start_tls(start_gateway, wwwroot, tmp_path)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    n = 400  # about 40 KiB of pipelined requests, several TLS records, written at once
    request = b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"p" * 48 + b"\r\n\r\n"
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", sport), timeout=5),
                         server_hostname="localhost") as s:
        s.sendall(request * n)
        out = b""
        deadline = time.monotonic() + 10
        while out.count(b"hello world\n") < n:
            assert time.monotonic() < deadline, f"{out.count(b'HTTP/1.1 200 ')} of {n} answered"
            chunk = s.recv(65536)
            assert chunk, f"closed after {out.count(b'HTTP/1.1 200 ')} of {n} responses"
            out += chunk
    assert out.count(b"HTTP/1.1 200 ") == n
