"""Static file serving: bodies, types, validators, directories, methods, error pages."""
import email.utils
import subprocess
import time

import pytest

from conftest import FILE_1K, FILE_2M, INDEX_HTML, SUB_INDEX_HTML, RawConn, make_config


def curl(*args, timeout=10):
    out = subprocess.run(["curl", "-s", "--max-time", "5", *args], capture_output=True, timeout=timeout)
    return out.stdout.decode("latin-1")


def test_index_html(gateway):
    r = gateway.get("/")
    assert r.status_line == "HTTP/1.1 200 OK"
    assert r.body == INDEX_HTML
    assert r.header("content-type") == "text/html; charset=utf-8"
    assert r.header("content-length") == str(len(INDEX_HTML))
    assert r.header("server") == "gateway"
    assert email.utils.parsedate_to_datetime(r.header("date")) is not None
    assert r.header("date").endswith(" GMT")
    assert email.utils.parsedate_to_datetime(r.header("last-modified")) is not None


def test_explicit_index_file(gateway):
    r = gateway.get("/index.html")
    assert r.status == 200 and r.body == INDEX_HTML


def test_small_and_large_files_exact_bytes(gateway):
    status, headers, body = gateway.http("GET", "/file1k.bin")
    assert status == 200 and body == FILE_1K
    assert headers["Content-Length"] == "1024"
    status, headers, body = gateway.http("GET", "/big.bin", timeout=20)
    assert status == 200
    assert headers["Content-Length"] == str(len(FILE_2M))
    assert len(body) == len(FILE_2M) and body == FILE_2M


@pytest.mark.parametrize("path,ctype", [
    ("/index.html", "text/html; charset=utf-8"),
    ("/style.css", "text/css; charset=utf-8"),
    ("/data.json", "application/json"),
    ("/image.png", "image/png"),
    ("/hello.txt", "text/plain; charset=utf-8"),
    ("/noext", "application/octet-stream"),
    ("/big.bin", "application/octet-stream"),
])
def test_content_type_by_extension(gateway, path, ctype):
    with RawConn(gateway.port) as c:
        c.send(f"HEAD {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        r = c.read_response("HEAD")
    assert r.status == 200
    assert r.header("content-type") == ctype


def test_strong_etag_and_if_none_match(gateway):
    r = gateway.get("/hello.txt")
    etag = r.header("etag")
    assert etag and etag.startswith('"') and etag.endswith('"'), etag
    r2 = gateway.get("/hello.txt", headers={"If-None-Match": etag})
    assert r2.status_line == "HTTP/1.1 304 Not Modified"
    assert r2.body == b""
    assert r2.header("etag") == etag
    # a list containing the tag, and the weak form (If-None-Match uses weak comparison)
    assert gateway.get("/hello.txt", headers={"If-None-Match": f'"nope", {etag}'}).status == 304
    assert gateway.get("/hello.txt", headers={"If-None-Match": f"W/{etag}"}).status == 304
    assert gateway.get("/hello.txt", headers={"If-None-Match": "*"}).status == 304
    other = gateway.get("/hello.txt", headers={"If-None-Match": '"something-else"'})
    assert other.status == 200 and other.body == b"hello world\n"


def test_304_has_no_body_on_keepalive(gateway):
    etag = gateway.get("/hello.txt").header("etag")
    with RawConn(gateway.port) as c:
        c.send(f"GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n".encode()
               + b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r1 = c.read_response()
        r2 = c.read_response()
    assert r1.status == 304
    assert r2.status == 200 and r2.body == b"hello world\n"


def poll_until_changed(gateway, path, old_body, new_body, headers=None, timeout=3.0):
    """Requests `path` until the new content is served (a server may cache a file for a short
    while); every response on the way must be one of the two versions, whole."""
    deadline = time.monotonic() + timeout
    while True:
        r = gateway.get(path, headers=headers)
        if r.status == 200:
            assert r.header("content-length") == str(len(r.body))
        if r.status == 200 and r.body == new_body:
            return r
        assert r.status in (200, 304) and r.body in (old_body, b""), r
        assert time.monotonic() < deadline, "the changed file was not served within 3 s"
        time.sleep(0.1)


def test_etag_changes_when_file_changes(gateway, wwwroot):
    e1 = gateway.get("/hello.txt").header("etag")
    (wwwroot / "hello.txt").write_bytes(b"changed content, longer\n")
    r = poll_until_changed(gateway, "/hello.txt", b"hello world\n", b"changed content, longer\n",
                           headers={"If-None-Match": e1})
    assert r.header("etag") != e1


def test_replaced_and_deleted_files(gateway, wwwroot):
    assert gateway.get("/file1k.bin").body == FILE_1K
    tmp = wwwroot / "new.tmp"
    tmp.write_bytes(b"replacement\n")
    tmp.rename(wwwroot / "file1k.bin")
    poll_until_changed(gateway, "/file1k.bin", FILE_1K, b"replacement\n")
    (wwwroot / "file1k.bin").unlink()
    deadline = time.monotonic() + 3
    while gateway.get("/file1k.bin").status != 404:
        assert time.monotonic() < deadline, "a deleted file is still served after 3 s"
        time.sleep(0.1)


def test_large_file_shrinking_never_gives_a_short_body(gateway, wwwroot):
    """A response is either complete (body length = Content-Length) or the connection is cut."""
    status, _, body = gateway.http("GET", "/big.bin", timeout=10)
    assert status == 200 and body == FILE_2M
    (wwwroot / "big.bin").write_bytes(FILE_2M[:100000])
    deadline = time.monotonic() + 3
    while True:
        with RawConn(gateway.port, timeout=10) as c:
            c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            try:
                r = c.read_response()
            except EOFError:
                r = None  # cut short: acceptable, the client sees an incomplete message
        if r is not None:
            assert r.body in (FILE_2M, FILE_2M[:100000]), len(r.body)
            if r.body == FILE_2M[:100000]:
                break
        assert time.monotonic() < deadline, "the shrunk file was not served within 3 s"
        time.sleep(0.1)
    gateway.assert_alive()


def test_if_modified_since_exact_match(gateway):
    lm = gateway.get("/hello.txt").header("last-modified")
    r = gateway.get("/hello.txt", headers={"If-Modified-Since": lm})
    assert r.status == 304 and r.body == b""
    r = gateway.get("/hello.txt", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert r.status == 200 and r.body == b"hello world\n"


def test_if_none_match_takes_precedence_over_if_modified_since(gateway):
    lm = gateway.get("/hello.txt").header("last-modified")
    r = gateway.get("/hello.txt", headers={"If-None-Match": '"other"', "If-Modified-Since": lm})
    assert r.status == 200


def test_etag_disabled(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, enableETag=False))
    r = gw.get("/hello.txt")
    assert r.status == 200
    assert r.header("etag") is None
    assert r.header("last-modified") is not None


def test_directory_redirect_keeps_query(gateway):
    r = gateway.get("/sub")
    assert r.status_line == "HTTP/1.1 301 Moved Permanently"
    assert r.header("location") == "/sub/"
    r = gateway.get("/sub?a=1&b=2")
    assert r.status == 301
    assert r.header("location") == "/sub/?a=1&b=2"


def test_directory_index(gateway):
    r = gateway.get("/sub/")
    assert r.status == 200 and r.body == SUB_INDEX_HTML
    assert r.header("content-type") == "text/html; charset=utf-8"
    r = gateway.get("/htmdir/")
    assert r.status == 200 and r.body == b"<p>htm index</p>\n"
    assert r.header("content-type") == "text/html; charset=utf-8"


def test_directory_without_index_is_forbidden(gateway):
    r = gateway.get("/noindex/")
    assert r.status_line == "HTTP/1.1 403 Forbidden"
    assert b"<title>403 Forbidden</title>" in r.body
    assert gateway.get("/noindex/file.txt").body == b"in noindex\n"


def test_trailing_slash_redirect_disabled(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, disableTrailingSlashRedirects=True))
    r = gw.get("/sub")
    assert r.status == 200 and r.body == SUB_INDEX_HTML


def test_missing_file_error_page(gateway):
    r = gateway.get("/does-not-exist.html")
    assert r.status_line == "HTTP/1.1 404 Not Found"
    assert r.header("content-type").startswith("text/html")
    assert b"<title>404 Not Found</title>" in r.body
    assert b"<h1>404 Not Found</h1>" in r.body
    assert r.header("content-length") == str(len(r.body))
    assert r.header("server") == "gateway"


def test_options_allow(gateway):
    with RawConn(gateway.port) as c:
        c.send(b"OPTIONS /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status_line == "HTTP/1.1 204 No Content"
        assert r.header("allow") == "GET, POST, HEAD, OPTIONS"
        assert r.body == b""
        # the connection stays usable
        c.send(b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        assert r.status == 204
        assert r.header("allow") == "GET, POST, HEAD, OPTIONS"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE", "PROPFIND"])
def test_other_methods_405(gateway, method):
    with RawConn(gateway.port) as c:
        c.send(f"{method} /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
        r = c.read_response()
        assert r.status_line == "HTTP/1.1 405 Method Not Allowed"
        assert r.header("allow") == "GET, POST, HEAD, OPTIONS"
        assert b"<title>405 Method Not Allowed</title>" in r.body
        # a fully-received (empty) body: the connection is kept
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert c.read_response().body == b"hello world\n"


def test_post_with_small_body_405_keeps_connection(gateway):
    with RawConn(gateway.port) as c:
        c.send(b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello=world"
               b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert c.read_response().status == 405
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello world\n"


def test_connect_501(gateway):
    with RawConn(gateway.port) as c:
        c.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        r = c.read_response()
    assert r.status_line == "HTTP/1.1 501 Not Implemented"


@pytest.mark.parametrize("path", ["/%zz", "/a%2", "/a%", "/%C0", "/%c0%af", "/%C1%81", "/%FE", "/%ff"])
def test_bad_percent_escapes_400(gateway, path):
    r = gateway.get(path)
    assert r.status_line == "HTTP/1.1 400 Bad Request", path
    assert b"<title>400 Bad Request</title>" in r.body


@pytest.mark.parametrize("path", ["/hello%2Etxt", "/%68ello.txt", "/hello.txt?x=1&y=%zz", "/./hello.txt",
                                  "/sub/../hello.txt", "//hello.txt", "/sub/%2e%2e/hello.txt"])
def test_equivalent_spellings(gateway, path):
    r = gateway.get(path)
    assert r.status == 200, path
    assert r.body == b"hello world\n"


def test_encoded_names(gateway, wwwroot):
    (wwwroot / "a file.txt").write_bytes(b"spaced\n")
    (wwwroot / "caf\u00e9.txt").write_bytes(b"cafe\n")
    assert gateway.get("/a%20file.txt").body == b"spaced\n"
    assert gateway.get("/caf%C3%A9.txt").body == b"cafe\n"


def test_absolute_form_target(gateway):
    with RawConn(gateway.port) as c:
        c.send(b"GET http://localhost/hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        r = c.read_response()
    assert r.status == 200 and r.body == b"hello world\n"


def test_symlink_inside_root(gateway):
    r = gateway.get("/link-inside.txt")
    assert r.status == 200 and r.body == b"hello world\n"


def test_symlink_outside_root(gateway):
    for path in ("/link-outside", "/link-outside-dir/passwd", "/link-outside-dir/"):
        r = gateway.get(path)
        assert r.status == 404, (path, r)
        assert b"root:" not in r.body


def test_missing_wwwroot_404(start_gateway, tmp_path):
    gw = start_gateway(make_config(tmp_path / "no-such-dir"))
    r = gw.get("/")
    assert r.status == 404


def test_curl_status_codes(gateway):
    base = f"http://127.0.0.1:{gateway.port}"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", base + "/") == "200"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", base + "/nope") == "404"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", base + "/sub") == "301"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", base + "/") == "405"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", "--data", "a=b", base + "/") == "405"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", "-L", base + "/sub") == "200"


def test_curl_body_and_head(gateway, tmp_path):
    base = f"http://127.0.0.1:{gateway.port}"
    out = tmp_path / "big.out"
    assert curl("-o", str(out), "-w", "%{http_code} %{size_download}", base + "/big.bin") == f"200 {len(FILE_2M)}"
    assert out.read_bytes() == FILE_2M
    head = curl("-I", base + "/file1k.bin")
    assert head.startswith("HTTP/1.1 200 OK\r\n")
    assert "Content-Length: 1024\r\n" in head


def test_curl_keepalive_reuses_connection(gateway):
    base = f"http://127.0.0.1:{gateway.port}"
    out = curl("-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects}\n",
               base + "/hello.txt", base + "/file1k.bin", base + "/")
    assert out.split() == ["1", "0", "0"]
