"""
The response cache's targeted fields (RFC 9213: cacheTargetedHeader, e.g. CDN-Cache-Control) and
stale-while-revalidate served at once while a background request revalidates, in front of rproxy
with the scripted origin of test_cache.py; every test runs with one worker and with two.
"""
import subprocess
import time

import pytest

from cache_origin import cached, cs, http_date, origin, workers, xc  # noqa: F401 (fixtures)
from conftest import child_env, make_config


# ---- targeted fields (RFC 9213) ----

def test_targeted_field_replaces_cache_control(cached, origin):
    origin.route("/cdn1", headers=[("Cache-Control", "no-store"), ("CDN-Cache-Control", "max-age=60")], body=b"one")
    origin.route("/cdn2", headers=[("Cache-Control", "max-age=60"), ("CDN-Cache-Control", "no-store")], body=b"two")
    gw = cached(cacheTargetedHeader="CDN-Cache-Control")
    for p in ("/cdn1", "/cdn2"):
        r = gw.get(p)
        assert r.status == 200 and r.header("cdn-cache-control") is None, r  # used here, not passed on
    r = gw.get("/cdn1")
    assert r.body == b"one" and xc(r) == "HIT", r
    assert r.header("cache-control") == "no-store" and r.header("cdn-cache-control") is None
    r = gw.get("/cdn2")
    assert xc(r) == "MISS" and r.header("cache-control") == "max-age=60"
    assert origin.count("/cdn1") == 1 and origin.count("/cdn2") == 2


def test_targeted_field_ignores_expires_and_keeps_its_lifetime_after_304(cached, origin):
    now = time.time()
    origin.route("/cdn-exp", headers=[("Date", http_date(now)), ("Expires", http_date(now + 60)),
                                      ("CDN-Cache-Control", "must-revalidate")])

    def fn(m, h, n):
        hdrs = [("ETag", '"t"'), ("Cache-Control", "max-age=0"), ("CDN-Cache-Control", "max-age=1")]
        if h.get("if-none-match") == '"t"':
            return 304, [("ETag", '"t"'), ("CDN-Cache-Control", "max-age=60")], b""
        return 200, hdrs, b"t-body"
    origin.route("/cdn-304", fn=fn)
    gw = cached(cacheTargetedHeader="CDN-Cache-Control")
    gw.get("/cdn-exp")
    gw.get("/cdn-exp")
    assert origin.count("/cdn-exp") == 2  # the targeted field gives no lifetime; Expires does not count
    assert gw.get("/cdn-304").body == b"t-body"
    time.sleep(2.2)
    r = gw.get("/cdn-304")
    assert r.body == b"t-body" and "fwd-status=304" in cs(r) and r.header("cdn-cache-control") is None, r
    r = gw.get("/cdn-304")
    assert xc(r) == "HIT" and r.header("cache-control") == "max-age=0" and r.header("cdn-cache-control") is None
    assert origin.count("/cdn-304") == 2


@pytest.mark.parametrize("value", ["max-age=60,", "Max-Age=60", "max-age=60;;", 'private="x', "max-age=60 no-store", ""])
def test_invalid_or_empty_targeted_field_falls_back_to_cache_control(cached, origin, value):
    origin.route("/cdn-bad", headers=[("Cache-Control", "no-store"), ("CDN-Cache-Control", value)])
    gw = cached(cacheTargetedHeader="CDN-Cache-Control")
    gw.get("/cdn-bad")
    r = gw.get("/cdn-bad")
    assert xc(r) == "MISS" and origin.count("/cdn-bad") == 2, r


def test_targeted_structured_values(cached, origin):
    origin.route("/sf", headers=[("Cache-Control", "no-store"),
                                 ("CDN-Cache-Control", 'max-age=60;x=1, private="X-User", no-store=?0, a=(1 2), b=:AQ==:'),
                                 ("X-User", "alice")])
    gw = cached(cacheTargetedHeader="CDN-Cache-Control")
    assert gw.get("/sf").header("x-user") == "alice"
    r = gw.get("/sf")
    assert xc(r) == "HIT" and r.header("x-user") is None, r
    assert origin.count("/sf") == 1


def test_targeted_list_first_valid_field_wins(start_gateway, origin):
    origin.route("/two", headers=[("Cache-Control", "no-store"), ("Edge-Cache-Control", "max-age=60"),
                                  ("CDN-Cache-Control", "no-store")])
    origin.route("/second", headers=[("Cache-Control", "no-store"), ("Edge-Cache-Control", "bad value"),
                                     ("CDN-Cache-Control", "max-age=60")])
    text = make_config(workers=1, proxyTo=origin.url).replace(
        "global:\n", "global:\n  loadModules: [cache, rproxy]\n"
        "  cacheTargetedHeader: [Edge-Cache-Control, CDN-Cache-Control]\n", 1)
    gw = start_gateway(text)
    for p in ("/two", "/second"):
        gw.get(p)
        r = gw.get(p)
        assert xc(r) == "HIT", (p, r)
        assert r.header("edge-cache-control") is None and r.header("cdn-cache-control") is None
    assert origin.count("/two") == 1 and origin.count("/second") == 1


def test_targeted_field_not_configured_is_passed_through_and_ignored(cached, origin):
    origin.route("/cdn-off", headers=[("Cache-Control", "no-store"), ("CDN-Cache-Control", "max-age=60")])
    gw = cached()
    r = gw.get("/cdn-off")
    assert r.header("cdn-cache-control") == "max-age=60"
    gw.get("/cdn-off")
    assert origin.count("/cdn-off") == 2


@pytest.mark.parametrize("value, line, col, why", [
    ('"Cache-Control"', 5, 24, "Cache-Control is what a targeted field replaces"),
    ('"bad name"', 5, 24, "'bad name' is not a header field name"),
    ('[CDN-Cache-Control, "a:b"]', 5, 44, "'a:b' is not a header field name"),
])
def test_targeted_header_config_errors(gateway_bin, tmp_path, value, line, col, why):
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(make_config(workers=1, port=8080).replace(
        "global:\n", "global:\n  loadModules: [cache]\n", 1) + f"  cacheTargetedHeader: {value}\n")
    p = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=15,
                       env=child_env())
    assert p.returncode == 1, p.stderr
    assert f"{cfg}:{line}:{col}: cacheTargetedHeader: {why}" in p.stderr, p.stderr


# ---- stale-while-revalidate: served at once, revalidated in the background ----

def wait_for(pred, timeout=6.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


def test_stale_while_revalidate_background_304(cached, origin):
    def fn(m, h, n):
        cc = ("Cache-Control", "max-age=1, stale-while-revalidate=30")
        if n > 1:
            time.sleep(1.0)  # a slow revalidation that no client waits for
        if h.get("if-none-match") == '"v1"':
            return 304, [("ETag", '"v1"'), ("Cache-Control", "max-age=60"), ("X-Version", str(n))], b""
        return 200, [("ETag", '"v1"'), cc, ("X-Version", str(n))], b"swr-body"
    origin.route("/swr", fn=fn)
    gw = cached()
    assert gw.get("/swr").header("x-version") == "1"
    time.sleep(2.2)
    t0 = time.monotonic()
    rs = [gw.get("/swr", headers={"If-None-Match": '"other"'}) for _ in range(5)]
    assert time.monotonic() - t0 < 0.9  # none of them waited for the 1 s revalidation
    for r in rs:
        assert r.status == 200 and r.body == b"swr-body" and r.header("x-version") == "1", r
        assert xc(r) == "HIT" and "ttl=-" in cs(r) and "detail=stale-while-revalidate" in cs(r), r
    fresh = wait_for(lambda: (lambda r: r if r.header("x-version") == "2" else None)(gw.get("/swr")))
    assert fresh and xc(fresh) == "HIT" and "ttl=-" not in cs(fresh) and "stale" not in cs(fresh), fresh
    assert origin.count("/swr") == 2  # one background request for all of them
    assert origin.seen["/swr"][1].get("if-none-match") == '"v1"'  # ours, not the client's


def test_stale_while_revalidate_background_new_content(cached, origin):
    origin.route("/swr-new", fn=lambda m, h, n: (
        200, [("Cache-Control", "max-age=3, stale-while-revalidate=30")], f"version {n}"))
    gw = cached()
    assert gw.get("/swr-new").body == b"version 1"
    # max-age=3: version 2 must stay fresh while it is polled for; with 1 s it went stale again on
    # a loaded machine (two workers under ASan) and a third background request was counted
    time.sleep(3.2)
    r = gw.get("/swr-new")
    assert r.body == b"version 1" and "stale-while-revalidate" in cs(r), r
    assert wait_for(lambda: gw.get("/swr-new").body == b"version 2")
    assert origin.count("/swr-new") == 2


def test_stale_beyond_its_window_is_revalidated_in_the_foreground(cached, origin):
    origin.route("/swr-late", fn=lambda m, h, n: (
        200, [("Cache-Control", "max-age=1, stale-while-revalidate=1")], f"version {n}"))
    gw = cached()
    gw.get("/swr-late")
    time.sleep(3.2)
    r = gw.get("/swr-late")
    assert r.body == b"version 2" and xc(r) == "MISS" and "fwd=stale" in cs(r), r


def test_stale_while_revalidate_not_with_no_cache_request(cached, origin):
    origin.route("/swr-nc", fn=lambda m, h, n: (
        200, [("Cache-Control", "max-age=1, stale-while-revalidate=30")], f"version {n}"))
    gw = cached()
    gw.get("/swr-nc")
    time.sleep(2.2)
    r = gw.get("/swr-nc", headers={"Cache-Control": "no-cache"})
    assert r.body == b"version 2" and xc(r) == "MISS", r


def test_stop_during_background_revalidation(cached, origin):
    def fn(m, h, n):
        if n > 1:
            time.sleep(3)  # still under way when the gateway stops
        return 200, [("Cache-Control", "max-age=1, stale-while-revalidate=30")], b"x"
    origin.route("/swr-stop", fn=fn)
    gw = cached()
    gw.get("/swr-stop")
    time.sleep(2.2)
    assert "stale-while-revalidate" in cs(gw.get("/swr-stop"))
    assert wait_for(lambda: origin.count("/swr-stop") == 2)
    gw.check_clean_exit()  # the background request is released with its worker: exit 0, nothing leaked
