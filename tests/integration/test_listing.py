"""enableDirectoryListing: generated index pages for directories without an index file."""
import re

from conftest import make_config


def test_listing(start_gateway, wwwroot):
    d = wwwroot / "noindex"
    (d / "b.txt").write_bytes(b"x" * 2048)
    (d / "<script>&.txt").write_bytes(b"s")
    (d / "a dir").mkdir()
    (d / ".hidden").write_bytes(b"h")
    gw = start_gateway(make_config(wwwroot, enableDirectoryListing=True))
    r = gw.get("/noindex/")
    assert r.status == 200 and r.header("content-type") == "text/html; charset=utf-8"
    body = r.body.decode()
    assert "<script>" not in body and "&lt;script&gt;&amp;.txt" in body
    assert 'href="/noindex/%3Cscript%3E%26.txt"' in body
    assert 'href="/noindex/a%20dir/"' in body
    assert ".hidden" not in body
    names = re.findall(r'<a href="[^"]*">([^<]*)</a>', body)
    assert names == ["../", "a dir/", "&lt;script&gt;&amp;.txt", "b.txt", "file.txt"]
    assert "2.0 KiB" in body
    assert gw.get("/noindex/%3Cscript%3E%26.txt").body == b"s"
    assert gw.get("/sub/").body.startswith(b"<html><body>sub index")  # an index file still wins


def test_listing_off_by_default(gateway):
    assert gateway.get("/noindex/").status == 403


def test_listing_per_location(start_gateway, wwwroot):
    hosts = ('  - domain: "*"\n    locations:\n      - path: /noindex\n        enableDirectoryListing: true\n')
    gw = start_gateway(make_config(wwwroot, hosts=hosts))
    assert gw.get("/noindex/").status == 200
    assert gw.get("/htmdir/").status == 200
    (wwwroot / "empty").mkdir()
    assert gw.get("/empty/").status == 403
