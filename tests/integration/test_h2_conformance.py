"""
HTTP/2 conformance, case by case as the public h2spec suite (generic/, http2/ by RFC 9113 section,
hpack/ by RFC 7541 section), with hand-built frames on raw sockets. Every case runs over h2c with
prior knowledge on the plain port and over TLS with ALPN h2, against one gateway per module (the
gateway must survive every case and exit cleanly at the end).

Verdicts are h2spec's, made strict: a connection error is a GOAWAY with the expected code followed
by the close; a stream error is a RST_STREAM with the expected code on that stream, or a GOAWAY
with that code (RFC 9113 5.4 lets an endpoint escalate); "no error" is a PING answered (or the
response the case asked for) with no GOAWAY or RST_STREAM before it.

The request bodies go to a real HTTP/1.1 backend (/echo) through the reverse proxy, so that the
stream stays open while the body arrives; static files (with a client window of 0 when a case
needs a stream that stays open) serve the rest.
"""
import gzip
import json
import struct

import pytest

from backends import Backend
from conftest import Gateway, build_demo_root, free_port
from h2frames import (CLOSED, ENABLE_PUSH, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, HEADER_TABLE_SIZE,
                      INITIAL_WINDOW_SIZE, MAX_CONCURRENT_STREAMS, MAX_FRAME_SIZE, PADDED, PRIORITY_FLAG,
                      REFUSED_STREAM, STREAM_CLOSED, H2Conn, encode, hp_indexed, hp_int, hp_literal, hp_str,
                      hp_table_size, padded, ping, priority, priority_fields, request_fields, rst_stream,
                      settings, window_update)
from tls_helpers import (ACK, COMPRESSION_ERROR, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, PING,
                         PROTOCOL_ERROR, SETTINGS, frame, make_cert, tls_config, wait_port)

CANCEL = 8
UNKNOWN_FRAME_TYPE = 0x16


@pytest.fixture(scope="module")
def server(gateway_bin, tmp_path_factory):
    """One gateway for the module: static files on /, /echo proxied to a backend; h2c on the
    plain port, h2 over TLS on `sport`."""
    tmp = tmp_path_factory.mktemp("h2conformance")
    www = build_demo_root(tmp / "www")
    cert, key = make_cert(tmp / "certs", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    backend = Backend()
    sport = free_port()
    text = tls_config(www, cert, key, sport, extra={"loadModules": "[rproxy]"})
    text += ('hosts:\n  - domain: "*"\n    locations:\n      - path: /echo\n'
             f'        proxyTo: "{backend.url}"\n')
    gw = Gateway(tmp / "gw", gateway_bin).start(text)
    gw.sport = sport
    try:
        wait_port(sport)
        yield gw
    finally:
        backend.close()
    gw.check_clean_exit()


@pytest.fixture(params=["h2c", "tls"])
def h2(request, server):
    """Factory: h2(*settings, handshake=True) -> a connection over this case's transport."""
    conns = []

    def open_conn(*pairs, handshake=True):
        c = H2Conn.plain(server.port) if request.param == "h2c" else H2Conn.tls(server.sport)
        conns.append(c)
        return c.handshake(*pairs) if handshake else c

    open_conn.transport = request.param
    yield open_conn
    for c in conns:
        c.close()
    assert server.alive(), f"the gateway died; stderr:\n{server.stderr()}"


def post_headers(c, sid, length=None, end_stream=False, path="/echo/x"):
    extra = [("content-length", str(length))] if length is not None else []
    return c.headers(sid, request_fields(path, "POST", c.scheme, extra=extra), end_stream=end_stream)


def echoed(c, sid):
    """The backend's JSON account of the request on `sid`."""
    hdrs, body = c.response(sid)
    assert hdrs[":status"] == "200", hdrs
    return json.loads(body)


def data(sid, payload=b"test", end_stream=True, flags=0):
    return frame(DATA, flags | (END_STREAM if end_stream else 0), sid, payload)


def open_stream(h2, path="/file1k.bin"):
    """A connection whose window is 0 and a GET on stream 1: the response cannot finish, so the
    stream stays half-closed (remote) on the server."""
    c = h2((INITIAL_WINDOW_SIZE, 0))
    c.send(c.request(1, path))
    return c


def finished_stream(h2):
    """A connection whose stream 1 was answered in full: the stream is closed."""
    c = h2()
    c.send(c.request(1, "/hello.txt"))
    assert c.response(1)[1] == b"hello world\n"
    return c


def assert_ping_or_close(c):
    """After a GOAWAY from the client: the PING is answered, or the server closes cleanly."""
    c.send(ping(b"goaway?\0"))
    while True:
        f = c.read_frame()
        assert f is not None, f"no answer; frames {c.seen}"
        if f == CLOSED or (f[0] == PING and f[1] & ACK):
            return
        if f[0] == GOAWAY:
            assert int.from_bytes(f[3][4:8], "big") == 0, f"error GOAWAY {f}"


# ================================ generic/ ================================

def test_generic_1_1_preface_gets_settings(h2):
    c = h2()
    assert c.seen[0][0] == SETTINGS and not c.seen[0][1] & ACK
    c.alive()


def test_generic_2_1_priority_on_idle_stream(h2):
    c = h2()
    c.send(priority(1, 0, 255), c.request(1))
    assert c.response(1)[0][":status"] == "200"


@pytest.mark.parametrize("extra", ["window_update", "priority", "rst_stream"])
def test_generic_2_frames_on_half_closed_remote_stream(h2, extra):
    c = open_stream(h2)
    c.send({"window_update": window_update(1, 100), "priority": priority(1, 0, 10),
            "rst_stream": rst_stream(1, CANCEL)}[extra])
    c.alive()


def test_generic_2_5_priority_on_closed_stream(h2):
    c = finished_stream(h2)
    c.send(priority(1, 0, 10))
    c.alive()


@pytest.mark.parametrize("shape", ["one", "multiple", "padded"])
def test_generic_3_1_data(h2, shape):
    c = h2()
    frames = {"one": [data(1, b"test")], "multiple": [data(1, b"te", False), data(1, b"st")],
              "padded": [data(1, padded(b"test", 6), flags=PADDED)]}[shape]
    c.send(post_headers(c, 1, 4), *frames)
    assert echoed(c, 1)["body_len"] == 4


@pytest.mark.parametrize("shape", ["plain", "padded", "priority"])
def test_generic_3_2_headers(h2, shape):
    c = h2()
    block = encode(request_fields(scheme=c.scheme))
    if shape == "plain":
        f = c.headers(1, block=block)
    elif shape == "padded":
        f = c.headers(1, block=padded(block, 8), flags=PADDED)
    else:
        f = c.headers(1, block=priority_fields(0, 200) + block, flags=PRIORITY_FLAG)
    c.send(f)
    assert c.response(1)[0][":status"] == "200"


@pytest.mark.parametrize("weight,depends_on,exclusive", [(0, 0, False), (255, 0, False), (15, 1, False),
                                                         (15, 1, True)])
def test_generic_3_3_priority(h2, weight, depends_on, exclusive):
    c = h2()
    c.send(priority(3, depends_on, weight, exclusive), c.request(3))
    assert c.response(3)[0][":status"] == "200"


def test_generic_3_3_5_priority_on_idle_then_lower_stream(h2):
    c = h2()
    c.send(priority(5, 0, 15), c.request(3))
    assert c.response(3)[0][":status"] == "200"


def test_generic_3_4_rst_stream(h2):
    c = h2()
    c.send(post_headers(c, 1, 4), rst_stream(1, CANCEL))
    c.alive()


def test_generic_3_5_settings(h2):
    c = h2()
    c.send(settings((MAX_CONCURRENT_STREAMS, 100)))
    f = c.read_frame()
    assert f[0] == SETTINGS and f[1] == ACK and f[3] == b""


def test_generic_3_7_ping(h2):
    c = h2()
    c.send(ping(b"pingpong"))
    f = c.read_frame()
    assert f[:3] == (PING, ACK, 0) and f[3] == b"pingpong"


@pytest.mark.parametrize("code", [0, 0xFF])  # generic/3.8 and generic/7 (unknown error code)
def test_generic_3_8_goaway(h2, code):
    c = h2()
    c.send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, code)))
    assert_ping_or_close(c)


def test_generic_3_9_window_update_on_the_connection(h2):
    c = h2()
    c.send(window_update(0, 1))
    c.alive()


def test_generic_3_9_window_update_on_a_stream(h2):
    c = h2()
    c.send(c.request(1), window_update(1, 1))
    assert c.response(1)[0][":status"] == "200"


@pytest.mark.parametrize("pieces", [2, 4])
def test_generic_3_10_continuation(h2, pieces):
    c = h2()
    block = encode(request_fields(scheme=c.scheme, extra=[("x-pad", "p" * 40)]))
    cut = [len(block) * i // pieces for i in range(pieces + 1)]
    frames = [c.headers(1, block=block[:cut[1]], end_headers=False)]
    for i in range(1, pieces):
        frames.append(frame(CONTINUATION, END_HEADERS if i == pieces - 1 else 0, 1, block[cut[i]:cut[i + 1]]))
    c.send(*frames)
    assert c.response(1)[0][":status"] == "200"


def test_generic_4_1_get(h2):
    c = h2()
    c.send(c.request(1, "/hello.txt"))
    hdrs, body = c.response(1)
    assert hdrs[":status"] == "200" and body == b"hello world\n"


def test_generic_4_2_head(h2):
    c = h2()
    c.send(c.request(1, "/hello.txt", "HEAD"))
    hdrs, body = c.response(1)
    assert hdrs[":status"] == "200" and hdrs["content-length"] == "12" and body == b""


def test_generic_4_3_post(h2):
    c = h2()
    c.send(post_headers(c, 1, 4), data(1, b"test"))
    doc = echoed(c, 1)
    assert doc["method"] == "POST" and doc["body_len"] == 4


def test_generic_4_4_post_with_trailers(h2):
    c = h2()
    trailers = encode([("x-trailer", "done")])
    c.send(post_headers(c, 1), data(1, b"test", False), c.headers(1, block=trailers))
    doc = echoed(c, 1)
    assert doc["method"] == "POST" and doc["body_len"] == 4


def pseudo_fields(c, path=4):
    """:method GET, :scheme, :path (/ by default) from the static table (RFC 7541 Appendix A),
    :authority as a literal."""
    scheme = hp_indexed(7 if c.scheme == "https" else 6)
    path = hp_indexed(path) if isinstance(path, int) else hp_literal(4, path, "without")
    return hp_indexed(2) + scheme + path + hp_literal(1, "localhost", "without")


def literal_cases():
    """generic/5 2..13: each literal representation, indexed or new name, with or without Huffman.
    Static entry 58 is user-agent."""
    cases = {}
    for kind in ("incremental", "without", "never"):
        for name in (58, "x-h2spec"):
            for huffman in (False, True):
                label = f"{kind}-{'indexed' if name == 58 else 'new'}-name{'-huffman' if huffman else ''}"
                cases[label] = (hp_literal(name, "conformance", kind, huffman), kind)
    return cases


@pytest.mark.parametrize("case", sorted(literal_cases()))
def test_generic_5_hpack_literal_representations(h2, case):
    """The field reaches the backend; an incrementally indexed one is then sent as a bare index
    (62: the newest dynamic entry) and must decode to the same field."""
    field, kind = literal_cases()[case]
    name = "user-agent" if "indexed-name" in case else "x-h2spec"
    c = h2()
    c.send(c.headers(1, block=pseudo_fields(c, "/echo/1") + field))
    assert (name, "conformance") in [(k.lower(), v) for k, v in echoed(c, 1)["headers"]]
    again = hp_indexed(62) if kind == "incremental" else field
    c.send(c.headers(3, block=pseudo_fields(c, "/echo/3") + again))
    assert (name, "conformance") in [(k.lower(), v) for k, v in echoed(c, 3)["headers"]]


def test_generic_5_hpack_indexed_representation(h2):
    c = h2()
    c.send(c.headers(1, block=pseudo_fields(c, "/echo/1") + hp_indexed(16)))  # accept-encoding: gzip, deflate
    hdrs, body = c.response(1)
    assert hdrs[":status"] == "200" and hdrs["content-encoding"] == "gzip"  # the field was understood
    assert json.loads(gzip.decompress(body))["method"] == "GET"


@pytest.mark.parametrize("updates", [[0], [0, 4096]])
def test_generic_5_hpack_dynamic_table_size_updates(h2, updates):
    c = h2()
    block = b"".join(hp_table_size(n) for n in updates) + pseudo_fields(c)
    c.send(c.headers(1, block=block))
    assert c.response(1)[0][":status"] == "200"


# ================================ http2/ ================================

def test_3_5_preface_gets_settings_first(h2):
    c = h2()
    assert c.seen[0][0] == SETTINGS


def test_3_5_invalid_preface(h2):
    c = h2(handshake=False)
    c.send(b"INVALID CONNECTION PREFACE\r\n\r\n" + b"\0" * 24)
    if h2.transport == "tls":  # ALPN said h2: the bytes are HTTP/2 and wrong
        c.connection_error(PROTOCOL_ERROR)
    else:  # prior knowledge means the preface; anything else is HTTP/1.1, refused and closed
        answer = c.read_raw_until_close()
        assert answer.startswith(b"HTTP/1.1 4") or answer.startswith(b"HTTP/1.1 5"), answer[:60]


def test_4_1_unknown_frame_type_is_ignored(h2):
    c = h2()
    c.send(frame(UNKNOWN_FRAME_TYPE, 0, 0, b"unknown"))
    c.alive()


def test_4_1_undefined_flags_are_ignored(h2):
    c = h2()
    c.send(ping(b"flagged\0", flags=0x16))
    f = c.read_frame()
    assert f[:3] == (PING, ACK, 0) and f[3] == b"flagged\0"


def test_4_1_reserved_bit_is_ignored(h2):
    c = h2()
    c.send(c.request(1)[:5] + struct.pack(">I", 0x80000001) + c.request(1)[9:])
    assert c.response(1)[0][":status"] == "200"


def test_4_2_data_of_max_frame_size(h2):
    c = h2()
    c.send(post_headers(c, 1, 16384), data(1, b"x" * 16384))
    assert echoed(c, 1)["body_len"] == 16384


def test_4_2_data_over_max_frame_size(h2):
    c = h2()
    c.send(post_headers(c, 1, 16385), data(1, b"x" * 16385))
    c.stream_error(1, FRAME_SIZE_ERROR)


def test_4_2_headers_over_max_frame_size(h2):
    c = h2()
    block = encode(request_fields(scheme=c.scheme, extra=[(f"x-{i}", "v" * 100) for i in range(200)]))
    assert len(block) > 16384
    c.send(c.headers(1, block=block))
    c.connection_error(FRAME_SIZE_ERROR)


def test_4_3_invalid_header_block(h2):
    c = h2()
    c.send(c.headers(1, block=b"\x40"))  # a literal whose name length is missing
    c.connection_error(COMPRESSION_ERROR)


def test_4_3_priority_inside_header_block(h2):
    c = h2()
    c.send(c.headers(1, end_headers=False), priority(1))
    c.connection_error(PROTOCOL_ERROR)


def test_4_3_headers_to_another_stream_inside_header_block(h2):
    c = h2()
    c.send(c.headers(1, end_headers=False), c.headers(3))
    c.connection_error(PROTOCOL_ERROR)


@pytest.mark.parametrize("idle_frame", ["data", "rst_stream", "window_update", "continuation"])
def test_5_1_frames_on_idle_stream(h2, idle_frame):
    c = h2()
    c.send({"data": data(1), "rst_stream": rst_stream(1, CANCEL), "window_update": window_update(1, 100),
            "continuation": frame(CONTINUATION, END_HEADERS, 1, encode(request_fields()))}[idle_frame])
    c.connection_error(PROTOCOL_ERROR)


def test_5_1_half_closed_remote_data(h2):
    c = open_stream(h2)
    c.send(data(1))
    c.stream_error(1, STREAM_CLOSED)


def test_5_1_half_closed_remote_headers(h2):
    c = open_stream(h2)
    c.send(c.request(1))
    c.stream_error(1, STREAM_CLOSED)


def test_5_1_half_closed_remote_continuation(h2):
    c = open_stream(h2)
    c.send(frame(CONTINUATION, END_HEADERS, 1, encode([("x-late", "1")])))
    c.stream_error(1, STREAM_CLOSED, PROTOCOL_ERROR)


def reset_stream(h2):
    """Stream 1 opened (its body still to come) and reset by the client."""
    c = h2()
    c.send(post_headers(c, 1, 4), rst_stream(1, CANCEL))
    c.alive()
    return c


def test_5_1_closed_after_rst_data(h2):
    c = reset_stream(h2)
    c.send(data(1))
    c.stream_error(1, STREAM_CLOSED)


def test_5_1_closed_after_rst_headers(h2):
    c = reset_stream(h2)
    c.send(c.request(1))
    c.stream_error(1, STREAM_CLOSED)


def test_5_1_closed_after_rst_continuation(h2):
    c = reset_stream(h2)
    c.send(frame(CONTINUATION, END_HEADERS, 1, encode([("x-late", "1")])))
    c.stream_error(1, STREAM_CLOSED, PROTOCOL_ERROR)


def test_5_1_closed_data(h2):
    c = finished_stream(h2)
    c.send(data(1))
    c.stream_error(1, STREAM_CLOSED)


def test_5_1_closed_headers(h2):
    c = finished_stream(h2)
    c.send(c.request(1))
    c.stream_error(1, STREAM_CLOSED)


def test_5_1_closed_continuation(h2):
    c = finished_stream(h2)
    c.send(frame(CONTINUATION, END_HEADERS, 1, encode([("x-late", "1")])))
    c.stream_error(1, STREAM_CLOSED, PROTOCOL_ERROR)


def test_5_1_1_even_stream_id(h2):
    c = h2()
    c.send(c.request(2))
    c.connection_error(PROTOCOL_ERROR)


def test_5_1_1_decreasing_stream_id(h2):
    c = h2()
    c.send(c.request(5), c.request(3))
    c.connection_error(PROTOCOL_ERROR)


def test_5_1_1_skipped_id_after_served_streams(h2):
    """Ids 5 and 7 skipped between two served streams: a HEADERS on 7 is refused, and the GOAWAY
    names the last stream served."""
    c = h2()
    c.send(c.request(3), c.request(9))
    assert c.response(3)[0][":status"] == "200" and c.response(9)[0][":status"] == "200"
    c.send(c.request(7))
    c.connection_error(PROTOCOL_ERROR)
    assert c.last_stream_id == 9


def test_5_1_1_trailers_on_a_lower_open_stream_are_not_an_error(h2):
    """Not h2spec: the check on lower ids must not catch the trailers of an older stream."""
    c = h2()
    c.send(post_headers(c, 1), data(1, b"test", False), c.request(3, "/hello.txt"))
    assert c.response(3)[1] == b"hello world\n"
    c.send(c.headers(1, block=encode([("x-trailer", "1")])))
    assert echoed(c, 1)["body_len"] == 4


def test_5_1_2_concurrent_stream_limit(h2):
    c = open_stream(h2)
    limit = c.server_settings[MAX_CONCURRENT_STREAMS]
    c.send(*[c.request(sid) for sid in range(3, 2 * limit + 3, 2)])
    c.stream_error(2 * limit + 1, REFUSED_STREAM, PROTOCOL_ERROR)


def test_5_3_1_headers_depends_on_itself(h2):
    c = h2()
    block = priority_fields(depends_on=1) + encode(request_fields(scheme=c.scheme))
    c.send(c.headers(1, block=block, flags=PRIORITY_FLAG))
    c.stream_error(1, PROTOCOL_ERROR)


def test_5_3_1_priority_depends_on_itself(h2):
    c = h2()
    c.send(priority(1, 1))
    c.stream_error(1, PROTOCOL_ERROR)


def test_5_4_1_invalid_ping_closes_the_connection(h2):
    c = h2()
    c.send(ping(b"short!"))
    c.connection_error(FRAME_SIZE_ERROR)


def test_5_4_1_goaway_names_the_last_stream(h2):
    c = h2()
    c.send(c.request(1))
    c.response(1)
    c.send(ping(b"short!"))
    c.connection_error(FRAME_SIZE_ERROR)
    assert c.last_stream_id == 1


def test_5_5_unknown_extension_frame_is_ignored(h2):
    c = h2()
    c.send(frame(UNKNOWN_FRAME_TYPE, 0xFF, 1, b"extension"))
    c.alive()


def test_5_5_unknown_extension_frame_inside_header_block(h2):
    c = h2()
    c.send(c.headers(1, end_headers=False), frame(UNKNOWN_FRAME_TYPE, 0, 1, b"extension"))
    c.connection_error(PROTOCOL_ERROR)


def test_6_1_data_on_stream_0(h2):
    c = h2()
    c.send(post_headers(c, 1, 4), data(0))
    c.connection_error(PROTOCOL_ERROR)


def test_6_1_data_on_stream_not_open(h2):
    c = open_stream(h2)
    c.send(data(1))
    c.stream_error(1, STREAM_CLOSED)


def test_6_1_data_with_invalid_pad_length(h2):
    c = h2()
    c.send(post_headers(c, 1, 4), data(1, padded(b"test", 0, declared=6), flags=PADDED))
    c.connection_error(PROTOCOL_ERROR)


def test_6_2_headers_then_priority(h2):
    c = h2()
    c.send(c.headers(1, end_headers=False), priority(1))
    c.connection_error(PROTOCOL_ERROR)


def test_6_2_headers_then_headers_to_another_stream(h2):
    c = h2()
    c.send(c.headers(1, end_headers=False), c.headers(3))
    c.connection_error(PROTOCOL_ERROR)


def test_6_2_headers_on_stream_0(h2):
    c = h2()
    c.send(c.headers(0))
    c.connection_error(PROTOCOL_ERROR)


def test_6_2_headers_with_invalid_pad_length(h2):
    c = h2()
    block = encode(request_fields(scheme=c.scheme))
    c.send(c.headers(1, block=padded(block, 0, declared=len(block) + 1), flags=PADDED))
    c.connection_error(PROTOCOL_ERROR)


def test_6_3_priority_on_stream_0(h2):
    c = h2()
    c.send(priority(0, 1))
    c.connection_error(PROTOCOL_ERROR)


def test_6_3_priority_with_wrong_length(h2):
    c = open_stream(h2)
    c.send(frame(2, 0, 1, b"\0\0\0\1"))
    c.stream_error(1, FRAME_SIZE_ERROR)


def test_6_4_rst_stream_on_stream_0(h2):
    c = h2()
    c.send(rst_stream(0, CANCEL))
    c.connection_error(PROTOCOL_ERROR)


def test_6_4_rst_stream_on_idle_stream(h2):
    c = h2()
    c.send(rst_stream(1, CANCEL))
    c.connection_error(PROTOCOL_ERROR)


def test_6_4_rst_stream_with_wrong_length(h2):
    c = open_stream(h2)
    c.send(frame(3, 0, 1, b"\0\0\0"))
    c.connection_error(FRAME_SIZE_ERROR)


def test_6_5_settings_ack_with_payload(h2):
    c = h2()
    c.send(settings((INITIAL_WINDOW_SIZE, 100), flags=ACK))
    c.connection_error(FRAME_SIZE_ERROR)


def test_6_5_settings_on_a_stream(h2):
    c = h2()
    c.send(settings((INITIAL_WINDOW_SIZE, 100), stream_id=1))
    c.connection_error(PROTOCOL_ERROR)


def test_6_5_settings_with_wrong_length(h2):
    c = h2()
    c.send(frame(SETTINGS, 0, 0, b"\0\3\0"))
    c.connection_error(FRAME_SIZE_ERROR)


@pytest.mark.parametrize("setting,value,code", [
    (ENABLE_PUSH, 2, PROTOCOL_ERROR),
    (INITIAL_WINDOW_SIZE, 2 ** 31, FLOW_CONTROL_ERROR),
    (MAX_FRAME_SIZE, 16383, PROTOCOL_ERROR),
    (MAX_FRAME_SIZE, 2 ** 24, PROTOCOL_ERROR),
])
def test_6_5_2_invalid_setting_values(h2, setting, value, code):
    c = h2()
    c.send(settings((setting, value)))
    c.connection_error(code)


def test_6_5_2_unknown_setting_is_ignored(h2):
    c = h2()
    c.send(settings((0xFF, 1)))
    f = c.read_frame()
    assert f[0] == SETTINGS and f[1] == ACK
    c.alive()


def test_6_5_3_last_value_of_a_setting_wins(h2):
    c = h2((INITIAL_WINDOW_SIZE, 100), (INITIAL_WINDOW_SIZE, 1))
    c.send(c.request(1, "/file1k.bin"))
    f = c.read_frame()
    while f[0] != DATA:
        f = c.read_frame()
    assert f[2] == 1 and len(f[3]) == 1


def test_6_5_3_settings_are_acknowledged(h2):
    c = h2()
    c.send(settings((HEADER_TABLE_SIZE, 4096), (MAX_CONCURRENT_STREAMS, 50)))
    f = c.read_frame()
    assert f[0] == SETTINGS and f[1] == ACK


def test_6_7_ping_is_answered_with_its_payload(h2):
    c = h2()
    c.send(ping(b"\x01\x02\x03\x04\x05\x06\x07\x08"))
    f = c.read_frame()
    assert f[:3] == (PING, ACK, 0) and f[3] == b"\x01\x02\x03\x04\x05\x06\x07\x08"


def test_6_7_ping_with_ack_is_not_answered(h2):
    c = h2()
    c.send(ping(b"unwanted", flags=ACK), ping(b"expected"))
    f = c.read_frame()
    assert f[:3] == (PING, ACK, 0) and f[3] == b"expected"


def test_6_7_ping_on_a_stream(h2):
    c = h2()
    c.send(ping(stream_id=1))
    c.connection_error(PROTOCOL_ERROR)


def test_6_7_ping_with_wrong_length(h2):
    c = h2()
    c.send(ping(b"\0" * 6))
    c.connection_error(FRAME_SIZE_ERROR)


def test_6_8_goaway_on_a_stream(h2):
    c = h2()
    c.send(frame(GOAWAY, 0, 1, struct.pack(">II", 0, 0)))
    c.connection_error(PROTOCOL_ERROR)


def test_6_9_window_update_of_0_on_the_connection(h2):
    c = h2()
    c.send(window_update(0, 0))
    c.connection_error(PROTOCOL_ERROR)


def test_6_9_window_update_of_0_on_a_stream(h2):
    c = open_stream(h2)
    c.send(window_update(1, 0))
    c.stream_error(1, PROTOCOL_ERROR)


def test_6_9_window_update_with_wrong_length(h2):
    c = h2()
    c.send(frame(8, 0, 0, b"\0\0\1"))
    c.connection_error(FRAME_SIZE_ERROR)


def test_6_9_1_window_of_1(h2):
    c = h2((INITIAL_WINDOW_SIZE, 1))
    c.send(c.request(1, "/file1k.bin"))
    f = c.read_frame()
    while f[0] != DATA:
        f = c.read_frame()
    assert len(f[3]) == 1
    assert c.read_frame(0.3) is None  # nothing more until the window opens


def test_6_9_1_connection_window_overflow(h2):
    c = h2()
    c.send(window_update(0, 2 ** 31 - 1), window_update(0, 2 ** 31 - 1))
    c.connection_error(FLOW_CONTROL_ERROR)


def test_6_9_1_stream_window_overflow(h2):
    c = open_stream(h2, "/big.bin")
    c.send(window_update(1, 2 ** 31 - 1), window_update(1, 2 ** 31 - 1))
    c.stream_error(1, FLOW_CONTROL_ERROR)


def test_6_9_2_initial_window_raised_after_headers(h2):
    c = open_stream(h2)
    c.send(settings((INITIAL_WINDOW_SIZE, 100)))
    f = c.read_frame()
    while f[0] != DATA:
        f = c.read_frame()
    assert len(f[3]) == 100


def test_6_9_2_window_made_negative(h2):
    c = h2((INITIAL_WINDOW_SIZE, 3))
    c.send(c.request(1, "/file1k.bin"))
    f = c.read_frame()
    while f[0] != DATA:
        f = c.read_frame()
    assert len(f[3]) == 3
    c.send(settings((INITIAL_WINDOW_SIZE, 2)))  # the stream window is now -1
    f = c.read_frame()
    assert f[0] == SETTINGS and f[1] == ACK
    c.send(window_update(1, 2))  # ... and +1
    f = c.read_frame()
    assert f[0] == DATA and len(f[3]) == 1, f


def test_6_9_2_initial_window_over_the_maximum(h2):
    c = h2()
    c.send(settings((INITIAL_WINDOW_SIZE, 2 ** 31)))
    c.connection_error(FLOW_CONTROL_ERROR)


def test_6_10_continuations_after_headers(h2):
    c = h2()
    block = encode(request_fields(scheme=c.scheme))
    c.send(c.headers(1, block=block[:3], end_headers=False), frame(CONTINUATION, 0, 1, block[3:6]),
           frame(CONTINUATION, END_HEADERS, 1, block[6:]))
    assert c.response(1)[0][":status"] == "200"


def test_6_10_continuation_followed_by_other_frame(h2):
    c = h2()
    block = encode(request_fields(scheme=c.scheme))
    c.send(c.headers(1, block=block[:2], end_headers=False), frame(CONTINUATION, 0, 1, block[2:4]), data(1))
    c.connection_error(PROTOCOL_ERROR)


def test_6_10_continuation_on_stream_0(h2):
    c = h2()
    block = encode(request_fields(scheme=c.scheme))
    c.send(c.headers(1, block=block[:2], end_headers=False), frame(CONTINUATION, END_HEADERS, 0, block[2:]))
    c.connection_error(PROTOCOL_ERROR)


def test_6_10_continuation_after_end_headers(h2):
    c = h2()
    c.send(c.headers(1, end_stream=True), frame(CONTINUATION, END_HEADERS, 1, encode([("x-late", "1")])))
    c.connection_error(PROTOCOL_ERROR, STREAM_CLOSED)


def test_6_10_continuation_after_continuation_with_end_headers(h2):
    c = h2()
    block = encode(request_fields(scheme=c.scheme))
    c.send(c.headers(1, block=block[:2], end_headers=False), frame(CONTINUATION, END_HEADERS, 1, block[2:]),
           frame(CONTINUATION, END_HEADERS, 1, encode([("x-late", "1")])))
    c.connection_error(PROTOCOL_ERROR, STREAM_CLOSED)


def test_6_10_continuation_after_data(h2):
    c = h2()
    c.send(post_headers(c, 1, 8), data(1, b"test", False), frame(CONTINUATION, END_HEADERS, 1, encode([])))
    c.connection_error(PROTOCOL_ERROR)


def test_7_rst_stream_with_unknown_error_code(h2):
    c = open_stream(h2)
    c.send(rst_stream(1, 0xFF))
    c.alive()


def test_8_1_second_headers_without_end_stream(h2):
    c = h2()
    c.send(post_headers(c, 1), data(1, b"test", False), c.headers(1, block=encode([("x-trailer", "1")]),
                                                                  end_stream=False))
    c.stream_error(1, PROTOCOL_ERROR)


def bad_request(c, fields):
    c.send(c.headers(1, block=encode(fields)))
    c.stream_error(1, PROTOCOL_ERROR)


def base(c):
    return request_fields(scheme=c.scheme)


BAD_HEADER_BLOCKS = {  # http2/8.1.2 ... 8.1.2.3
    "uppercase-name": lambda f: f + [("X-Upper", "1")],
    "unknown-pseudo": lambda f: f + [(":h2spec", "1")],
    "response-pseudo": lambda f: f + [(":status", "200")],
    "pseudo-after-regular": lambda f: f[:3] + [("x-regular", "1"), f[3]],
    "connection": lambda f: f + [("connection", "keep-alive")],
    "keep-alive": lambda f: f + [("keep-alive", "timeout=5")],
    "transfer-encoding": lambda f: f + [("transfer-encoding", "chunked")],
    "upgrade": lambda f: f + [("upgrade", "h2c")],
    "te-not-trailers": lambda f: f + [("te", "trailers, deflate")],
    "empty-path": lambda f: [x if x[0] != ":path" else (":path", "") for x in f],
    "no-method": lambda f: [x for x in f if x[0] != ":method"],
    "no-scheme": lambda f: [x for x in f if x[0] != ":scheme"],
    "no-path": lambda f: [x for x in f if x[0] != ":path"],
    "duplicate-method": lambda f: f[:1] + [(":method", "GET")] + f[1:],
    "duplicate-scheme": lambda f: f[:2] + [f[1]] + f[2:],
    "duplicate-path": lambda f: f[:3] + [f[2]] + f[3:],
}


@pytest.mark.parametrize("case", list(BAD_HEADER_BLOCKS))
def test_8_1_2_malformed_request_headers(h2, case):
    c = h2()
    bad_request(c, BAD_HEADER_BLOCKS[case](base(c)))
    c.alive()


def test_8_1_2_1_pseudo_header_in_trailers(h2):
    c = h2()
    c.send(post_headers(c, 1), data(1, b"test", False), c.headers(1, block=encode([(":method", "POST")])))
    c.stream_error(1, PROTOCOL_ERROR)


@pytest.mark.parametrize("declared,pieces", [(1, [b"test"]), (10, [b"test", b"test"])])
def test_8_1_2_6_content_length_mismatch(h2, declared, pieces):
    c = h2()
    frames = [data(1, p, i == len(pieces) - 1) for i, p in enumerate(pieces)]
    c.send(post_headers(c, 1, declared), *frames)
    c.stream_error(1, PROTOCOL_ERROR)


def answered_before_the_body(c, declared):
    """A POST to a static file: the answer is complete before any of the body was sent."""
    fields = request_fields("/hello.txt", "POST", c.scheme, extra=[("content-length", str(declared))])
    c.send(c.headers(1, fields, end_stream=False))
    assert c.response(1)[0][":status"].startswith("4")


def test_8_1_2_6_content_length_mismatch_after_the_response(h2):
    """h2spec writes HEADERS and DATA apart, so the answer may be out before the DATA comes: a
    short rest of the body is still read and checked (RST_STREAM NO_ERROR would fail the case)."""
    c = h2()
    answered_before_the_body(c, 1)
    c.send(data(1, b"test"))
    c.stream_error(1, PROTOCOL_ERROR)


def test_8_1_2_6_body_after_the_response_ends_the_stream_quietly(h2):
    c = h2()
    answered_before_the_body(c, 4)
    c.send(data(1, b"test"))
    c.alive()


def test_8_1_large_body_after_the_response_is_stopped_with_no_error(h2):
    """A body larger than the window would keep the client sending for nothing: RST NO_ERROR."""
    c = h2()
    answered_before_the_body(c, 1 << 20)
    c.stream_error(1, 0)


def test_8_2_push_promise_from_client(h2):
    c = h2()
    c.send(c.request(1), frame(5, END_HEADERS, 1, struct.pack(">I", 2) + encode(request_fields())))
    c.connection_error(PROTOCOL_ERROR)


# ================================ hpack/ ================================

def huffman_value(encoded):
    """A literal field (without indexing, new name) whose value is `encoded` as Huffman code."""
    return b"\x00" + hp_str("x-h") + hp_int(len(encoded), 7, 0x80) + encoded


HPACK_ERRORS = {
    "2.3.3-indexed-out-of-range": lambda p: p + hp_indexed(70),  # 61 static entries, empty dynamic table
    "2.3.3-literal-name-out-of-range": lambda p: p + hp_literal(70, "x", "without"),
    "4.2-table-size-update-at-end": lambda p: p + hp_table_size(0),
    # "a" is 00011 in Huffman code; the rest must be at most 7 bits of ones (the start of EOS)
    "5.2-huffman-padding-over-7-bits": lambda p: p + huffman_value(b"\x1f\xff"),
    "5.2-huffman-padded-with-zero": lambda p: p + huffman_value(b"\x18"),
    "5.2-huffman-eos": lambda p: p + huffman_value(b"\x1f\xff\xff\xff\xff"),  # 30 ones: EOS itself
    "6.1-index-0": lambda p: p + hp_indexed(0),
    "6.3-table-size-over-setting": lambda p: hp_table_size(4097) + p,
}


@pytest.mark.parametrize("case", list(HPACK_ERRORS))
def test_hpack_decoding_errors(h2, case):
    c = h2()
    c.send(c.headers(1, block=HPACK_ERRORS[case](pseudo_fields(c))))
    c.connection_error(COMPRESSION_ERROR)
