"""
`gateway --explain -c FILE METHOD URL [--ip A] [--header H]...`: the normalised path, the host and
location with their place in the file, each policy stage's verdict (access lists for the address,
X-Forwarded-For from trusted proxies, rewrites, basic auth, redirects; rate limits decided at run
time), the handler that would answer; bad arguments give the usage and exit 2.
"""
import base64
import subprocess

import pytest

BCRYPT = ("b-secret", "$2y$05$6PJjFzbng98J23xBgUWKOeyq425OFF4NmCahcAYUs7R.oOxR2gpEO")

SITE = """\
global:
  port: 8080
  wwwroot: {www}
  loadModules: [rproxy]
  trustedProxies: ["10.0.0.0/8"]
  blocklist: ["192.0.2.0/24", "2001:db8:bad::/48"]
hosts:
  - domain: example.com
    rewriteMap:
      - regex: "^/old/(.*)"
        replacement: "/new/$1"
    locations:
      - path: /api
        proxyTo: http://127.0.0.1:3000
        proxyProtocolToBackend: v2
        rateLimit: {{requests: 10, per: 1s, zone: api}}
      - path: /admin
        users: [{{name: alice, pass: "{hash}"}}]
        nonStandardCodes:
          - scode: 302
            url: /admin/moved
            location: /elsewhere
          - scode: 401
            regex: "^/admin"
  - domain: secure.example
    allowlist: ["203.0.113.0/24"]
"""


@pytest.fixture
def site(tmp_path):
    www = tmp_path / "www"
    (www / "new").mkdir(parents=True)
    (www / "new" / "page.html").write_text("new page\n")
    (www / "hello.txt").write_text("hello\n")
    cfg = tmp_path / "site.yaml"
    cfg.write_text(SITE.format(www=www, hash=BCRYPT[1]))
    return cfg


def explain(gateway_bin, *args):
    return subprocess.run([str(gateway_bin), "--explain", *map(str, args)], capture_output=True, text=True,
                          timeout=30)


def lines(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_location_proxy_and_rate_limit(gateway_bin, site):
    out = lines(explain(gateway_bin, "-c", site, "GET", "http://Example.com/api/./v1/../items?x=1",
                        "--ip", "203.0.113.4"))
    assert "authority: example.com\n" in out
    assert f"host:      host example.com ({site}:8:5)" in out
    assert f"location:  host example.com location /api ({site}:13:9)" in out
    assert "path:      /api/items?x=1\n" in out
    assert "access-list: 203.0.113.4 is allowed" in out
    assert "rateLimit: 10 requests per 1s, key ip, zone api: decided at run time" in out
    assert "rproxy: proxies to http://127.0.0.1:3000 (the balancer picks at run time), PROXY protocol v2" in out
    assert "static: not reached" in out
    assert out.endswith("answer:    the backend's response (rproxy)\n")


@pytest.mark.parametrize("ip,xff,verdict", [
    ("192.0.2.7", None, "192.0.2.7 is blocked or not allowed; refused: 403"),
    ("2001:db8:bad::9", None, "2001:db8:bad::9 is blocked or not allowed; refused: 403"),
    ("2001:db8:600d::9", None, "2001:db8:600d::9 is allowed"),
    ("10.1.2.3", "192.0.2.9", "192.0.2.9 is blocked or not allowed; refused: 403"),  # trusted proxy
    ("198.51.100.1", "192.0.2.9", "198.51.100.1 is allowed"),  # XFF from an untrusted peer is ignored
])
def test_access_rules_for_the_client_address(gateway_bin, site, ip, xff, verdict):
    args = ["-c", site, "GET", "/hello.txt", "--ip", ip]
    if xff:
        args += ["--header", f"X-Forwarded-For: {xff}"]
    out = lines(explain(gateway_bin, *args))
    assert verdict in out, out
    assert ("answer:    403 (error page)" in out) == ("403" in verdict)


def test_host_header_allowlist_and_static_file(gateway_bin, site):
    out = lines(explain(gateway_bin, "-c", site, "GET", "/hello.txt", "--header", "Host: SECURE.example:8080",
                        "--ip", "203.0.113.9"))
    assert "host:      host secure.example (" in out
    assert "access-list: 203.0.113.9 is allowed" in out
    assert f"static: wwwroot {site.parent / 'www'} -> {site.parent / 'www'}/hello.txt (a file)" in out
    assert out.endswith("answer:    the static file\n")
    out = lines(explain(gateway_bin, "-c", site, "GET", "/hello.txt", "--header", "Host: secure.example"))
    assert "127.0.0.1 is blocked or not allowed; refused: 403" in out


def test_rewrite_then_static_file(gateway_bin, site):
    out = lines(explain(gateway_bin, "-c", site, "GET", "/old/p%61ge.html?q=2", "--header", "Host: example.com"))
    assert "path:      /old/page.html?q=2\n" in out
    assert "rewriteMap: /old/page.html -> /new/page.html?q=2\n" in out
    assert "/new/page.html (a file)" in out


@pytest.mark.parametrize("auth,verdict,answer", [
    (None, "no Authorization header; refused: 401", "401 (error page)"),
    (("alice", "wrong"), "credentials refused; refused: 401", "401 (error page)"),
    (("alice", BCRYPT[0]), "user alice accepted", "404 (no such file)"),
])
def test_basic_auth_rule(gateway_bin, site, auth, verdict, answer):
    args = ["-c", site, "GET", "http://example.com/admin/x"]
    if auth:
        args += ["--header", "Authorization: Basic " + base64.b64encode(":".join(auth).encode()).decode()]
    out = lines(explain(gateway_bin, *args))
    assert "nonStandardCodes: rule 2 (scode 401) applies: basic auth (Basic realm=\"gateway\"" in out
    assert verdict in out
    assert out.endswith(f"answer:    {answer}\n")


def test_redirect_rule_and_unreached_handlers(gateway_bin, site):
    out = lines(explain(gateway_bin, "-c", site, "GET", "http://example.com/admin/moved"))
    assert "nonStandardCodes: rule 1 (scode 302) applies: redirect to /elsewhere\n" in out
    assert "rproxy: not reached" in out and "static: not reached" in out
    assert out.endswith("answer:    302 redirect to /elsewhere (nonStandardCodes rule 1)\n")


def test_path_that_cannot_be_normalised(gateway_bin, site):
    out = lines(explain(gateway_bin, "-c", site, "GET", "/%zz"))
    assert "the path cannot be normalised" in out
    assert "answer:    400, before any handler" in out


def test_https_redirect_for_plain_http(gateway_bin, tmp_path):
    from tls_helpers import make_cert
    cert, key = make_cert(tmp_path / "certs", "localhost")
    cfg = tmp_path / "tls.yaml"
    cfg.write_text(f"global:\n  port: 8080\n  secure: true\n  sport: 8443\n  cert: {cert}\n  key: {key}\n")
    out = lines(explain(gateway_bin, "-c", cfg, "GET", "http://localhost/x"))
    assert "redirects: a plain-HTTP request: 301 to HTTPS" in out
    assert out.endswith("answer:    301 redirect to HTTPS\n")
    out = lines(explain(gateway_bin, "-c", cfg, "GET", "https://localhost/x"))
    assert "over TLS" in out and "HTTPS redirect (not for this request)" in out


@pytest.mark.parametrize("args", [
    [], ["-c"], ["GET", "/"], ["-c", "{cfg}", "GET"], ["-c", "{cfg}", "GET", "/", "extra"],
    ["-c", "{cfg}", "GET", "/", "--ip", "not-an-ip"], ["-c", "{cfg}", "GET", "/", "--header", "no-colon"],
    ["-c", "{cfg}", "GET", "/", "--bogus"],
])
def test_bad_arguments_print_usage_and_exit_2(gateway_bin, site, args):
    r = explain(gateway_bin, *[a.replace("{cfg}", str(site)) for a in args])
    assert r.returncode == 2, r
    assert "usage: gateway --explain -c FILE METHOD URL" in r.stderr
    assert r.stdout == ""


def test_bad_config_is_reported_with_its_location(gateway_bin, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("global:\n  port: 1\n  allowlist: [\"10.0.0.0/99\"]\n")
    r = explain(gateway_bin, "-c", cfg, "GET", "/")
    assert r.returncode == 1
    assert "bad.yaml:3:15: allowlist:" in r.stderr


def test_help_documents_explain(gateway_bin):
    r = subprocess.run([str(gateway_bin), "--help"], capture_output=True, text=True, timeout=30)
    assert "gateway --explain -c FILE METHOD URL [--ip A] [--header \"Name: value\"]..." in r.stdout
