"""
The response cache in front of every kind of source and for both client protocols: a cacheable
answer from static files, PHP-FPM (FastCGI), an SCGI application, a CGI script and a proxied
backend is stored once and served from memory, to HTTP/1.1 and HTTP/2 clients alike; and 1,000
simultaneous misses spread over two workers reach the backend once.
"""
import asyncio
import os
import resource
import subprocess
import time

import pytest

from cache_origin import origin  # noqa: F401 (fixture)
from cgi_backends import PhpFpm, ScgiServer, find_php_fpm
from conftest import PORT_PLACEHOLDER, make_config


def xc(r):
    return r.header("x-gateway-cache")


def config(modules, extra):
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [{', '.join(modules)}]\n{extra}")


def runs(counter):
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def test_static_file_stored_and_served_from_memory(start_gateway, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    f = root / "page.txt"
    f.write_text("first version\n")
    old = time.time() - 10 * 86400  # heuristic freshness: 10% of its age, capped at a day
    os.utime(f, (old, old))
    gw = start_gateway(config(["cache"], f"  wwwroot: \"{root}\"\n"))
    r = gw.get("/page.txt")
    assert r.body == b"first version\n" and xc(r) == "MISS" and "stored" in r.header("cache-status"), r
    f.write_text("other version\n")  # same size, so only the cache can still answer the first
    os.utime(f, (old, old))
    r = gw.get("/page.txt")
    assert r.body == b"first version\n" and xc(r) == "HIT", r


def test_cgi_script_stored(start_gateway, tmp_path):
    root = tmp_path / "site"
    (root / "cgi-bin").mkdir(parents=True)
    counter = tmp_path / "cgi-runs"
    script = root / "cgi-bin" / "count.sh"
    script.write_text(f"#!/bin/sh\necho run >> '{counter}'\n"
                      "printf 'Content-Type: text/plain\\r\\nCache-Control: max-age=60\\r\\n\\r\\ncgi body'\n")
    script.chmod(0o755)
    gw = start_gateway(config(["cache", "cgi"], f"  wwwroot: \"{root}\"\n  cgiScriptExtensions: [\".sh\"]\n"))
    assert [gw.get("/cgi-bin/count.sh").body for _ in range(3)] == [b"cgi body"] * 3
    r = gw.get("/cgi-bin/count.sh")
    assert xc(r) == "HIT" and r.header("cache-control") == "max-age=60", r
    assert runs(counter) == 1


@pytest.mark.skipif(not find_php_fpm(), reason="php-fpm not installed")
def test_fastcgi_php_stored(start_gateway, tmp_path):
    root = tmp_path / "php"
    root.mkdir()
    counter = tmp_path / "php-runs"
    (root / "count.php").write_text(f"<?php file_put_contents('{counter}', \"run\\n\", FILE_APPEND);"
                                    " header('Cache-Control: max-age=60'); echo 'php body';")
    fpm = PhpFpm(tmp_path / "fpm")
    try:
        gw = start_gateway(config(["cache", "fcgi"], f"  wwwroot: \"{root}\"\n  fcgiScriptExtensions: [\".php\"]\n"
                                  f"  fcgiTo: \"{fpm.url}\"\n"))
        assert [gw.get("/count.php").body for _ in range(3)] == [b"php body"] * 3
        r = gw.get("/count.php")
        assert xc(r) == "HIT" and r.header("cache-control") == "max-age=60", r
        assert runs(counter) == 1
    finally:
        fpm.stop()


class CacheableScgi(ScgiServer):
    @staticmethod
    def _answer(path, env, body):
        if path.endswith("/cached"):
            return b"Content-Type: text/plain\r\nCache-Control: max-age=60\r\n\r\nscgi body"
        return ScgiServer._answer(path, env, body)


def test_scgi_stored(start_gateway):
    app = CacheableScgi()
    try:
        gw = start_gateway(config(["cache", "scgi"], f"  scgiPath: \"/app/\"\n  scgiTo: \"{app.url}\"\n"))
        assert [gw.get("/app/cached").body for _ in range(3)] == [b"scgi body"] * 3
        assert xc(gw.get("/app/cached")) == "HIT"
        assert len(app.requests) == 1
    finally:
        app.close()


def curl_h2(port, path):
    p = subprocess.run(["curl", "-s", "-D", "-", "--http2-prior-knowledge", "-H", "Host: localhost",
                        f"http://127.0.0.1:{port}{path}"],
                       capture_output=True, timeout=15)
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return lines[0].strip(), headers, body


def test_http2_clients_store_and_hit(start_gateway, origin):
    origin.route("/h2", headers=[("Cache-Control", "max-age=60"), ("Content-Type", "text/plain")], body=b"h2 body")
    origin.route("/mixed", headers=[("Cache-Control", "max-age=60")], body=b"mixed body")
    gw = start_gateway(config(["cache", "rproxy"], f"  proxyTo: \"{origin.url}\"\n"))
    status, h, body = curl_h2(gw.port, "/h2")
    assert status == "HTTP/2 200" and body == b"h2 body" and h["x-gateway-cache"] == "MISS", (status, h)
    status, h, body = curl_h2(gw.port, "/h2")
    assert status == "HTTP/2 200" and body == b"h2 body" and h["x-gateway-cache"] == "HIT", (status, h)
    assert h["content-type"] == "text/plain" and int(h["age"]) >= 0
    assert origin.count("/h2") == 1
    assert xc(gw.get("/mixed")) == "MISS"  # stored for an HTTP/1.1 client, served to an HTTP/2 one
    status, h, body = curl_h2(gw.port, "/mixed")
    assert body == b"mixed body" and h["x-gateway-cache"] == "HIT"
    assert origin.count("/mixed") == 1


async def fetch_all(port, n, request):
    conns = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(n)))
    for _, w in conns:  # every connection is open before the first request leaves
        w.write(request)

    async def answer(r, w):
        data = await r.read()
        w.close()
        return data
    return await asyncio.gather(*(answer(r, w) for r, w in conns))


def test_thousand_simultaneous_misses_one_backend_request(start_gateway, origin):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 and hard != resource.RLIM_INFINITY and hard < 2500:
        pytest.skip("the open-file limit is too low for 1,000 client connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(4096, hard)), hard))
    body = b"herd " * 400
    origin.route("/herd", headers=[("Cache-Control", "max-age=60")], body=body, delay=0.5)
    gw = start_gateway(make_config(workers=2, proxyTo=origin.url).replace(
        "global:\n", "global:\n  loadModules: [cache, rproxy]\n", 1))
    req = b"GET /herd HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    out = asyncio.run(asyncio.wait_for(fetch_all(gw.port, 1000, req), 60))
    statuses = [o.split(b"\r\n", 1)[0] for o in out]
    assert statuses == [b"HTTP/1.1 200 OK"] * 1000, set(statuses)
    assert all(o.partition(b"\r\n\r\n")[2] == body for o in out)
    assert origin.count("/herd") == 1
    assert gw.alive()
