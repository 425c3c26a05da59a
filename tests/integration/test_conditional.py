"""Conditional requests (RFC 9110 §13): If-Match, If-Unmodified-Since, If-None-Match and
If-Modified-Since with real date comparison, evaluated in the order of §13.2.2."""
import email.utils

import pytest

from conftest import make_config


def shifted(date, seconds):
    t = email.utils.parsedate_to_datetime(date).timestamp() + seconds
    return email.utils.formatdate(t, usegmt=True)


@pytest.fixture
def v(gateway):
    r = gateway.get("/hello.txt")
    return r.header("etag"), r.header("last-modified")


def test_if_modified_since_compares_dates(gateway, v):
    _, lm = v
    assert gateway.get("/hello.txt", headers={"If-Modified-Since": shifted(lm, 3600)}).status == 304
    assert gateway.get("/hello.txt", headers={"If-Modified-Since": shifted(lm, -1)}).status == 200
    rfc850 = email.utils.parsedate_to_datetime(lm).strftime("%A, %d-%b-%y %H:%M:%S GMT")
    assert gateway.get("/hello.txt", headers={"If-Modified-Since": rfc850}).status == 304
    asctime = email.utils.parsedate_to_datetime(lm).strftime("%a %b %e %H:%M:%S %Y")
    assert gateway.get("/hello.txt", headers={"If-Modified-Since": asctime}).status == 304
    assert gateway.get("/hello.txt", headers={"If-Modified-Since": "not a date"}).status == 200


def test_if_match(gateway, v):
    etag, _ = v
    assert gateway.get("/hello.txt", headers={"If-Match": etag}).status == 200
    assert gateway.get("/hello.txt", headers={"If-Match": f'"x", {etag}'}).status == 200
    assert gateway.get("/hello.txt", headers={"If-Match": "*"}).status == 200
    r = gateway.get("/hello.txt", headers={"If-Match": '"other"'})
    assert r.status_line == "HTTP/1.1 412 Precondition Failed"
    assert gateway.get("/hello.txt", headers={"If-Match": "W/" + etag}).status == 412  # strong comparison


def test_if_unmodified_since(gateway, v):
    _, lm = v
    assert gateway.get("/hello.txt", headers={"If-Unmodified-Since": lm}).status == 200
    assert gateway.get("/hello.txt", headers={"If-Unmodified-Since": shifted(lm, -60)}).status == 412
    assert gateway.get("/hello.txt", headers={"If-Unmodified-Since": "garbage"}).status == 200


def test_precedence(gateway, v):
    etag, lm = v
    # If-Match wins over If-Unmodified-Since
    assert gateway.get("/hello.txt", headers={"If-Match": etag, "If-Unmodified-Since": shifted(lm, -60)}).status == 200
    # a failing If-Match is answered before If-None-Match
    assert gateway.get("/hello.txt", headers={"If-Match": '"no"', "If-None-Match": etag}).status == 412
    # If-None-Match wins over If-Modified-Since, both ways
    assert gateway.get("/hello.txt", headers={"If-None-Match": '"no"', "If-Modified-Since": shifted(lm, 60)}).status == 200
    assert gateway.get("/hello.txt", headers={"If-None-Match": etag, "If-Modified-Since": shifted(lm, -60)}).status == 304
    # a 304 beats a Range
    assert gateway.get("/hello.txt", headers={"If-None-Match": etag, "Range": "bytes=0-1"}).status == 304


def test_304_and_412_headers(gateway, v):
    etag, lm = v
    r = gateway.get("/hello.txt", headers={"If-None-Match": etag})
    assert r.status == 304 and r.header("etag") == etag and r.header("last-modified") == lm
    assert r.header("content-length") is None and r.body == b""
    r = gateway.get("/hello.txt", headers={"If-Match": '"zz"'})
    assert r.status == 412 and b"412 Precondition Failed" in r.body


def test_without_etags(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, enableETag=False))
    assert gw.get("/hello.txt", headers={"If-Match": "*"}).status == 200
    assert gw.get("/hello.txt", headers={"If-Match": '"x"'}).status == 412
    assert gw.get("/hello.txt", headers={"If-None-Match": "*"}).status == 304
