"""Response header rules: customHeaders (Ferron: only when absent, {path}), our own
set/add/remove per host and location, and HSTS only on TLS connections."""
from conftest import make_config

HOSTS = """  - domain: site.test
    customHeaders:
      X-Frame-Options: DENY
      Content-Type: "text/x-never"
      X-Path: "p={path}"
    setResponseHeaders:
      Cache-Control: "public, max-age=60"
    addResponseHeaders:
      Link: "</style.css>; rel=preload"
    removeResponseHeaders: [Last-Modified]
    hstsMaxAge: 31536000
    locations:
      - path: /sub
        setResponseHeaders:
          Cache-Control: "no-store"
        addResponseHeaders:
          Link: "</sub.css>; rel=preload"
"""


def test_custom_headers(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, hosts=HOSTS))
    r = gw.get("/hello.txt", host="site.test")
    assert r.header("x-frame-options") == "DENY"
    assert r.header("content-type") == "text/plain; charset=utf-8"  # present: not replaced
    assert r.header("x-path") == "p=/hello.txt"
    assert r.header("cache-control") == "public, max-age=60"
    assert r.header_all("link") == ["</style.css>; rel=preload"]
    assert r.header("last-modified") is None
    assert r.header("strict-transport-security") is None  # plain HTTP: no HSTS


def test_location_rules_merge(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, hosts=HOSTS))
    r = gw.get("/sub/page.txt", host="site.test")
    assert r.header("cache-control") == "no-store"
    assert r.header_all("link") == ["</sub.css>; rel=preload"]  # maps key-merge: the location's value wins
    assert r.header("x-path") == "p=/sub/page.txt"


def test_error_responses_get_them_too(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, hosts=HOSTS))
    r = gw.get("/nope", host="site.test")
    assert r.status == 404 and r.header("x-frame-options") == "DENY"
    assert r.header("content-type").startswith("text/html")


def test_other_hosts_untouched(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, hosts=HOSTS))
    r = gw.get("/hello.txt", host="other.test")
    assert r.header("x-frame-options") is None and r.header("last-modified") is not None


def test_bad_header_names_skipped(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, hosts='  - domain: "*"\n    customHeaders:\n      "Bad Name": x\n'
                                                  '      X-Ok: "1"\n      X-Split: "a\\r\\nInjected: 1"\n'))
    r = gw.get("/hello.txt")
    assert r.header("x-ok") == "1" and r.header("injected") is None and r.header("bad name") is None


def test_server_header_on_both_protocols(start_gateway, wwwroot):
    import subprocess
    from conftest import make_config
    for value, expect in (("edge/1", "edge/1"), ("", None)):
        gw = start_gateway(make_config(wwwroot, serverHeader=value))
        assert gw.get("/").header("server") == expect
        out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "--http2-prior-knowledge",
                              f"http://127.0.0.1:{gw.port}/"], capture_output=True, text=True, timeout=20)
        lines = [l for l in out.stdout.lower().splitlines() if l.startswith("server:")]
        assert lines == ([f"server: {expect}"] if expect else [])
