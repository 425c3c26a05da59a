"""
The response cache (RFC 9111) in front of rproxy, with a scripted origin whose request counts prove
hits and misses. Every test runs with one worker and with two (entries are shared by workers).
"""
import concurrent.futures
import time

import pytest

from cache_origin import cached, cs, http_date, origin, workers, xc  # noqa: F401 (fixtures)
from conftest import make_config


# ---- storing and serving ----

def test_max_age_hit(cached, origin):
    origin.route("/a", headers=[("Cache-Control", "max-age=60"), ("Content-Type", "text/plain")], body=b"hello")
    gw = cached()
    r1 = gw.get("/a")
    assert r1.status == 200 and r1.body == b"hello" and xc(r1) == "MISS", r1
    assert "fwd=uri-miss" in cs(r1) and "stored" in cs(r1)
    r2 = gw.get("/a")
    assert r2.status == 200 and r2.body == b"hello" and xc(r2) == "HIT", r2
    assert cs(r2).startswith("gateway; hit") and "ttl=" in cs(r2)
    assert r2.header("age") is not None and int(r2.header("age")) >= 0
    assert r2.header("content-type") == "text/plain"
    assert origin.count("/a") == 1


def test_query_is_part_of_the_key(cached, origin):
    origin.route("/q?x=1", headers=[("Cache-Control", "max-age=60")], body=b"one")
    origin.route("/q?x=2", headers=[("Cache-Control", "max-age=60")], body=b"two")
    gw = cached()
    assert gw.get("/q?x=1").body == b"one"
    assert gw.get("/q?x=2").body == b"two"
    assert gw.get("/q?x=1").body == b"one"
    assert origin.count("/q?x=1") == 1 and origin.count("/q?x=2") == 1


def test_host_is_part_of_the_key(cached, origin):
    origin.route("/h", fn=lambda m, h, n: (200, [("Cache-Control", "max-age=60")], h.get("x-forwarded-host", "")))
    gw = cached()
    assert gw.get("/h", host="a.test").body == b"a.test"
    assert gw.get("/h", host="b.test").body == b"b.test"
    assert gw.get("/h", host="a.test").body == b"a.test"
    assert origin.count("/h") == 2


@pytest.mark.parametrize("cc", ["no-store", "private", "max-age=60, no-store", "max-age=60, private"])
def test_not_stored(cached, origin, cc):
    origin.route("/ns", headers=[("Cache-Control", cc)])
    gw = cached()
    r = gw.get("/ns")
    assert xc(r) == "MISS" and "stored" not in cs(r)
    gw.get("/ns")
    assert origin.count("/ns") == 2


def test_no_freshness_no_validator_not_stored(cached, origin):
    origin.route("/plain", body=b"x")
    gw = cached()
    gw.get("/plain")
    gw.get("/plain")
    assert origin.count("/plain") == 2


def test_s_maxage_beats_max_age(cached, origin):
    origin.route("/s", headers=[("Cache-Control", "max-age=0, s-maxage=60")])
    gw = cached()
    gw.get("/s")
    assert xc(gw.get("/s")) == "HIT"
    assert origin.count("/s") == 1


def test_expires_with_date(cached, origin):
    now = time.time()
    origin.route("/exp", headers=[("Date", http_date(now)), ("Expires", http_date(now + 60))])
    origin.route("/past", headers=[("Date", http_date(now)), ("Expires", http_date(now - 60))])
    origin.route("/bad", headers=[("Expires", "0"), ("Cache-Control", "public")])
    gw = cached()
    for p in ("/exp", "/past", "/bad"):
        gw.get(p)
        gw.get(p)
    assert origin.count("/exp") == 1
    assert origin.count("/past") == 2
    assert origin.count("/bad") == 2


def test_max_age_overrides_expires(cached, origin):
    now = time.time()
    origin.route("/mo", headers=[("Expires", http_date(now - 60)), ("Cache-Control", "max-age=60")])
    gw = cached()
    gw.get("/mo")
    assert xc(gw.get("/mo")) == "HIT"


def test_invalid_max_age_is_stale(cached, origin):
    origin.route("/inv", headers=[("Cache-Control", "max-age=abc")])
    gw = cached()
    gw.get("/inv")
    gw.get("/inv")
    assert origin.count("/inv") == 2


def test_heuristic_freshness_from_last_modified(cached, origin):
    origin.route("/lm", headers=[("Last-Modified", http_date(time.time() - 10 * 86400))])
    origin.route("/lm302", status=302, headers=[("Last-Modified", http_date(time.time() - 10 * 86400)),
                                                 ("Location", "/x")])
    gw = cached()
    gw.get("/lm")
    r = gw.get("/lm")
    assert xc(r) == "HIT", r
    gw.get("/lm302")
    gw.get("/lm302")
    assert origin.count("/lm") == 1
    assert origin.count("/lm302") == 2  # 302 is not heuristically cacheable


def test_explicit_status_404_cached(cached, origin):
    origin.route("/nf", status=404, headers=[("Cache-Control", "max-age=60")], body=b"gone")
    gw = cached()
    gw.get("/nf")
    r = gw.get("/nf")
    assert r.status == 404 and r.body == b"gone" and xc(r) == "HIT"


def test_expired_max_age(cached, origin):
    # max-age=3: the second request must come while the entry is fresh, also on a loaded machine
    origin.route("/e", headers=[("Cache-Control", "max-age=3")])
    gw = cached()
    gw.get("/e")
    assert xc(gw.get("/e")) == "HIT"
    time.sleep(4.2)
    r = gw.get("/e")
    assert xc(r) == "MISS"
    assert origin.count("/e") == 2


def test_age_from_origin_counts(cached, origin):
    origin.route("/age", headers=[("Cache-Control", "max-age=60"), ("Age", "100")])
    origin.route("/age2", headers=[("Cache-Control", "max-age=60"), ("Age", "30")])
    gw = cached()
    gw.get("/age")
    gw.get("/age")
    assert origin.count("/age") == 2  # already older than its lifetime
    gw.get("/age2")
    r = gw.get("/age2")
    assert xc(r) == "HIT" and int(r.header("age")) >= 30


# ---- Vary ----

def test_vary(cached, origin):
    origin.route("/v", fn=lambda m, h, n: (200, [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")],
                                           h.get("accept-language", "none")))
    gw = cached()
    assert gw.get("/v", headers={"Accept-Language": "en"}).body == b"en"
    assert gw.get("/v", headers={"Accept-Language": "fr"}).body == b"fr"
    r = gw.get("/v", headers={"Accept-Language": "en"})
    assert r.body == b"en" and xc(r) == "HIT"
    r = gw.get("/v")
    assert r.body == b"none" and "vary-miss" in cs(r)
    assert gw.get("/v").body == b"none"
    assert origin.count("/v") == 3


def test_vary_star_never_stored(cached, origin):
    origin.route("/vs", headers=[("Cache-Control", "max-age=60"), ("Vary", "*")])
    gw = cached()
    gw.get("/vs")
    gw.get("/vs")
    assert origin.count("/vs") == 2


def test_cache_vary_headers_config(start_gateway, origin):
    origin.route("/t2", fn=lambda m, h, n: (200, [("Cache-Control", "max-age=60")], h.get("x-tenant", "-")))
    text = make_config(workers=1, proxyTo=origin.url).replace(
        "global:\n", "global:\n  loadModules: [cache, rproxy]\n  cacheVaryHeaders: [X-Tenant]\n"
        "  cacheIgnoreHeaders: [Set-Cookie]\n", 1)
    gw = start_gateway(text)
    assert gw.get("/t2", headers={"X-Tenant": "a"}).body == b"a"
    assert gw.get("/t2", headers={"X-Tenant": "b"}).body == b"b"
    r = gw.get("/t2", headers={"X-Tenant": "a"})
    assert r.body == b"a" and xc(r) == "HIT"
    assert origin.count("/t2") == 2


def test_cache_ignore_headers(start_gateway, origin):
    origin.route("/ck", headers=[("Cache-Control", "max-age=60"), ("Set-Cookie", "s=1"), ("X-Keep", "1")])
    text = make_config(workers=1, proxyTo=origin.url).replace(
        "global:\n", "global:\n  loadModules: [cache, rproxy]\n  cacheIgnoreHeaders: [Set-Cookie]\n", 1)
    gw = start_gateway(text)
    r1 = gw.get("/ck")
    assert r1.header("set-cookie") == "s=1"  # the live response keeps it
    r2 = gw.get("/ck")
    assert xc(r2) == "HIT" and r2.header("set-cookie") is None and r2.header("x-keep") == "1"


def test_private_and_no_cache_field_names_stripped(cached, origin):
    origin.route("/pf", headers=[("Cache-Control", 'max-age=60, private="X-User"'), ("X-User", "alice")])
    gw = cached()
    assert gw.get("/pf").header("x-user") == "alice"
    r = gw.get("/pf")
    assert xc(r) == "HIT" and r.header("x-user") is None


# ---- request directives ----

def test_request_no_store(cached, origin):
    origin.route("/rns", headers=[("Cache-Control", "max-age=60")])
    gw = cached()
    gw.get("/rns", headers={"Cache-Control": "no-store"})
    gw.get("/rns")
    assert origin.count("/rns") == 2


def test_request_no_cache_revalidates(cached, origin):
    def fn(m, h, n):
        if h.get("if-none-match") == '"v1"':
            return 304, [("ETag", '"v1"'), ("Cache-Control", "max-age=60")], b""
        return 200, [("ETag", '"v1"'), ("Cache-Control", "max-age=60")], b"full"
    origin.route("/rnc", fn=fn)
    gw = cached()
    gw.get("/rnc")
    r = gw.get("/rnc", headers={"Cache-Control": "no-cache"})
    assert r.status == 200 and r.body == b"full" and "fwd=request" in cs(r) and "fwd-status=304" in cs(r)
    assert origin.count("/rnc") == 2
    assert origin.seen["/rnc"][1].get("if-none-match") == '"v1"'
    r = gw.get("/rnc", headers={"Pragma": "no-cache"})
    assert origin.count("/rnc") == 3


def test_request_max_age_zero(cached, origin):
    origin.route("/rma", headers=[("Cache-Control", "max-age=60")])
    gw = cached()
    gw.get("/rma")
    gw.get("/rma", headers={"Cache-Control": "max-age=0"})
    assert origin.count("/rma") == 2


def test_min_fresh(cached, origin):
    origin.route("/mf", headers=[("Cache-Control", "max-age=10")])
    gw = cached()
    gw.get("/mf")
    assert xc(gw.get("/mf", headers={"Cache-Control": "min-fresh=5"})) == "HIT"
    gw.get("/mf", headers={"Cache-Control": "min-fresh=30"})
    assert origin.count("/mf") == 2


def test_max_stale(cached, origin):
    origin.route("/ms", headers=[("Cache-Control", "max-age=1")])
    origin.route("/msr", headers=[("Cache-Control", "max-age=1, must-revalidate")])
    gw = cached()
    gw.get("/ms")
    gw.get("/msr")
    time.sleep(2.2)
    r = gw.get("/ms", headers={"Cache-Control": "max-stale=60"})
    assert xc(r) == "HIT" and origin.count("/ms") == 1
    r = gw.get("/ms", headers={"Cache-Control": "max-stale"})
    assert xc(r) == "HIT" and origin.count("/ms") == 1
    gw.get("/msr", headers={"Cache-Control": "max-stale=60"})
    assert origin.count("/msr") == 2


def test_only_if_cached(cached, origin):
    origin.route("/oic", headers=[("Cache-Control", "max-age=60")])
    gw = cached()
    r = gw.get("/oic", headers={"Cache-Control": "only-if-cached"})
    assert r.status == 504 and origin.count("/oic") == 0
    gw.get("/oic")
    r = gw.get("/oic", headers={"Cache-Control": "only-if-cached"})
    assert r.status == 200 and xc(r) == "HIT"


# ---- Authorization (RFC 9111 §3.5) ----

def test_authorization(cached, origin):
    origin.route("/auth1", headers=[("Cache-Control", "max-age=60")])
    origin.route("/auth2", headers=[("Cache-Control", "max-age=60, public")])
    origin.route("/auth3", headers=[("Cache-Control", "s-maxage=60")])
    gw = cached()
    a = {"Authorization": "Bearer x"}
    for p in ("/auth1", "/auth2", "/auth3"):
        gw.get(p, headers=a)
        gw.get(p, headers=a)
    assert origin.count("/auth1") == 2
    assert origin.count("/auth2") == 1
    assert origin.count("/auth3") == 1


def test_authorized_request_not_served_from_plain_entry(cached, origin):
    origin.route("/auth4", headers=[("Cache-Control", "max-age=60")])
    gw = cached()
    gw.get("/auth4")
    assert xc(gw.get("/auth4")) == "HIT"
    gw.get("/auth4", headers={"Authorization": "Bearer x"})
    assert origin.count("/auth4") == 2


# ---- HEAD, ranges, conditionals from the client ----

def test_head_from_stored_get(cached, origin):
    origin.route("/hd", headers=[("Cache-Control", "max-age=60")], body=b"0123456789")
    gw = cached()
    gw.get("/hd")
    with gw.connect() as c:
        c.send(b"HEAD /hd HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        r = c.read_response("HEAD")
        assert r.status == 200 and xc(r) == "HIT" and r.header("content-length") == "10"
        assert c.read_until_close() == b""
    assert origin.count("/hd") == 1


def test_head_miss_not_stored_as_get(cached, origin):
    origin.route("/hm", headers=[("Cache-Control", "max-age=60")], body=b"body!")
    gw = cached()
    with gw.connect() as c:
        c.send(b"HEAD /hm HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        c.read_response("HEAD")
    r = gw.get("/hm")
    assert r.body == b"body!" and xc(r) == "MISS"


def test_range_from_stored(cached, origin):
    origin.route("/rg", headers=[("Cache-Control", "max-age=60"), ("Content-Type", "text/plain")], body=b"0123456789")
    gw = cached()
    gw.get("/rg")
    r = gw.get("/rg", headers={"Range": "bytes=2-5"})
    assert r.status == 206 and r.body == b"2345" and r.header("content-range") == "bytes 2-5/10"
    r = gw.get("/rg", headers={"Range": "bytes=0-0,8-"})
    assert r.status == 206 and b"multipart/byteranges" in r.head
    r = gw.get("/rg", headers={"Range": "bytes=50-"})
    assert r.status == 416 and r.header("content-range") == "bytes */10"
    assert origin.count("/rg") == 1


def test_206_never_served_as_200(cached, origin):
    def fn(m, h, n):
        if "range" in h:
            return 206, [("Cache-Control", "max-age=60"), ("Content-Range", "bytes 0-1/10")], b"01"
        return 200, [("Cache-Control", "max-age=60")], b"0123456789"
    origin.route("/p", fn=fn)
    gw = cached()
    r = gw.get("/p", headers={"Range": "bytes=0-1"})
    assert r.status == 206
    r = gw.get("/p")
    assert r.status == 200 and r.body == b"0123456789"


def test_client_conditional_on_hit(cached, origin):
    origin.route("/cond", headers=[("Cache-Control", "max-age=60"), ("ETag", '"abc"')], body=b"x")
    gw = cached()
    gw.get("/cond")
    r = gw.get("/cond", headers={"If-None-Match": '"abc"'})
    assert r.status == 304 and xc(r) == "HIT"
    r = gw.get("/cond", headers={"If-None-Match": '"zzz"'})
    assert r.status == 200 and r.body == b"x"
    assert origin.count("/cond") == 1


# ---- validation ----

def test_stale_revalidated_with_etag_and_304_updates_headers(cached, origin):
    def fn(m, h, n):
        if h.get("if-none-match") == '"v1"':
            return 304, [("ETag", '"v1"'), ("Cache-Control", "max-age=60"), ("X-Version", str(n))], b""
        return 200, [("ETag", '"v1"'), ("Cache-Control", "max-age=1"), ("X-Version", str(n))], b"payload"
    origin.route("/rv", fn=fn)
    gw = cached()
    assert gw.get("/rv").header("x-version") == "1"
    time.sleep(2.2)
    r = gw.get("/rv")
    assert r.status == 200 and r.body == b"payload" and r.header("x-version") == "2", r
    assert "fwd=stale" in cs(r) and "fwd-status=304" in cs(r)
    r = gw.get("/rv")
    assert xc(r) == "HIT" and r.header("x-version") == "2" and r.body == b"payload"
    assert origin.count("/rv") == 2


def test_revalidate_with_last_modified(cached, origin):
    lm = http_date(time.time() - 100)

    def fn(m, h, n):
        if h.get("if-modified-since") == lm:
            return 304, [("Cache-Control", "max-age=60")], b""
        return 200, [("Last-Modified", lm), ("Cache-Control", "max-age=0")], b"lm-body"
    origin.route("/rlm", fn=fn)
    gw = cached()
    gw.get("/rlm")
    r = gw.get("/rlm")
    assert r.body == b"lm-body" and "fwd-status=304" in cs(r)
    r = gw.get("/rlm")
    assert xc(r) == "HIT" and origin.count("/rlm") == 2


def test_no_cache_response_always_revalidated(cached, origin):
    def fn(m, h, n):
        if h.get("if-none-match") == '"n"':
            return 304, [("ETag", '"n"'), ("Cache-Control", "no-cache")], b""
        return 200, [("ETag", '"n"'), ("Cache-Control", "no-cache")], b"nc"
    origin.route("/nc", fn=fn)
    gw = cached()
    gw.get("/nc")
    for i in range(2):
        r = gw.get("/nc")
        assert r.body == b"nc" and "fwd-status=304" in cs(r)
    assert origin.count("/nc") == 3


def test_revalidation_gets_new_content(cached, origin):
    def fn(m, h, n):
        # max-age=3: the request after the refetch must find it fresh, also on a loaded machine
        return 200, [("ETag", f'"v{n}"'), ("Cache-Control", "max-age=3")], f"version {n}"
    origin.route("/new", fn=fn)
    gw = cached()
    assert gw.get("/new").body == b"version 1"
    time.sleep(4.2)
    assert gw.get("/new").body == b"version 2"
    r = gw.get("/new")
    assert r.body == b"version 2" and xc(r) == "HIT"


def test_stale_if_error(cached, origin):
    def fn(m, h, n):
        if n == 1:
            return 200, [("Cache-Control", "max-age=1, stale-if-error=60")], b"good"
        return 503, [], b"down"
    origin.route("/sie", fn=fn)
    gw = cached()
    gw.get("/sie")
    time.sleep(2.2)
    r = gw.get("/sie")
    assert r.status == 200 and r.body == b"good" and "fwd=stale" in cs(r), r


def test_stale_if_error_not_with_must_revalidate(cached, origin):
    def fn(m, h, n):
        if n == 1:
            return 200, [("Cache-Control", "max-age=1, stale-if-error=60, must-revalidate")], b"good"
        return 503, [], b"down"
    origin.route("/sie2", fn=fn)
    gw = cached()
    gw.get("/sie2")
    time.sleep(2.2)
    assert gw.get("/sie2").status == 503


def test_stale_if_error_backend_gone(cached, origin):
    origin.route("/gone", headers=[("Cache-Control", "max-age=1, stale-if-error=60")], body=b"kept")
    gw = cached()
    gw.get("/gone")
    origin.close()
    time.sleep(2.2)
    r = gw.get("/gone")
    assert r.status == 200 and r.body == b"kept", r


# ---- invalidation ----

def test_unsafe_method_invalidates(cached, origin):
    origin.route("/inv1", headers=[("Cache-Control", "max-age=60")])
    origin.route("/inv2", headers=[("Cache-Control", "max-age=60")])
    origin.route("/inv3", headers=[("Cache-Control", "max-age=60")])
    gw = cached()
    for p in ("/inv1", "/inv2", "/inv3"):
        gw.get(p)
    status, headers, _ = gw.http("POST", "/inv1", body=b"x")
    assert headers["x-gateway-cache"] == "BYPASS"
    assert xc(gw.get("/inv1")) == "MISS"
    # Location and Content-Location on the same origin are invalidated too
    origin.route("/post", status=201, headers=[("Location", "/inv2"),
                                               ("Content-Location", "http://localhost/inv3")])
    gw.http("POST", "/post", body=b"y")
    assert xc(gw.get("/inv2")) == "MISS"
    assert xc(gw.get("/inv3")) == "MISS"


def test_failed_unsafe_method_does_not_invalidate(cached, origin):
    origin.route("/keep", headers=[("Cache-Control", "max-age=60")])
    gw = cached()
    gw.get("/keep")
    origin.route("/keep", status=500)
    gw.http("DELETE", "/keep")
    origin.route("/keep", headers=[("Cache-Control", "max-age=60")])
    assert xc(gw.get("/keep")) == "HIT"


# ---- integrity and limits ----

def test_aborted_response_never_stored(cached, origin):
    def fn(m, h, n):
        if n == 1:
            return 200, [("Cache-Control", "max-age=60")], "DIE"
        return 200, [("Cache-Control", "max-age=60")], b"complete"
    origin.route("/die", fn=fn)
    gw = cached()
    with pytest.raises(Exception):
        gw.get("/die", timeout=3)
    r = gw.get("/die")
    assert r.body == b"complete" and xc(r) == "MISS"
    assert xc(gw.get("/die")) == "HIT"


@pytest.mark.parametrize("prop", ["maximumCacheResponseSize", "maximumCachedResponseSize"])
def test_max_response_size(cached, origin, prop):
    origin.route("/big", headers=[("Cache-Control", "max-age=60")], body=b"x" * 100)
    origin.route("/small", headers=[("Cache-Control", "max-age=60")], body=b"x" * 10)
    gw = cached(**{prop: 50})
    for p in ("/big", "/small"):
        gw.get(p)
        gw.get(p)
    assert origin.count("/big") == 2
    assert origin.count("/small") == 1


def test_max_entries_evicts(cached, origin):
    for i in range(6):
        origin.route(f"/n{i}", headers=[("Cache-Control", "max-age=60")])
    gw = cached(maximumCacheEntries=2)
    for i in range(6):
        gw.get(f"/n{i}")
    hits = sum(1 for i in range(6) if xc(gw.get(f"/n{i}")) == "HIT")
    assert hits <= 2


def test_memory_bound_under_unique_urls(cached, origin):
    gw = cached(maximumCacheMemory=200000)
    for i in range(60):
        origin.route(f"/m{i}", headers=[("Cache-Control", "max-age=60")], body=b"m" * 10000)
    for i in range(60):
        assert gw.get(f"/m{i}").status == 200
    hits = sum(1 for i in range(60) if xc(gw.get(f"/m{i}")) == "HIT")
    assert 0 < hits <= 20


def test_collapsed_misses(cached, origin):
    origin.route("/slow", headers=[("Cache-Control", "max-age=60")], body=b"s" * 5000, delay=0.5)
    gw = cached()
    with concurrent.futures.ThreadPoolExecutor(max_workers=100) as ex:
        rs = list(ex.map(lambda i: gw.get("/slow", timeout=20), range(100)))
    assert all(r.status == 200 and r.body == b"s" * 5000 for r in rs)
    assert origin.count("/slow") == 1


def test_collapsed_misses_uncacheable_answer(cached, origin):
    origin.route("/slow-private", headers=[("Cache-Control", "private")], body=b"p", delay=0.3)
    gw = cached()
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as ex:
        rs = list(ex.map(lambda i: gw.get("/slow-private", timeout=20), range(10)))
    assert all(r.status == 200 and r.body == b"p" for r in rs)


def test_hit_while_evicted(cached, origin):
    origin.route("/large", headers=[("Cache-Control", "max-age=60")], body=b"L" * 3000000)
    gw = cached(maximumCacheEntries=1)
    gw.get("/large")
    with gw.connect(timeout=20) as c:
        c.send(b"GET /large HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        c.read_head()  # the body is still being sent while another entry evicts it
        origin.route("/other", headers=[("Cache-Control", "max-age=60")])
        gw.get("/other")
        data = c.read_until_close(timeout=20)
        assert data == b"L" * 3000000


def test_gateway_cache_header_absent_without_module(start_gateway, origin):
    origin.route("/nm", headers=[("Cache-Control", "max-age=60")])
    gw = start_gateway(make_config(workers=1, proxyTo=origin.url).replace(
        "global:\n", "global:\n  loadModules: [rproxy]\n", 1))
    r = gw.get("/nm")
    assert r.status == 200 and xc(r) is None
