"""Response compression: gzip and brotli negotiated from Accept-Encoding, streamed through the
filter chain for static files (in memory and read from disk) and proxied responses, and every case
where the body must be left alone."""
import ctypes
import ctypes.util
import gzip
import os
import subprocess
import time
import zlib

import pytest

from conftest import make_config, PORT_PLACEHOLDER

TEXT = b"".join(b"line %d: the quick brown fox jumps over the lazy dog\n" % i for i in range(2000))  # ~110 KiB
SMALL = b"tiny text file\n" * 10  # 150 bytes


def brotli_decompress(data):
    try:
        import brotli  # python3-brotli, when installed
        return brotli.decompress(data)
    except ImportError:
        pass
    lib = ctypes.CDLL(ctypes.util.find_library("brotlidec") or "libbrotlidec.so.1")
    out_size = ctypes.c_size_t(64 * 1024 * 1024)
    out = ctypes.create_string_buffer(out_size.value)
    rc = lib.BrotliDecoderDecompress(ctypes.c_size_t(len(data)), data, ctypes.byref(out_size), out)
    assert rc == 1, "brotli stream does not decode"
    return out.raw[:out_size.value]


def decode(resp):
    enc = resp.header("content-encoding")
    if enc == "gzip":
        return gzip.decompress(resp.body)
    if enc == "br":
        return brotli_decompress(resp.body)
    assert enc is None, enc
    return resp.body


@pytest.fixture
def site(wwwroot):
    (wwwroot / "big.txt").write_bytes(TEXT)                 # read from disk in pieces
    (wwwroot / "page.html").write_bytes(TEXT[:8000])         # kept in memory by the file cache
    (wwwroot / "small.txt").write_bytes(SMALL)
    (wwwroot / "photo.jpg").write_bytes(os.urandom(4000))
    (wwwroot / "app.js").write_bytes(TEXT[:3000])
    return wwwroot


@pytest.fixture
def gw(start_gateway, site):
    return start_gateway(make_config(site))


@pytest.mark.parametrize("path", ["/big.txt", "/page.html"])
@pytest.mark.parametrize("ae,enc", [("gzip", "gzip"), ("br", "br"), ("gzip, deflate, br", "br"),
                                    ("br;q=0.4, gzip;q=0.9", "gzip"), ("*", "br")])
def test_negotiated_encoding(gw, site, path, ae, enc):
    r = gw.get(path, headers={"Accept-Encoding": ae})
    assert r.status == 200
    assert r.header("content-encoding") == enc
    assert r.header("content-length") is None and r.header("transfer-encoding") == "chunked"
    assert r.has_token("vary", "accept-encoding")
    assert r.header("accept-ranges") is None
    assert decode(r) == (site / path[1:]).read_bytes()
    assert len(r.body) < len((site / path[1:]).read_bytes()) / 3


def test_etag_suffixed_per_encoding(gw):
    plain = gw.get("/big.txt").header("etag")
    gz = gw.get("/big.txt", headers={"Accept-Encoding": "gzip"}).header("etag")
    br = gw.get("/big.txt", headers={"Accept-Encoding": "br"}).header("etag")
    assert gz == plain[:-1] + '-gzip"' and br == plain[:-1] + '-br"'
    # the client revalidates with the tag of what it holds
    r = gw.get("/big.txt", headers={"Accept-Encoding": "br", "If-None-Match": br})
    assert r.status == 304 and r.header("etag") == br and r.has_token("vary", "accept-encoding")
    r = gw.get("/big.txt", headers={"Accept-Encoding": "gzip", "If-None-Match": gz})
    assert r.status == 304 and r.header("etag") == gz
    r = gw.get("/big.txt", headers={"If-None-Match": plain})
    assert r.status == 304 and r.header("etag") == plain


@pytest.mark.parametrize("path,headers", [
    ("/small.txt", {"Accept-Encoding": "gzip"}),                              # under 256 bytes
    ("/photo.jpg", {"Accept-Encoding": "gzip, br"}),                          # already compressed
    ("/big.txt", {}),                                                         # not asked for
    ("/big.txt", {"Accept-Encoding": "identity"}),
    ("/big.txt", {"Accept-Encoding": "gzip;q=0, br;q=0"}),
    ("/big.txt", {"Accept-Encoding": "deflate"}),
    ("/big.txt", {"Accept-Encoding": "gzip", "Cache-Control": "no-transform"}),
], ids=["small", "jpeg", "no-ae", "identity", "q0", "deflate", "no-transform"])
def test_not_compressed(gw, site, path, headers):
    r = gw.get(path, headers=headers)
    assert r.status == 200
    assert r.header("content-encoding") is None
    assert r.body == (site / path[1:]).read_bytes()
    assert r.header("content-length") == str(len(r.body))


def test_vary_even_when_not_compressed(gw):
    assert gw.get("/big.txt").has_token("vary", "accept-encoding")
    assert gw.get("/photo.jpg").header("vary") is None
    assert gw.get("/small.txt").header("vary") is None


def test_range_is_not_compressed(gw):
    r = gw.get("/big.txt", headers={"Accept-Encoding": "gzip", "Range": "bytes=0-99"})
    assert r.status == 206 and r.header("content-encoding") is None and r.body == TEXT[:100]


def test_head_has_the_get_headers(gw):
    with gw.connect() as c:
        c.send(b"HEAD /big.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br\r\n\r\n"
               b"GET /app.js HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        h = c.read_response("HEAD")
        assert h.status == 200 and h.header("content-encoding") == "br" and h.body == b""
        r = c.read_response()
    assert r.header("content-encoding") == "gzip" and gzip.decompress(r.body) == TEXT[:3000]


def test_compression_disabled(start_gateway, site):
    gw = start_gateway(make_config(site, enableCompression=False))
    r = gw.get("/big.txt", headers={"Accept-Encoding": "gzip, br"})
    assert r.header("content-encoding") is None and r.body == TEXT
    assert r.header("vary") is None


def test_keepalive_after_compressed_responses(gw):
    with gw.connect() as c:
        for i in range(5):
            c.send(b"GET /big.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: %s\r\n\r\n" % (b"gzip" if i % 2 else b"br"))
            assert decode(c.read_response()) == TEXT


def test_error_pages_are_compressed_too(gw):
    r = gw.get("/missing", headers={"Accept-Encoding": "gzip"})
    assert r.status == 404 and r.header("content-encoding") == "gzip"
    assert b"404 Not Found" in gzip.decompress(r.body)


def test_curl_compressed(gw, tmp_path):
    out = subprocess.run(["curl", "-s", "--compressed", "-w", "%{size_download}",
                          "-o", str(tmp_path / "o"), f"http://127.0.0.1:{gw.port}/big.txt"],
                         capture_output=True, timeout=10)
    assert (tmp_path / "o").read_bytes() == TEXT
    assert int(out.stdout) < len(TEXT) / 3


def test_precompressed_siblings(gw, site):
    gzdata = gzip.compress(TEXT[:5000] + b"from the .gz file\n")
    (site / "app.js.gz").write_bytes(gzdata)
    r = gw.get("/app.js", headers={"Accept-Encoding": "gzip"})
    assert r.header("content-encoding") == "gzip"
    assert r.body == gzdata                                   # the sibling itself, not recompressed
    assert r.header("content-length") == str(len(gzdata))
    assert r.header("content-type") == "text/javascript; charset=utf-8"
    assert r.has_token("vary", "accept-encoding") and r.header("etag").endswith('-gzip"')
    # br preferred but there is no app.js.br: dynamic br
    r = gw.get("/app.js", headers={"Accept-Encoding": "br"})
    assert r.header("content-encoding") == "br" and decode(r) == TEXT[:3000]
    plain = gw.get("/app.js")
    assert plain.body == TEXT[:3000] and plain.header("content-encoding") is None


def test_stale_sibling_is_ignored(start_gateway, site):
    (site / "app.js.br").write_bytes(b"stale brotli")
    old = time.time() - 3600
    os.utime(site / "app.js.br", (old, old))
    gw = start_gateway(make_config(site))
    r = gw.get("/app.js", headers={"Accept-Encoding": "br"})
    assert r.header("content-encoding") == "br" and decode(r) == TEXT[:3000]


# ---- proxied responses: streamed, unknown length ----

@pytest.fixture
def proxied(start_gateway):
    from backends import Backend
    b = Backend("c")
    gw = start_gateway(f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [rproxy]\n"
                       f"  proxyTo: \"{b.url}\"\n")
    yield gw
    b.close()


def test_proxied_json_is_compressed(proxied):
    r = proxied.get("/echo/" + "x" * 400, headers={"Accept-Encoding": "gzip"})
    assert r.status == 200 and r.header("content-encoding") == "gzip"
    assert b'"target": "/echo/xxx' in gzip.decompress(r.body)


def test_streamed_events_are_flushed_one_by_one(proxied):
    with proxied.connect(timeout=5) as c:
        c.send(b"GET /sse HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        _, status, _, headers, _ = c.read_head()
        assert status == 200 and ("content-encoding", "gzip") in [(k.lower(), v) for k, v in headers]
        t0 = time.monotonic()

        def events_so_far():
            buf, body = c.buf, b""  # undo the chunked framing of what arrived so far
            while b"\r\n" in buf:
                size_line, rest = buf.split(b"\r\n", 1)
                size = int(size_line, 16)
                if len(rest) < size + 2:
                    break
                body += rest[:size]
                buf = rest[size + 2:]
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body)

        while b"event 0" not in events_so_far():
            c._fill()
        assert time.monotonic() - t0 < 0.15  # the first event is not held back by the compressor
        assert b"event 1" not in events_so_far()
