"""Requests that must be refused: each gets its exact status line and `Connection: close`, the server
then closes the connection (nothing after the bad request is ever answered) and keeps running."""
import pytest

from conftest import RawConn

H = b"Host: localhost\r\n"
# A request that must never be answered when it follows a refused one on the same connection.
FOLLOWER = b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"

S400 = "HTTP/1.1 400 Bad Request"
S417 = "HTTP/1.1 417 Expectation Failed"
S501 = "HTTP/1.1 501 Not Implemented"
S505 = "HTTP/1.1 505 HTTP Version Not Supported"

CASES = [
    # --- Content-Length and Transfer-Encoding together or malformed ---
    ("cl_and_te", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED", S400),
    ("te_and_cl", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", S400),
    ("cl_zero_and_te", b"GET / HTTP/1.1\r\n" + H + b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", S400),
    ("cl_not_a_number", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n", S400),
    ("cl_negative", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", S400),
    ("cl_plus_sign", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", S400),
    ("cl_hex", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nhello", S400),
    ("cl_list", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nhello", S400),
    ("cl_inner_space", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1 0\r\n\r\n", S400),
    ("cl_empty", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \r\n\r\n", S400),
    ("cl_overflow", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999999\r\n\r\n", S400),
    ("cl_duplicate_different", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", S400),
    ("cl_duplicate_same", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", S400),
    ("cl_space_before_colon", b"POST / HTTP/1.1\r\n" + H + b"Content-Length : 5\r\n\r\nhello", S400),
    # --- Transfer-Encoding ---
    ("te_gzip_chunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", S501),
    # RFC 9112 §6.3: a Transfer-Encoding whose final coding is not chunked makes the length
    # unknowable: 400 and close (a final chunked after an unknown coding is 501, above)
    ("te_identity", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n", S400),
    ("te_xchunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", S400),
    # RFC 9112 6.3: chunked not final in a request -> 400 and close
    ("te_chunked_not_last", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", S400),
    ("te_chunked_twice", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", S400),
    ("te_two_fields", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", S400),
    ("te_empty", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: \r\n\r\n", S400),
    ("te_chunked_with_param", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", S400),
    ("te_in_http10", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", S400),
    ("te_space_before_colon", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", S400),
    # --- header syntax ---
    ("obs_fold", b"GET / HTTP/1.1\r\n" + H + b"X-Long: part one\r\n part two\r\n\r\n", S400),
    ("obs_fold_tab", b"GET / HTTP/1.1\r\n" + H + b"X-Long: part one\r\n\tpart two\r\n\r\n", S400),
    ("fold_before_first_header", b"GET / HTTP/1.1\r\n Host: localhost\r\n\r\n", S400),
    ("name_with_space", b"GET / HTTP/1.1\r\n" + H + b"Bad Name: x\r\n\r\n", S400),
    ("space_before_colon", b"GET / HTTP/1.1\r\nHost : localhost\r\n\r\n", S400),
    ("empty_name", b"GET / HTTP/1.1\r\n" + H + b": x\r\n\r\n", S400),
    ("name_non_token", b"GET / HTTP/1.1\r\n" + H + b"X(y): z\r\n\r\n", S400),
    ("name_non_ascii", b"GET / HTTP/1.1\r\n" + H + b"X-\xe9: z\r\n\r\n", S400),
    ("line_without_colon", b"GET / HTTP/1.1\r\n" + H + b"JustText\r\n\r\n", S400),
    ("nul_in_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", S400),
    ("cr_in_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", S400),
    ("ctl_in_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", S400),
    ("del_in_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n", S400),
    ("nul_in_name", b"GET / HTTP/1.1\r\n" + H + b"X\x00A: b\r\n\r\n", S400),
    # --- Host ---
    ("missing_host", b"GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", S400),
    ("duplicate_host", b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", S400),
    ("duplicate_host_same", b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n", S400),
    ("host_bad_port", b"GET / HTTP/1.1\r\nHost: localhost:abc\r\n\r\n", S400),
    ("host_with_userinfo", b"GET / HTTP/1.1\r\nHost: user@localhost\r\n\r\n", S400),
    ("host_with_path", b"GET / HTTP/1.1\r\nHost: localhost/x\r\n\r\n", S400),
    # --- line endings ---
    ("bare_lf_everywhere", b"GET / HTTP/1.1\nHost: localhost\n\n", S400),
    ("bare_lf_in_headers", b"GET / HTTP/1.1\r\nHost: localhost\nX-A: b\r\n\r\n", S400),
    ("bare_lf_final", b"GET / HTTP/1.1\r\nHost: localhost\r\n\n", S400),
    ("bare_cr_request_line", b"GET / HTTP/1.1\rHost: localhost\r\n\r\n", S400),
    # --- request line ---
    ("version_2_0", b"GET / HTTP/2.0\r\n" + H + b"\r\n", S505),
    ("version_1_2", b"GET / HTTP/1.2\r\n" + H + b"\r\n", S505),
    ("version_3_0", b"GET / HTTP/3.0\r\n" + H + b"\r\n", S505),
    ("version_0_9", b"GET / HTTP/0.9\r\n" + H + b"\r\n", S505),
    ("version_lowercase", b"GET / http/1.1\r\n" + H + b"\r\n", S400),
    ("version_missing", b"GET /\r\n" + H + b"\r\n", S400),
    ("version_long", b"GET / HTTP/1.10\r\n" + H + b"\r\n", S400),
    ("two_spaces", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", S400),
    ("space_in_target", b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", S400),
    ("tab_separator", b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n", S400),
    ("method_bad_char", b"GE(T / HTTP/1.1\r\n" + H + b"\r\n", S400),
    ("nul_in_target", b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", S400),
    ("non_ascii_target", b"GET /caf\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n", S400),
    ("relative_target", b"GET hello.txt HTTP/1.1\r\n" + H + b"\r\n", S400),
    ("asterisk_not_options", b"GET * HTTP/1.1\r\n" + H + b"\r\n", S400),
    ("connect_without_port", b"CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", S400),
    # --- Expect ---
    ("expect_unknown", b"GET / HTTP/1.1\r\n" + H + b"Expect: something\r\n\r\n", S417),
    ("expect_extra_member", b"GET / HTTP/1.1\r\n" + H + b"Expect: 100-continue, foo\r\n\r\n", S417),
    ("expect_empty", b"GET / HTTP/1.1\r\n" + H + b"Expect: \r\n\r\n", S417),
]


@pytest.mark.parametrize("name,data,status_line", CASES, ids=[c[0] for c in CASES])
def test_refused_and_closed(gateway, name, data, status_line):
    with RawConn(gateway.port) as c:
        c.send(data + FOLLOWER)
        r = c.read_response()
        assert r.status_line == status_line, (name, r)
        assert r.has_token("connection", "close"), (name, r)
        assert r.header("content-length") == str(len(r.body))
        assert c.closed_by_server(3), f"{name}: the server kept the connection open"
        assert c.buf == b"", f"{name}: bytes after the refusal: {c.buf[:200]!r}"
    gateway.assert_alive()


def test_refused_in_the_middle_of_a_pipeline(gateway):
    """Good requests before a bad one are answered, nothing after it is."""
    good = b"GET /hello.txt HTTP/1.1\r\n" + H + b"\r\n"
    bad = b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    with RawConn(gateway.port) as c:
        c.send(good + good + bad + good)
        assert c.read_response().body == b"hello world\n"
        assert c.read_response().body == b"hello world\n"
        r = c.read_response()
        assert r.status_line == S400 and r.has_token("connection", "close")
        assert c.closed_by_server(3)
        assert c.buf == b""
    gateway.assert_alive()


@pytest.mark.parametrize("body", [
    b"zz\r\nhello\r\n0\r\n\r\n",                       # size is not hex
    b"5\r\nhelloXX0\r\n\r\n",                          # data not followed by CRLF
    b"ffffffffffffffffffff\r\n",                       # size overflow
    b"5\nhello\n0\n\n",                                # bare LF in chunk framing
    b"-5\r\nhello\r\n0\r\n\r\n",                       # negative size
])
def test_malformed_chunked_body_never_becomes_a_request(gateway, body):
    """The static handler does not read bodies; a malformed chunked body it tries to skip must end the
    connection instead of being parsed as the next request."""
    with RawConn(gateway.port) as c:
        c.send(b"GET /hello.txt HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + body + FOLLOWER)
        r = c.read_response()
        assert r.status in (200, 400), r
        assert c.closed_by_server(3)
        assert c.buf == b"", c.buf[:200]
    gateway.assert_alive()


def test_chunked_smuggle_attempt_via_content_length_zero_chunk(gateway):
    """A chunked body whose data contains a full request is data, not a request."""
    inner = b"GET /file1k.bin HTTP/1.1\r\nHost: localhost\r\n\r\n"
    body = f"{len(inner):x}\r\n".encode() + inner + b"\r\n0\r\n\r\n"
    with RawConn(gateway.port) as c:
        c.send(b"GET /hello.txt HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + body
               + b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        r1 = c.read_response()
        r2 = c.read_response()
        assert r1.body == b"hello world\n"
        assert r2.status == 200 and b"demo index" in r2.body
        assert c.closed_by_server(3)
        assert c.buf == b""


def test_many_bad_requests_in_a_row(gateway):
    for name, data, _ in CASES[::3]:
        gateway.raw(data, timeout=3)
    gateway.assert_alive()
