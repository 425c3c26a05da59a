"""
Frame-level HTTP/2 client for conformance tests: hand-built frames on a raw socket (h2c with prior
knowledge or TLS with ALPN h2), an HPACK encoder for exact header-block representations, and the
verdicts h2spec uses (connection error, stream error, still alive, a response).
"""
import socket
import ssl
import struct
import time

import hpack
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

from tls_helpers import (ACK, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING, PREFACE,
                         RST_STREAM, SETTINGS, WINDOW_UPDATE, frame)

PADDED, PRIORITY_FLAG = 0x8, 0x20
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, FLOW_CONTROL_ERROR = 5, 6, 7, 3
# SETTINGS identifiers (RFC 9113 6.5.2)
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE = 1, 2, 3, 4, 5

CLOSED = "closed"  # read_frame's answer once the server closed the connection


def settings(*pairs, flags=0, stream_id=0):
    """A SETTINGS frame from (identifier, value) pairs."""
    return frame(SETTINGS, flags, stream_id, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def ping(data=b"h2spec\0\0", flags=0, stream_id=0):
    return frame(PING, flags, stream_id, data)


def window_update(stream_id, increment):
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def rst_stream(stream_id, code=0):
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def priority(stream_id, depends_on=0, weight=15, exclusive=False):
    return frame(2, 0, stream_id, priority_fields(depends_on, weight, exclusive))


def priority_fields(depends_on=0, weight=15, exclusive=False):
    return struct.pack(">IB", depends_on | (0x80000000 if exclusive else 0), weight)


def padded(payload, pad_length, declared=None):
    """A payload with the PADDED layout; `declared` overrides the pad length field (to lie)."""
    return bytes([pad_length if declared is None else declared]) + payload + b"\0" * pad_length


# ---- HPACK (RFC 7541), representation by representation ----

def hp_int(value, prefix_bits, first=0):
    """An integer with an N-bit prefix; `first` holds the pattern bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hp_str(text, huffman=False):
    data = text.encode() if isinstance(text, str) else text
    if huffman:
        data = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH).encode(data)
        return hp_int(len(data), 7, 0x80) + data
    return hp_int(len(data), 7) + data


def hp_indexed(index):
    return hp_int(index, 7, 0x80)


def hp_literal(name, value, kind="incremental", huffman=False):
    """A literal field; `name` is a static/dynamic table index or a new name."""
    prefix, pattern = {"incremental": (6, 0x40), "without": (4, 0x00), "never": (4, 0x10)}[kind]
    if isinstance(name, int):
        return hp_int(name, prefix, pattern) + hp_str(value, huffman)
    return bytes([pattern]) + hp_str(name, huffman) + hp_str(value, huffman)


def hp_table_size(size):
    return hp_int(size, 5, 0x20)


def request_fields(path="/", method="GET", scheme="http", authority="localhost", extra=()):
    return [(":method", method), (":scheme", scheme), (":path", path), (":authority", authority), *extra]


def encode(fields):
    """A header block exactly as given (no validation, names kept as written)."""
    return hpack.Encoder().encode(fields)


# ---- the connection ----

_context = None


def _client_context():
    """One TLS client context for every connection (no trust store to load: the certificate is
    a throw-away one), ALPN h2 only."""
    global _context
    if _context is None:
        _context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _context.check_hostname = False
        _context.verify_mode = ssl.CERT_NONE
        _context.set_alpn_protocols(["h2"])
    return _context


class H2Conn:
    """One client connection. Server frames are read as (type, flags, stream_id, payload)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.closed = False
        self.decoder = hpack.Decoder()
        self.seen = []  # every frame read so far, for failure messages
        self.streams = {}  # stream id -> response headers, body, ended
        self.scheme = "https" if isinstance(sock, ssl.SSLSocket) else "http"

    @classmethod
    def plain(cls, port):
        return cls(socket.create_connection(("127.0.0.1", port), timeout=5))

    @classmethod
    def tls(cls, port):
        s = _client_context().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                          server_hostname="localhost")
        assert s.selected_alpn_protocol() == "h2"
        return cls(s)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, *frames):
        try:
            self.sock.sendall(b"".join(frames))
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True  # the verdict is in what the server sent before closing

    def handshake(self, *pairs):
        """Preface and our SETTINGS; returns once the server's SETTINGS came (acknowledged) and
        it acknowledged ours, as h2spec does before every case."""
        self.send(PREFACE, settings(*pairs))
        got_settings = got_ack = False
        while not (got_settings and got_ack):
            f = self.read_frame()
            assert f not in (None, CLOSED), f"handshake: {f}, frames {self.seen}"
            if f[0] == SETTINGS and f[1] & ACK:
                got_ack = True
            elif f[0] == SETTINGS:
                got_settings = True
                p = f[3]
                self.server_settings = dict(struct.unpack(">HI", p[i:i + 6]) for i in range(0, len(p), 6))
                self.send(settings(flags=ACK))
        return self

    def headers(self, stream_id, fields=None, end_stream=True, end_headers=True, flags=0, block=None):
        """A HEADERS frame with a GET request (or `fields`, or a raw `block`)."""
        if block is None:
            block = encode(fields if fields is not None else request_fields(scheme=self.scheme))
        flags |= (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
        return frame(HEADERS, flags, stream_id, block)

    def request(self, stream_id, path="/", method="GET", extra=(), end_stream=True):
        return self.headers(stream_id, request_fields(path, method, self.scheme, extra=extra), end_stream)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, ssl.SSLError, OSError):
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def read_frame(self, timeout=5.0):
        """The next server frame, CLOSED once the server closed, None after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + length:
                    b = self.buf
                    f = (b[3], b[4], int.from_bytes(b[5:9], "big") & 0x7FFFFFFF, b[9:9 + length])
                    self.buf = b[9 + length:]
                    self.seen.append(f[:3] + (f[3][:16],))
                    if f[0] == HEADERS:
                        self._decode(f)
                    if f[0] in (HEADERS, DATA):
                        self._track(f)
                    return f
            if self.closed:
                return CLOSED
            if not self._fill(deadline):
                if self.closed:
                    continue
                return None

    def read_raw_until_close(self, timeout=5.0):
        """Every byte until the server closes (for answers that are not HTTP/2 frames)."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        assert self.closed, f"still open after {timeout}s"
        return self.buf

    def _decode(self, f):
        """Keeps the HPACK decoder in step with the server's header blocks."""
        p = f[3]
        if f[1] & PADDED:
            p = p[1:len(p) - p[0]]
        if f[1] & PRIORITY_FLAG:
            p = p[5:]
        self.decoded = self.decoder.decode(p, raw=False)

    # ---- verdicts ----

    def connection_error(self, *codes, timeout=5.0):
        """Asserts a GOAWAY with one of `codes` and the connection closed after it."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(max(deadline - time.monotonic(), 0.01))
            assert f is not None, f"no GOAWAY {codes} within {timeout}s; frames {self.seen}"
            assert f != CLOSED, f"closed without GOAWAY {codes}; frames {self.seen}"
            if f[0] == GOAWAY:
                code = int.from_bytes(f[3][4:8], "big")
                assert code in codes, f"GOAWAY code {code}, wanted {codes}; frames {self.seen}"
                self.last_stream_id = int.from_bytes(f[3][:4], "big") & 0x7FFFFFFF
                assert self.read_frame(timeout) == CLOSED, "the connection stayed open after GOAWAY"
                return code

    def stream_error(self, stream_id, *codes, timeout=5.0):
        """Asserts RST_STREAM on `stream_id` with one of `codes`, or a connection error with one
        of them (RFC 9113 5.4: an endpoint may treat a stream error as a connection error)."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(max(deadline - time.monotonic(), 0.01))
            assert f is not None, f"no RST_STREAM {codes} within {timeout}s; frames {self.seen}"
            assert f != CLOSED, f"closed without RST_STREAM or GOAWAY {codes}; frames {self.seen}"
            if f[0] == RST_STREAM and f[2] == stream_id:
                code = int.from_bytes(f[3], "big")
                assert code in codes, f"RST_STREAM code {code}, wanted {codes}; frames {self.seen}"
                return code
            if f[0] == GOAWAY:
                code = int.from_bytes(f[3][4:8], "big")
                assert code in codes, f"GOAWAY code {code}, wanted {codes}; frames {self.seen}"
                return code

    def alive(self, timeout=5.0):
        """Asserts the connection still works: a PING is answered, with no error frame before."""
        payload = b"alive?\0\1"
        self.send(ping(payload))
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(max(deadline - time.monotonic(), 0.01))
            assert f not in (None, CLOSED), f"no PING ACK: {f}; frames {self.seen}"
            assert f[0] not in (GOAWAY, RST_STREAM), f"error frame {f}; frames {self.seen}"
            if f[0] == PING and f[1] & ACK and f[3] == payload:
                return

    def response(self, stream_id, timeout=5.0):
        """Reads until `stream_id` ends; returns (headers as a dict, body)."""
        deadline = time.monotonic() + timeout
        while not self.streams.get(stream_id, {}).get("ended"):
            f = self.read_frame(max(deadline - time.monotonic(), 0.01))
            assert f not in (None, CLOSED), f"stream {stream_id} did not end: {f}; frames {self.seen}"
            assert f[0] != GOAWAY and not (f[0] == RST_STREAM and f[2] == stream_id), f"{f}; {self.seen}"
        st = self.streams[stream_id]
        return st["headers"], st["body"]

    def _track(self, f):
        """Per-stream account of the response frames, whatever order streams are read in."""
        st = self.streams.setdefault(f[2], {"headers": None, "body": b"", "ended": False})
        if f[0] == HEADERS and st["headers"] is None:
            st["headers"] = dict(self.decoded)
        elif f[0] == DATA:
            st["body"] += f[3][1:len(f[3]) - f[3][0]] if f[1] & PADDED else f[3]
        if f[1] & END_STREAM:
            st["ended"] = True
