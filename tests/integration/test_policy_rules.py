"""nonStandardCodes status rules and redirects, rewriteMap, and rateLimit (429 + Retry-After)."""
import time

import pytest

from conftest import make_config


@pytest.fixture
def rules_gw(start_gateway, wwwroot, tmp_path):
    errlog = tmp_path / "error.log"
    text = make_config(wwwroot, errorLogFilePath=str(errlog)) + """\
  enableRewriteLogging: true
  nonStandardCodes:
    - {scode: 301, url: /moved, location: "https://example.org/new"}
    - {scode: 302, regex: "^/old/(.*)$", location: "/new/$1"}
    - {scode: 307, url: /temp, location: /hello.txt}
    - {scode: 308, regex: "^/perm(\\\\?.*)?$", location: "/hello.txt$1"}
    - {scode: 403, url: /forbidden}
    - {scode: 410, regex: "^/gone/"}
    - {scode: 403, url: /only-for-some, users: ["203.0.113.0/24"]}
  rewriteMap:
    - {regex: "^/blog/([0-9]+)$", replacement: "/sub/page.txt?id=$1"}
    - {regex: "^/pretty/(.*)$", replacement: "/$1", last: true}
    - {regex: "^/hello\\\\.txt$", replacement: "/never.txt"}
    - {regex: "^/app/(.*)$", replacement: "/index.html", isNotFile: true, isNotDirectory: true}
    - {regex: "^/moved-by-rewrite$", replacement: /forbidden}
"""
    gw = start_gateway(text)
    gw.errlog = errlog
    return gw


@pytest.mark.parametrize("path,status,location", [
    ("/moved", 301, "https://example.org/new"),
    ("/old/a/b.txt", 302, "/new/a/b.txt"),
    ("/temp", 307, "/hello.txt"),
    ("/perm?x=1", 308, "/hello.txt?x=1"),
])
def test_redirects(rules_gw, path, status, location):
    r = rules_gw.get(path)
    assert r.status == status
    assert r.header("location") == location


@pytest.mark.parametrize("path,status", [("/forbidden", 403), ("/gone/x", 410), ("/only-for-some", 404)])
def test_status_rules(rules_gw, path, status):
    r = rules_gw.get(path)
    assert r.status == status
    if status != 404:
        assert f"{status} ".encode() in r.body


def test_rewrites(rules_gw):
    r = rules_gw.get("/blog/42")
    assert r.status == 200 and r.body == b"sub page\n"
    r = rules_gw.get("/pretty/hello.txt")  # `last`: the /hello.txt rule after it does not run
    assert r.status == 200 and r.body == b"hello world\n"
    assert rules_gw.get("/hello.txt").status == 404  # rewritten to /never.txt
    # isNotFile / isNotDirectory: only missing paths go to the front controller
    assert rules_gw.get("/app/route/x").body.startswith(b"<!DOCTYPE html>")
    # a rewrite runs before nonStandardCodes
    assert rules_gw.get("/moved-by-rewrite").status == 403
    # the log names the rewrite
    rules_gw.stop()
    assert "rewrite /blog/42 -> /sub/page.txt?id=42" in rules_gw.errlog.read_text()


def test_rewrite_is_not_file(start_gateway, wwwroot):
    (wwwroot / "app").mkdir()
    (wwwroot / "app" / "real.txt").write_bytes(b"real\n")
    gw = start_gateway(make_config(wwwroot) + """\
  rewriteMap:
    - {regex: "^/app/.*", replacement: "/hello.txt", isNotFile: true}
""")
    assert gw.get("/app/real.txt").body == b"real\n"
    assert gw.get("/app/virtual").body == b"hello world\n"
    assert gw.get("/app/").body == b"hello world\n"  # a directory is not a file


def test_rewrite_to_traversal_is_normalised(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot) + """\
  rewriteMap:
    - {regex: "^/x/(.*)$", replacement: "/../../$1"}
""")
    assert gw.get("/x/hello.txt").body == b"hello world\n"  # clamped at the root
    assert gw.get("/x/etc/passwd").status == 404


@pytest.mark.one_worker  # counts per-worker state
def test_rate_limit(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot) + """\
  trustedProxies: ["127.0.0.1"]
  rateLimit: {requests: 2, per: 10s, burst: 3}
hosts:
  - domain: keyed.test
    rateLimit: {key: "header:X-Api-Key", zone: api}
""")
    codes = [gw.get("/hello.txt", headers={"X-Forwarded-For": "192.0.2.1"}).status for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    r = gw.get("/hello.txt", headers={"X-Forwarded-For": "192.0.2.1"})
    assert r.status == 429
    assert 1 <= int(r.header("retry-after")) <= 5
    assert b"429 Too Many Requests" in r.body
    # another client has its own bucket
    assert gw.get("/hello.txt", headers={"X-Forwarded-For": "192.0.2.2"}).status == 200
    # keyed by header: one key's budget is shared across client addresses
    k = {"X-Api-Key": "k1"}
    codes = [gw.get("/hello.txt", host="keyed.test", headers=dict(k, **{"X-Forwarded-For": f"192.0.2.{10 + i}"})).status
             for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert gw.get("/hello.txt", host="keyed.test", headers={"X-Api-Key": "k2"}).status == 200


@pytest.mark.one_worker  # counts per-worker state (a new connection may meet the other worker)
def test_rate_limit_refills(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot) + "  rateLimit: {requests: 5, per: 1s, burst: 1}\n")
    assert gw.get("/hello.txt").status == 200
    assert gw.get("/hello.txt").status == 429
    time.sleep(0.45)
    assert gw.get("/hello.txt").status == 200


def test_rate_limit_zero_is_off(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot) + "  rateLimit: {requests: 0}\n")
    assert all(gw.get("/hello.txt").status == 200 for _ in range(5))
