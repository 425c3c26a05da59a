"""Error pages: errorPages files, errorConfig re-running the chain (spec §1), and the HTTPS and
www redirects."""
from conftest import make_config, PORT_PLACEHOLDER


def test_error_page_file(start_gateway, wwwroot, tmp_path):
    page = tmp_path / "404.html"
    page.write_bytes(b"<h1>custom not found</h1>\n")
    hosts = (f'  - domain: "*"\n    errorPages:\n      - scode: 404\n        path: "{page}"\n'
             f'      - scode: 403\n        path: "{tmp_path}/missing.html"\n')
    gw = start_gateway(make_config(wwwroot, hosts=hosts))
    r = gw.get("/nope")
    assert r.status == 404 and r.body == page.read_bytes()
    assert r.header("content-type") == "text/html; charset=utf-8"
    r = gw.get("/noindex/")  # its page is missing: the built-in one
    assert r.status == 403 and b"<title>403 Forbidden</title>" in r.body
    with gw.connect() as c:  # HEAD and keep-alive
        c.send(b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        h = c.read_response("HEAD")
        assert h.status == 404 and h.header("content-length") == str(len(page.read_bytes()))
        assert c.read_response().body == b"hello world\n"


def test_error_pages_must_be_absolute(gateway_bin, tmp_path):
    import subprocess
    cfg = tmp_path / "c.yaml"
    cfg.write_text('global:\n  errorPages:\n    - scode: 404\n      path: "rel.html"\n    - path: "/x.html"\n')
    p = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=10)
    assert p.returncode != 0
    assert "c.yaml:3:7: errorPages: each entry needs an absolute 'path'" in p.stderr
    assert "errorPages: each entry needs an integer 'scode'" in p.stderr


def test_error_config_reruns_the_chain(start_gateway, wwwroot, tmp_path):
    fallback = tmp_path / "fallback"
    fallback.mkdir()
    (fallback / "nope").write_bytes(b"from the fallback root\n")
    (fallback / "index.html").write_bytes(b"spa shell\n")
    hosts = (f'  - domain: "*"\n    errorConfig:\n      - scode: 404\n        wwwroot: "{fallback}"\n'
             f'        customHeaders:\n          X-Error-Config: "yes"\n'
             f'      - wwwroot: "{tmp_path}/nowhere"\n')
    gw = start_gateway(make_config(wwwroot, hosts=hosts))
    r = gw.get("/nope")
    assert r.status == 200 and r.body == b"from the fallback root\n" and r.header("x-error-config") == "yes"
    assert gw.get("/hello.txt").header("x-error-config") is None
    r = gw.get("/sub/missing")  # matched again, the re-run fails too: its error page
    assert r.status == 404 and r.header("x-error-config") == "yes"
    r = gw.get("/noindex/")  # 403: the entry without scode, whose root is missing -> 404 page
    assert r.status == 404


def test_www_redirect(start_gateway, wwwroot):
    hosts = '  - domain: example.com\n    wwwredirect: true\n  - domain: "*"\n'
    gw = start_gateway(make_config(wwwroot, hosts=hosts))
    r = gw.get("/hello.txt?a=1", host="example.com")
    assert r.status == 301 and r.header("location") == "http://www.example.com/hello.txt?a=1"
    r = gw.get("/hello.txt", host="example.com:8080")
    assert r.header("location") == "http://www.example.com:8080/hello.txt"
    assert gw.get("/hello.txt", host="www.example.com").status == 200
    assert gw.get("/hello.txt", host="other.test").status == 200


def test_https_redirect(start_gateway, wwwroot, tmp_path):
    import subprocess
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True, timeout=60)
    from conftest import free_port
    sport = free_port()
    cfg = make_config(wwwroot, secure=True, sport=sport, cert=str(cert), key=str(key))
    gw = start_gateway(cfg)
    r = gw.get("/sub/page.txt?x=1", host="example.com:8080")
    assert r.status == 301 and r.header("location") == f"https://example.com:{sport}/sub/page.txt?x=1"
    gw2 = start_gateway(cfg.replace(f"sport: {sport}", f"sport: {free_port()}") + "  disableToHTTPSRedirect: true\n")
    assert gw2.get("/hello.txt").status == 200
