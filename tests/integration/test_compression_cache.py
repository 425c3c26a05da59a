"""Compressed variants of static files kept in the open-file cache (compressionCacheMaxBytes): the
first request in a coding is compressed on the fly (chunked), the next ones get the kept bytes
(with a Content-Length); a changed file is compressed again; ranges and conditional requests
behave as without the cache."""
import gzip
import subprocess

import pytest

from conftest import child_env, make_config
from test_compression import TEXT, decode

pytestmark = pytest.mark.one_worker  # the variants are kept per worker

PAGE = TEXT[:8000]  # kept in memory by the open-file cache; TEXT is read from disk in pieces


@pytest.fixture
def site(wwwroot):
    (wwwroot / "big.txt").write_bytes(TEXT)
    (wwwroot / "page.html").write_bytes(PAGE)
    return wwwroot


def on_the_fly(r):
    return r.header("content-length") is None and r.header("transfer-encoding") == "chunked"


def kept(r):
    return r.header("transfer-encoding") is None and r.header("content-length") == str(len(r.body))


@pytest.mark.parametrize("path", ["/big.txt", "/page.html"])
@pytest.mark.parametrize("enc", ["gzip", "br"])
def test_second_request_gets_the_kept_variant(start_gateway, site, path, enc):
    gw = start_gateway(make_config(site))
    first = gw.get(path, headers={"Accept-Encoding": enc})
    second = gw.get(path, headers={"Accept-Encoding": enc})
    assert first.status == 200 and on_the_fly(first)
    assert second.status == 200 and kept(second)
    assert second.body == first.body and decode(second) == (site / path[1:]).read_bytes()
    for name in ("content-encoding", "etag", "content-type", "last-modified"):
        assert second.header(name) == first.header(name), name
    assert second.header("etag").endswith(f'-{enc}"')
    assert second.has_token("vary", "accept-encoding") and second.header("accept-ranges") is None
    plain = gw.get(path)
    assert plain.body == (site / path[1:]).read_bytes() and plain.header("content-encoding") is None


def test_each_coding_kept_apart(start_gateway, site):
    gw = start_gateway(make_config(site))
    gw.get("/big.txt", headers={"Accept-Encoding": "gzip"})
    r = gw.get("/big.txt", headers={"Accept-Encoding": "br"})  # br not kept yet: made now
    assert r.header("content-encoding") == "br" and on_the_fly(r)
    for enc in ("gzip", "br"):
        r = gw.get("/big.txt", headers={"Accept-Encoding": enc})
        assert r.header("content-encoding") == enc and kept(r) and decode(r) == TEXT
    # the client's preference decides, not what happens to be kept
    r = gw.get("/big.txt", headers={"Accept-Encoding": "br;q=0.5, gzip"})
    assert r.header("content-encoding") == "gzip" and decode(r) == TEXT


def test_changed_file_is_compressed_again(start_gateway, site):
    gw = start_gateway(make_config(site, openFileCacheValidity=0))
    gw.get("/page.html", headers={"Accept-Encoding": "gzip"})
    old = gw.get("/page.html", headers={"Accept-Encoding": "gzip"})
    assert kept(old)
    new_text = b"<p>changed</p>\n" * 700
    (site / "page.html").write_bytes(new_text)
    r = gw.get("/page.html", headers={"Accept-Encoding": "gzip"})
    assert on_the_fly(r) and gzip.decompress(r.body) == new_text
    assert r.header("etag") != old.header("etag")
    again = gw.get("/page.html", headers={"Accept-Encoding": "gzip"})
    assert kept(again) and gzip.decompress(again.body) == new_text


def test_ranges_and_conditions_with_a_kept_variant(start_gateway, site):
    gw = start_gateway(make_config(site))
    gw.get("/big.txt", headers={"Accept-Encoding": "gzip"})
    r = gw.get("/big.txt", headers={"Accept-Encoding": "gzip"})
    assert kept(r)
    gz_tag = r.header("etag")
    rng = gw.get("/big.txt", headers={"Accept-Encoding": "gzip", "Range": "bytes=100-199"})
    assert rng.status == 206 and rng.header("content-encoding") is None and rng.body == TEXT[100:200]
    nm = gw.get("/big.txt", headers={"Accept-Encoding": "gzip", "If-None-Match": gz_tag})
    assert nm.status == 304 and nm.header("etag") == gz_tag and nm.body == b""
    stale = gw.get("/big.txt", headers={"Accept-Encoding": "gzip", "If-None-Match": '"other"'})
    assert stale.status == 200 and kept(stale) and decode(stale) == TEXT
    ims = gw.get("/big.txt", headers={"Accept-Encoding": "gzip", "If-Modified-Since": r.header("last-modified")})
    assert ims.status == 304
    with gw.connect() as c:  # HEAD gets the GET's headers
        c.send(b"HEAD /big.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        h = c.read_response("HEAD")
    assert h.status == 200 and h.header("content-encoding") == "gzip" and h.body == b""
    assert h.header("etag") == gz_tag


@pytest.mark.parametrize("limit", [0, 1000])
def test_nothing_kept_beyond_the_limit(start_gateway, site, limit):
    """0 keeps nothing; 1000 bytes is less than the compressed file: it is compressed every time."""
    gw = start_gateway(make_config(site, compressionCacheMaxBytes=limit))
    for _ in range(3):
        r = gw.get("/big.txt", headers={"Accept-Encoding": "gzip"})
        assert on_the_fly(r) and gzip.decompress(r.body) == TEXT


def test_limit_is_validated(gateway_bin, tmp_path):
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text("global:\n  port: 8080\n  compressionCacheMaxBytes: -1\n")
    p = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=15,
                       env=child_env())
    assert p.returncode == 1
    assert f"{cfg}:3:29: compressionCacheMaxBytes: " in p.stderr, p.stderr
