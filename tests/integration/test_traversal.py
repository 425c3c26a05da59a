"""Path traversal: no spelling of a path may leave the wwwroot. `..` is clamped at the root (so a
traversal to /etc/passwd becomes <wwwroot>/etc/passwd, a 404); forbidden escapes are 400."""
import pytest

from conftest import RawConn, build_demo_root, make_config

SECRET = b"TOP-SECRET-OUTSIDE-THE-ROOT\n"


@pytest.fixture
def site(start_gateway, tmp_path):
    """wwwroot at <tmp>/www with <tmp>/secret.txt next to it (outside)."""
    root = build_demo_root(tmp_path / "www")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (root / "etc").mkdir()  # <root>/etc exists but has no passwd
    (root / "link-to-secret").symlink_to(tmp_path / "secret.txt")
    (root / "rel-link-to-secret").symlink_to("../secret.txt")
    (root / "sub" / "up-link").symlink_to("..")  # a directory link that stays inside
    return start_gateway(make_config(root))


def fetch(gw, target):
    with RawConn(gw.port) as c:
        c.send(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        return c.read_response()


def assert_nothing_leaked(r):
    assert SECRET not in r.body
    assert b"root:" not in r.body


NOT_FOUND = [
    b"/../secret.txt",
    b"/../../../../../../secret.txt",
    b"/../../../../../../etc/passwd",
    b"/sub/../../secret.txt",
    b"/sub/../../../etc/passwd",
    b"/./../secret.txt",
    b"/%2e%2e/secret.txt",
    b"/%2E%2E/%2E%2E/etc/passwd",
    b"/.%2e/secret.txt",
    b"/%2e./secret.txt",
    b"/%2e%2e%2fsecret.txt",
    b"/%2e%2e%2F%2e%2e%2Fetc%2Fpasswd",
    b"/sub%2f..%2f..%2fsecret.txt",
    b"/..%2fsecret.txt",
    b"/..\\secret.txt",
    b"/sub\\..\\..\\secret.txt",
    b"/..%5csecret.txt",
    b"/..%5c..%5cetc%5cpasswd",
    b"/%252e%252e/secret.txt",
    b"/...../secret.txt",
    b"/..../secret.txt",
    b"//etc/passwd",
    b"/%2fetc%2fpasswd",
    b"///../secret.txt",
    b"/%2e%00%2e/secret.txt",
    b"/..%00/secret.txt",
    b"/hello.txt%00.png",
    b"/etc/passwd%00",
    b"http://localhost/../secret.txt",
    b"http://localhost/%2e%2e/%2e%2e/etc/passwd",
    b"/link-to-secret",
    b"/rel-link-to-secret",
    b"/link-outside",
    b"/link-outside-dir/passwd",
]


@pytest.mark.parametrize("target", NOT_FOUND, ids=[t.decode("latin-1") for t in NOT_FOUND])
def test_traversal_is_404(site, target):
    r = fetch(site, target)
    assert_nothing_leaked(r)
    assert r.status == 404, (target, r)


BAD_REQUEST = [
    b"/%c0%ae%c0%ae/secret.txt",   # overlong UTF-8 dots
    b"/%c0%af..%c0%afsecret.txt",  # overlong UTF-8 slash
    b"/%C1%9C..%C1%9Csecret.txt",
    b"/..%c0%2fsecret.txt",
    b"/%e0%80%ae%2e/secret.txt%",  # truncated escape at the end
    b"/%2",
    b"/%g0/secret.txt",
    b"\\..\\..\\etc\\passwd",  # not origin-form: refused by the parser
]


@pytest.mark.parametrize("target", BAD_REQUEST, ids=[t.decode("latin-1") for t in BAD_REQUEST])
def test_forbidden_escapes_are_400(site, target):
    r = fetch(site, target)
    assert_nothing_leaked(r)
    assert r.status == 400, (target, r)


def test_raw_nul_in_target_is_400(site):
    r = fetch(site, b"/hello.txt\x00.png")
    assert r.status == 400


def test_nul_escape_is_removed(site):
    """%00 bytes are dropped by the path sanitiser (Ferron behaviour), so they cannot cut a name short."""
    r = fetch(site, b"/hello%00.txt")
    assert r.status == 200 and r.body == b"hello world\n"


@pytest.mark.parametrize("target", [b"/sub/../hello.txt", b"/sub/%2e%2e/hello.txt", b"/sub\\..\\hello.txt",
                                    b"/x/y/z/../../../hello.txt", b"/link-inside.txt", b"/sub/up-link/hello.txt",
                                    b"/../hello.txt", b"/%2e%2e/%2e%2e/hello.txt"])
def test_dot_segments_inside_root_resolve(site, target):
    r = fetch(site, target)
    assert r.status == 200, (target, r)
    assert r.body == b"hello world\n"


def test_traversal_from_a_location_root(start_gateway, tmp_path):
    base = tmp_path / "site"
    (base / "docs" / "docs").mkdir(parents=True)
    (base / "docs" / "docs" / "page.txt").write_bytes(b"docs page\n")
    (base / "docs" / "private.txt").write_bytes(b"private to the docs root parent\n")
    (base / "main").mkdir()
    (base / "main" / "index.html").write_bytes(b"main\n")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    hosts = f"""\
  - domain: localhost
    locations:
      - path: /docs
        wwwroot: "{base / 'docs'}"
"""
    gw = start_gateway(make_config(base / "main", hosts=hosts))
    assert fetch(gw, b"/docs/page.txt").body == b"docs page\n"
    for t in (b"/docs/../private.txt", b"/docs/%2e%2e/private.txt", b"/docs/..%2f..%2fsecret.txt",
              b"/docs/../../secret.txt", b"/docs\\..\\..\\secret.txt"):
        r = fetch(gw, t)
        assert_nothing_leaked(r)
        assert b"private to the docs root parent" not in r.body
        assert r.status == 404, (t, r)


def test_curl_path_as_is(site):
    import subprocess
    url = f"http://127.0.0.1:{site.port}/../../../../etc/passwd"
    out = subprocess.run(["curl", "-s", "--path-as-is", "--max-time", "5", "-w", "\n%{http_code}", url],
                         capture_output=True, timeout=10).stdout
    assert out.endswith(b"\n404")
    assert b"root:" not in out
