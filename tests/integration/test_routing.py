"""Virtual hosts and locations: global -> first matching host -> first matching location."""
import socket
import subprocess

import pytest

from conftest import RawConn, make_config


def site(root, name, files=("who.txt",)):
    root.mkdir(parents=True, exist_ok=True)
    for f in files:
        p = root / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f"{name}\n".encode())
    return root


@pytest.fixture
def routed(start_gateway, tmp_path):
    g = site(tmp_path / "g", "global")
    a = site(tmp_path / "a", "A", ("who.txt", "docsx/who.txt"))
    b = site(tmp_path / "b", "B")
    c = site(tmp_path / "c", "C")
    d = site(tmp_path / "d", "D", ("who.txt", "docsx/who.txt", "api/who.txt", "docs/who.txt"))
    e = site(tmp_path / "e", "E", ("who.txt", "docs/who.txt", "docs/deep/who.txt"))
    o = site(tmp_path / "o", "O")
    hosts = f"""\
  - domain: example.com
    wwwroot: "{a}"
  - domain: "*.example.com"
    wwwroot: "{b}"
  - domain: example.com
    wwwroot: "{c}"
  - domain: docs.test
    wwwroot: "{d}"
    locations:
      - path: /docs
        wwwroot: "{e}"
      - path: /api/
        enableETag: false
  - domain: Mixed.Case.TEST
    wwwroot: "{o}"
"""
    return start_gateway(make_config(g, hosts=hosts))


def who(gw, host, path="/who.txt", addr="127.0.0.1"):
    with RawConn(gw.port, host=addr) as c:
        c.send(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        r = c.read_response()
    return r.body.decode().strip() if r.status == 200 else r.status


@pytest.mark.parametrize("host,expected", [
    ("example.com", "A"),
    ("example.com:8080", "A"),
    ("EXAMPLE.COM", "A"),
    ("Example.Com:80", "A"),
    ("example.com.", "A"),
    ("www.example.com", "B"),
    ("a.b.example.com", "B"),
    ("WWW.EXAMPLE.COM:443", "B"),
    ("notexample.com", "global"),
    ("example.com.evil", "global"),
    ("xexample.com", "global"),
    ("other.test", "global"),
    ("127.0.0.1", "global"),
    ("[::1]:8080", "global"),
    ("mixed.case.test", "O"),
])
def test_host_selection(routed, host, expected):
    assert who(routed, host) == expected


def test_first_matching_host_wins(routed):
    # the second "example.com" host (C) is never selected
    for _ in range(3):
        assert who(routed, "example.com") == "A"


def test_location_prefix_on_segment_boundary(routed):
    assert who(routed, "docs.test", "/who.txt") == "D"
    assert who(routed, "docs.test", "/docs/who.txt") == "E"
    assert who(routed, "docs.test", "/docs/deep/who.txt") == "E"
    assert who(routed, "docs.test", "/docsx/who.txt") == "D"  # /docsx is not under /docs
    # the location root is used for the whole path: /docsx exists in D, not in E
    assert who(routed, "docs.test", "/docs/../docsx/who.txt") == "D"


def test_location_path_exact_and_trailing_slash(routed):
    # "/docs" itself belongs to the location; E has a docs dir without an index
    with RawConn(routed.port) as c:
        c.send(b"GET /docs HTTP/1.1\r\nHost: docs.test\r\nConnection: close\r\n\r\n")
        r = c.read_response()
    assert r.status == 301 and r.header("location") == "/docs/"
    with RawConn(routed.port) as c:
        c.send(b"GET /docs/ HTTP/1.1\r\nHost: docs.test\r\nConnection: close\r\n\r\n")
        assert c.read_response().status == 403  # E/docs has no index


def test_location_inherits_host_wwwroot_and_overrides(routed):
    """Location /api/ (trailing slash ignored) only sets enableETag: false; wwwroot comes from the host."""
    with RawConn(routed.port) as c:
        c.send(b"GET /api/who.txt HTTP/1.1\r\nHost: docs.test\r\n\r\n"
               b"GET /who.txt HTTP/1.1\r\nHost: docs.test\r\nConnection: close\r\n\r\n")
        api = c.read_response()
        plain = c.read_response()
    assert api.status == 200 and api.body == b"D\n"
    assert api.header("etag") is None
    assert plain.header("etag") is not None
    assert who(routed, "docs.test", "/api") == 301  # a directory of D: redirect, no ETag logic


def test_location_is_selected_after_normalisation(routed):
    assert who(routed, "docs.test", "/x/../docs/who.txt") == "E"
    assert who(routed, "docs.test", "/%64ocs/who.txt") == "E"
    assert who(routed, "docs.test", "//docs//who.txt") == "E"


def test_absolute_form_authority_selects_host(routed):
    """RFC 9112 3.2.2: with an absolute-form target the Host header is ignored."""
    with RawConn(routed.port) as c:
        c.send(b"GET http://example.com/who.txt HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n")
        r = c.read_response()
    assert r.status == 200 and r.body == b"A\n"


def test_http10_without_host_uses_global(routed):
    with RawConn(routed.port) as c:
        c.send(b"GET /who.txt HTTP/1.0\r\n\r\n")
        r = c.read_response()
    assert r.body == b"global\n"


def test_catch_all_host(start_gateway, tmp_path):
    g = site(tmp_path / "g", "global")
    a = site(tmp_path / "a", "A")
    z = site(tmp_path / "z", "Z")
    w = site(tmp_path / "w", "W")
    hosts = f"""\
  - domain: a.test
    wwwroot: "{a}"
  - domain: "*.wild.test"
    wwwroot: "{w}"
  - domain: "*"
    wwwroot: "{z}"
"""
    gw = start_gateway(make_config(g, hosts=hosts))
    assert who(gw, "a.test") == "A"
    assert who(gw, "x.wild.test") == "W"
    assert who(gw, "anything.else") == "Z"
    assert who(gw, "wild.test") == "W"  # as in Ferron, "*.wild.test" also matches the apex


# The address a connection arrived on is looked up only when a host needs it: on [::] (a bare
# port) and on 0.0.0.0 the listener's own address says nothing.
@pytest.mark.parametrize("port", [None, '"0.0.0.0:@PORT@"'])
def test_host_by_local_ip(start_gateway, tmp_path, port):
    g = site(tmp_path / "g", "global")
    i1 = site(tmp_path / "i1", "IP1")
    i2 = site(tmp_path / "i2", "IP2")
    hosts = f"""\
  - ip: 127.0.0.2
    wwwroot: "{i2}"
  - domain: example.com
    ip: 127.0.0.1
    wwwroot: "{i1}"
"""
    gw = start_gateway(make_config(g, hosts=hosts, **({"port": port} if port else {})))
    try:
        socket.create_connection(("127.0.0.2", gw.port), timeout=2).close()
    except OSError:
        pytest.skip("127.0.0.2 is not reachable here")
    assert who(gw, "anything", addr="127.0.0.2") == "IP2"
    assert who(gw, "example.com", addr="127.0.0.2") == "IP2"
    assert who(gw, "example.com", addr="127.0.0.1") == "IP1"
    assert who(gw, "other", addr="127.0.0.1") == "global"
    # HTTP/2 (h2c with prior knowledge): the stream's request routes by the same address
    for addr, expected in (("127.0.0.2", "IP2"), ("127.0.0.1", "IP1")):
        out = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--resolve",
                              f"example.com:{gw.port}:{addr}", f"http://example.com:{gw.port}/who.txt"],
                             capture_output=True, text=True, timeout=10)
        assert out.stdout.strip() == expected, out.stderr


def test_listen_on_address_string(start_gateway, tmp_path):
    g = site(tmp_path / "g", "global")
    gw = start_gateway(make_config(g, port='"127.0.0.1:@PORT@"'))
    assert who(gw, "x") == "global"


def test_listen_on_ipv6_loopback(start_gateway, tmp_path):
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    g = site(tmp_path / "g", "global")
    gw = start_gateway(make_config(g, port='"[::1]:@PORT@"'), addr="::1")
    r = gw.get("/who.txt", host="[::1]")
    assert r.status == 200 and r.body == b"global\n"
