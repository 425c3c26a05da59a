"""Byte ranges (RFC 9110 §14): single and multiple ranges, on small files sent from the open-file
cache's memory and on large files sent with sendfile, If-Range, 416, and malformed headers."""
import email.utils
import re

import pytest

from conftest import FILE_1K, FILE_2M, make_config


def parse_multipart(resp, full):
    """Checks a multipart/byteranges body against `full`; returns [(first, last)]."""
    ctype = resp.header("content-type")
    m = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", ctype)
    assert m, ctype
    boundary = m.group(1).encode()
    body = resp.body
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    parts = body.split(b"\r\n--" + boundary)
    assert parts[0] == b"" and parts[-1] == b"--\r\n"
    out = []
    for p in parts[1:-1]:
        head, _, data = p.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b""
        hdrs = dict(ln.decode().split(": ", 1) for ln in lines[1:])
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", hdrs["Content-Range"])
        first, last, size = map(int, m.groups())
        assert size == len(full)
        assert data == full[first:last + 1]
        assert hdrs["Content-Type"] == "application/octet-stream"
        out.append((first, last))
    return out


@pytest.mark.parametrize("path,full", [("/file1k.bin", FILE_1K), ("/big.bin", FILE_2M)], ids=["inline", "sendfile"])
def test_single_ranges(gateway, path, full):
    n = len(full)
    for spec, first, last in [("0-99", 0, 99), ("100-", 100, n - 1), ("-10", n - 10, n - 1),
                              (f"{n - 1}-{n + 5000}", n - 1, n - 1), ("0-0", 0, 0), (f"-{n * 2}", 0, n - 1)]:
        r = gateway.get(path, headers={"Range": f"bytes={spec}"}, timeout=20)
        assert r.status_line == "HTTP/1.1 206 Partial Content", spec
        assert r.header("content-range") == f"bytes {first}-{last}/{n}", spec
        assert r.header("content-length") == str(last - first + 1)
        assert r.body == full[first:last + 1], spec
        assert r.header("content-type") == "application/octet-stream"
        assert r.header("etag")


@pytest.mark.parametrize("path,full", [("/file1k.bin", FILE_1K), ("/big.bin", FILE_2M)], ids=["inline", "sendfile"])
def test_multiple_ranges(gateway, path, full):
    r = gateway.get(path, headers={"Range": "bytes=0-9, 500-599, -16"}, timeout=20)
    assert r.status == 206
    assert r.header("content-range") is None
    assert r.header("content-length") == str(len(r.body))
    assert parse_multipart(r, full) == [(0, 9), (500, 599), (len(full) - 16, len(full) - 1)]


def test_overlapping_ranges_are_coalesced(gateway):
    r = gateway.get("/file1k.bin", headers={"Range": "bytes=0-99,50-149,150-199"})
    assert r.status == 206
    assert r.header("content-range") == "bytes 0-199/1024"
    assert r.body == FILE_1K[:200]
    # the same bytes asked for many times are sent once
    r = gateway.get("/big.bin", headers={"Range": "bytes=" + ",".join(["0-"] * 20)}, timeout=20)
    assert r.status == 206 and len(r.body) == len(FILE_2M)
    r = gateway.get("/file1k.bin", headers={"Range": "bytes=600-699,0-9,650-800"})
    assert parse_multipart(r, FILE_1K) == [(0, 9), (600, 800)]


@pytest.mark.parametrize("spec", ["bytes=1024-", "bytes=5000-6000", "bytes=2000-,3000-3001", "bytes=-0"])
def test_unsatisfiable_416(gateway, spec):
    r = gateway.get("/file1k.bin", headers={"Range": spec})
    assert r.status_line == "HTTP/1.1 416 Range Not Satisfiable", spec
    assert r.header("content-range") == "bytes */1024"
    assert b"416" in r.body


@pytest.mark.parametrize("spec", ["bytes=abc", "bytes=5-4", "bytes=", "items=0-1", "bytes 0-1", "bytes=0-1;x",
                                  "bytes=--1", "bytes=1-2-3", "=0-1", "bytes=0-1,,x", "bytes=0x10-20",
                                  "bytes=" + ",".join(f"{i * 2}-{i * 2}" for i in range(40))],
                         ids=lambda s: s[:24])
def test_malformed_range_ignored(gateway, spec):
    r = gateway.get("/file1k.bin", headers={"Range": spec})
    assert r.status == 200, spec
    assert r.body == FILE_1K
    assert r.header("content-range") is None


def test_accept_ranges_and_head(gateway):
    r = gateway.get("/file1k.bin")
    assert r.header("accept-ranges") == "bytes"
    with gateway.connect() as c:
        c.send(b"HEAD /file1k.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n")
        r = c.read_response("HEAD")
    assert r.status == 200 and r.header("content-length") == "1024"  # Range only applies to GET


def test_if_range(gateway):
    r = gateway.get("/file1k.bin")
    etag, lm = r.header("etag"), r.header("last-modified")
    rng = {"Range": "bytes=0-9"}
    assert gateway.get("/file1k.bin", headers={**rng, "If-Range": etag}).status == 206
    assert gateway.get("/file1k.bin", headers={**rng, "If-Range": lm}).status == 206
    stale = gateway.get("/file1k.bin", headers={**rng, "If-Range": '"old"'})
    assert stale.status == 200 and stale.body == FILE_1K
    weak = gateway.get("/file1k.bin", headers={**rng, "If-Range": "W/" + etag})
    assert weak.status == 200
    other_date = email.utils.format_datetime(
        email.utils.parsedate_to_datetime(lm).replace(year=2001), usegmt=True)
    assert gateway.get("/file1k.bin", headers={**rng, "If-Range": other_date}).status == 200


def test_ranges_keep_alive_and_pipelining(gateway):
    with gateway.connect() as c:
        c.send(b"GET /file1k.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,10-11\r\n\r\n"
               b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=1-2,-2\r\n\r\n"
               b"GET /file1k.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=9999-\r\n\r\n"
               b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert parse_multipart(c.read_response(), FILE_1K) == [(0, 1), (10, 11)]
        assert parse_multipart(c.read_response(), FILE_2M) == [(1, 2), (len(FILE_2M) - 2, len(FILE_2M) - 1)]
        assert c.read_response().status == 416
        assert c.read_response().body == b"hello world\n"


def test_ranges_without_file_cache(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, openFileCacheEntries=0))
    r = gw.get("/file1k.bin", headers={"Range": "bytes=1-3,1000-"})
    assert parse_multipart(r, FILE_1K) == [(1, 3), (1000, 1023)]
    r = gw.get("/big.bin", headers={"Range": "bytes=1048576-1048580"})
    assert r.status == 206 and r.body == FILE_2M[1048576:1048581]


def test_curl_range(gateway, tmp_path):
    import subprocess
    out = subprocess.run(["curl", "-s", "-r", "100-199", f"http://127.0.0.1:{gateway.port}/big.bin"],
                         capture_output=True, timeout=10).stdout
    assert out == FILE_2M[100:200]
