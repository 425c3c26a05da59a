"""FastCGI (fcgi) against a real PHP-FPM started for each test; SCGI against a real SCGI server."""
import hashlib
import json
import os
import time

import pytest

from cgi_backends import PhpFpm, ScgiServer, find_php_fpm
from conftest import PORT_PLACEHOLDER

pytestmark = pytest.mark.skipif(not find_php_fpm(), reason="php-fpm not installed")

PHP = {
    "env.php": "<?php header('Content-Type: application/json'); $keys = ['SCRIPT_FILENAME','SCRIPT_NAME',"
               "'PATH_INFO','QUERY_STRING','REQUEST_URI','REQUEST_METHOD','HTTPS','HTTP_X_TEST','SERVER_PROTOCOL',"
               "'GATEWAY_INTERFACE','REMOTE_ADDR','DOCUMENT_ROOT','CONTENT_LENGTH','CONTENT_TYPE','HTTP_PROXY',"
               "'HTTP_COOKIE','SERVER_PORT','SERVER_ADDR']; $o = []; foreach ($keys as $k) { $o[$k] = $_SERVER[$k] ?? null; }"
               " echo json_encode($o);",
    "hi.php": "<?php echo 'hi';",
    "upload.php": "<?php header('Content-Type: application/json'); $f = $_FILES['file'] ?? null;"
                  " echo json_encode(['name' => $f['name'] ?? null, 'size' => $f['size'] ?? null, 'error' => $f['error'] ?? null,"
                  " 'md5' => $f ? md5_file($f['tmp_name']) : null, 'field' => $_POST['field'] ?? null]);",
    "post.php": "<?php $b = file_get_contents('php://input'); echo strlen($b), ' ', md5($b);",
    "big.php": "<?php $n = (int)$_GET['n']; $chunk = str_repeat('0123456789abcdef', 4096);"
               " for ($i = 0; $i < $n / 65536; $i++) echo $chunk;",
    "status.php": "<?php header('Status: 404 Not Found'); header('X-Custom: yes'); echo 'missing';",
    "created.php": "<?php http_response_code(201); header('Location: /new/thing'); echo 'made';",
    "redirect.php": "<?php header('Location: /elsewhere'); echo 'moved';",
    "dies.php": "<?php echo 'before'; undefined_function_here();",
    "warn.php": "<?php error_log('note from the application'); echo 'ok';",
    "sub/index.php": "<?php echo 'sub index';",
}


@pytest.fixture
def fpm(tmp_path):
    f = PhpFpm(tmp_path / "fpm")
    yield f
    f.stop()


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    for name, code in PHP.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(code)
    (root / "plain.txt").write_text("static file\n")
    return root


def fcgi_config(root, url, extra=""):
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [fcgi]\n"
            f"  wwwroot: \"{root}\"\n  fcgiScriptExtensions: [\".php\"]\n  fcgiTo: \"{url}\"\n{extra}")


def test_cgi_variables(start_gateway, fpm, site):
    gw = start_gateway(fcgi_config(site, fpm.url))
    r = gw.get("/env.php/extra/path?a=1&b=two", headers={"X-Test": "hello", "Proxy": "http://evil",
                                                         "Cookie": "a=1"})
    assert r.status == 200, r
    v = json.loads(r.body)
    assert v["SCRIPT_FILENAME"] == f"{site}/env.php"
    assert v["SCRIPT_NAME"] == "/env.php"
    assert v["PATH_INFO"] == "/extra/path"
    assert v["QUERY_STRING"] == "a=1&b=two"
    assert v["REQUEST_URI"] == "/env.php/extra/path?a=1&b=two"
    assert v["REQUEST_METHOD"] == "GET"
    assert v["HTTPS"] is None  # plain HTTP
    assert v["HTTP_X_TEST"] == "hello"
    assert v["HTTP_PROXY"] is None  # httpoxy
    assert v["HTTP_COOKIE"] == "a=1"
    assert v["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert v["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert v["REMOTE_ADDR"] == "127.0.0.1"
    assert v["DOCUMENT_ROOT"] == str(site)
    assert v["CONTENT_LENGTH"] == "0"
    assert v["SERVER_PORT"] == str(gw.port)
    assert v["SERVER_ADDR"] == "127.0.0.1"  # the connection's own address, not the listener's [::]


def test_static_files_still_served_and_index_php(start_gateway, fpm, site):
    gw = start_gateway(fcgi_config(site, fpm.url))
    assert gw.get("/plain.txt").body == b"static file\n"
    r = gw.get("/sub/")
    assert r.status == 200 and r.body == b"sub index"
    assert gw.get("/nothing.php").status == 404


def test_keepalive_requests_through_pooled_connection(start_gateway, fpm, site):
    gw = start_gateway(fcgi_config(site, fpm.url))
    with gw.connect() as c:
        for _ in range(30):
            c.send(b"GET /hi.php HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.body == b"hi"


def test_post_body(start_gateway, fpm, site):
    gw = start_gateway(fcgi_config(site, fpm.url))
    body = os.urandom(300000)
    status, _, data = gw.http("POST", "/post.php", body=body, headers={"Content-Type": "application/octet-stream"})
    assert status == 200
    assert data.decode() == f"{len(body)} {hashlib.md5(body).hexdigest()}"


def test_multipart_upload_10mib(start_gateway, fpm, site):
    gw = start_gateway(fcgi_config(site, fpm.url, "  maxRequestBodyBytes: 33554432\n"))
    payload = os.urandom(10 * 1024 * 1024)
    boundary = "gatewayboundary7"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"up.bin\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    status, _, data = gw.http("POST", "/upload.php", body=body, timeout=60,
                              headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, data
    v = json.loads(data)
    assert v["error"] == 0 and v["size"] == len(payload) and v["name"] == "up.bin" and v["field"] == "value"
    assert v["md5"] == hashlib.md5(payload).hexdigest()


def test_large_response(start_gateway, fpm, site):
    gw = start_gateway(fcgi_config(site, fpm.url))
    n = 8 * 1024 * 1024
    status, _, data = gw.http("GET", "/big.php?n=%d" % n, timeout=60)
    assert status == 200 and len(data) == n
    assert data == b"0123456789abcdef" * (n // 16)


def test_status_and_location(start_gateway, fpm, site):
    gw = start_gateway(fcgi_config(site, fpm.url))
    r = gw.get("/status.php")
    assert r.status == 404 and r.body == b"missing" and r.header("x-custom") == "yes"
    assert r.header("status") is None
    r = gw.get("/redirect.php")
    assert r.status == 302 and r.header("location") == "/elsewhere"
    r = gw.get("/created.php")
    assert r.status == 201 and r.header("location") == "/new/thing"


def test_script_that_dies_and_stderr_logged(start_gateway, fpm, site, tmp_path):
    log = tmp_path / "error.log"
    gw = start_gateway(fcgi_config(site, fpm.url, f"  errorLogFilePath: \"{log}\"\n"))
    r = gw.get("/dies.php")
    assert r.status == 500  # PHP's own answer to a fatal error
    r = gw.get("/warn.php")
    assert r.status == 200 and r.body == b"ok"
    time.sleep(0.3)
    text = log.read_text() if log.exists() else gw.stderr()
    assert "note from the application" in text
    assert gw.get("/hi.php").body == b"hi"


def test_fpm_stopped_is_503(start_gateway, fpm, site):
    gw = start_gateway(fcgi_config(site, fpm.url))
    assert gw.get("/hi.php").body == b"hi"
    fpm.stop()
    time.sleep(0.2)
    assert gw.get("/hi.php").status in (502, 503)  # a pooled connection may break first
    assert gw.get("/hi.php").status == 503


def test_fcgi_path_mode(start_gateway, fpm, site):
    gw = start_gateway(fcgi_config(site, fpm.url).replace("  fcgiScriptExtensions: [\".php\"]\n", "")
                       + "  fcgiPath: \"/env.php\"\n")
    r = gw.get("/env.php/more?q=1")
    assert r.status == 200
    v = json.loads(r.body)
    # sent: SCRIPT_FILENAME = wwwroot + the whole path; PHP-FPM (fix_pathinfo) finds the file in it
    assert v["SCRIPT_FILENAME"] == f"{site}/env.php"
    assert v["QUERY_STRING"] == "q=1"


def test_chunked_body_without_length_is_spooled(start_gateway, fpm, site):
    # read ahead in full, then sent with CONTENT_LENGTH (more cases: test_spool.py)
    gw = start_gateway(fcgi_config(site, fpm.url))
    with gw.connect() as c:
        c.send(b"POST /post.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        r = c.read_response()
    assert r.status == 200
    assert r.body == b"5 " + hashlib.md5(b"hello").hexdigest().encode()


def test_client_disconnect_mid_response(start_gateway, fpm, site):
    gw = start_gateway(fcgi_config(site, fpm.url))
    with gw.connect() as c:
        c.send(b"GET /big.php?n=33554432 HTTP/1.1\r\nHost: x\r\n\r\n")
        c.read_head()
    time.sleep(0.3)
    assert gw.get("/hi.php").body == b"hi"


# ---- SCGI ----

@pytest.fixture
def scgi():
    s = ScgiServer()
    yield s
    s.close()


def scgi_config(url, root=None, extra=""):
    www = f"  wwwroot: \"{root}\"\n" if root else ""
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [scgi]\n{www}"
            f"  scgiPath: \"/app/\"\n  scgiTo: \"{url}\"\n{extra}")


def test_scgi_variables_and_body(start_gateway, scgi, site):
    gw = start_gateway(scgi_config(scgi.url, site))
    status, _, data = gw.http("POST", "/app/x/env?k=v", body=b"12345", headers={"X-Test": "t", "Content-Type": "text/plain"})
    assert status == 200
    doc = json.loads(data)
    env = doc["env"]
    assert env[0] == ["CONTENT_LENGTH", "5"]  # first, as SCGI requires
    d = dict((k, v) for k, v in env)
    assert d["SCGI"] == "1"
    assert d["PATH_INFO"] == "/x/env" and d["SCRIPT_NAME"] == "/app"
    assert d["QUERY_STRING"] == "k=v" and d["REQUEST_METHOD"] == "POST"
    assert d["CONTENT_TYPE"] == "text/plain" and d["HTTP_X_TEST"] == "t"
    assert d["SCRIPT_FILENAME"] == f"{site}/app/x/env"
    assert "HTTPS" not in d
    assert doc["body_len"] == 5


def test_scgi_prefix_is_segment_bounded(start_gateway, scgi, site):
    gw = start_gateway(scgi_config(scgi.url, site))
    assert gw.get("/appfoo/env").status == 404  # Ferron would send this one to SCGI
    assert gw.get("/app").status == 200


def test_scgi_responses(start_gateway, scgi):
    gw = start_gateway(scgi_config(scgi.url))
    r = gw.get("/app/status")
    assert r.status == 404 and r.body == b"not here\n" and r.header("x-app") == "scgi"
    r = gw.get("/app/redirect")
    assert r.status == 302 and r.header("location") == "http://example.test/elsewhere"
    assert gw.get("/app/garbage").status == 502
    n = 3 * 1024 * 1024
    status, _, data = gw.http("GET", f"/app/bytes/{n}", timeout=30)
    assert status == 200 and data == bytes(i % 251 for i in range(n))


def test_scgi_unix_socket_and_refused(start_gateway, tmp_path):
    s = ScgiServer(unix_path=tmp_path / "scgi.sock")
    try:
        gw = start_gateway(scgi_config(s.url))
        assert gw.get("/app/").body == b"hello from scgi\n"
    finally:
        s.close()
    os.unlink(tmp_path / "scgi.sock")
    assert gw.get("/app/").status == 503
