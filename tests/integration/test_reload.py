"""Reload on SIGHUP: zero failed requests under load, bad files keep the old config, listeners are
added and removed without touching the others, requests in flight finish with their own config,
backend pools survive; Unix-socket listeners."""
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from backends import Backend
from conftest import INDEX_HTML, free_port, get, make_config, yaml_scalar
from tls_helpers import make_cert, wait_port


def rewrite(gw, text):
    """Writes a new config to the running gateway's file (the port placeholder is its port)."""
    gw.config_path.write_text(text.replace("@PORT@", str(gw.port)))


def reload_and_wait(gw, count_before=None, timeout=5.0):
    """SIGHUP, then waits until the log says the reload finished (in use, or not valid)."""
    pat = re.compile(r"reload: (configuration generation \d+ is in use|the configuration is not valid|failed, still serving)")
    before = len(pat.findall(gw.stderr())) if count_before is None else count_before
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while len(pat.findall(gw.stderr())) <= before:
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.02)
    time.sleep(0.05)  # the workers adopt it at their next loop iteration
    return pat.findall(gw.stderr())[-1]


def wait_log(gw, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while text not in gw.stderr():
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.02)


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_reload_changes_wwwroot(start_gateway, wwwroot, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "index.html").write_bytes(b"other site\n")
    gw = start_gateway(make_config(wwwroot))
    assert gw.get("/").body == INDEX_HTML
    rewrite(gw, make_config(other))
    assert "generation 2 is in use" in reload_and_wait(gw)
    assert gw.get("/").body == b"other site\n"
    wait_log(gw, "generation 1 is no longer used: freed")


def test_bad_reload_keeps_serving_and_locates_the_error(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot))
    good = gw.config_path.read_text()
    gw.config_path.write_text(good + "  keepaliveTimeout: soon\n")
    assert "not valid" in reload_and_wait(gw)
    name = re.escape(str(gw.config_path))
    assert re.search(name + r":\d+:\d+: keepaliveTimeout: expected an integer", gw.stderr()), gw.stderr()
    assert gw.get("/").body == INDEX_HTML
    gw.config_path.write_text("global:\n  port: [\n")  # a YAML syntax error
    assert "not valid" in reload_and_wait(gw)
    assert re.search(name + r":\d+:\d+: ", gw.stderr().split("not valid")[-2]), gw.stderr()
    assert gw.get("/").body == INDEX_HTML
    gw.config_path.write_text(good)
    assert "is in use" in reload_and_wait(gw)
    assert gw.get("/").body == INDEX_HTML


def test_reload_changes_proxy_target_in_flight_requests_finish(start_gateway):
    a, b = Backend("a"), Backend("b")
    try:
        gw = start_gateway(make_config(loadModules="[rproxy]", proxyTo=a.url).replace('"[rproxy]"', "[rproxy]"))
        assert b'"backend": "a"' in gw.get("/echo").body
        result = {}

        def slow():
            result["r"] = gw.get("/sse", timeout=10)

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.1)  # the streamed response (0.6 s) is under way on backend a
        rewrite(gw, make_config(loadModules="[rproxy]", proxyTo=b.url).replace('"[rproxy]"', "[rproxy]"))
        reload_and_wait(gw)
        assert b'"backend": "b"' in gw.get("/echo").body
        t.join(10)
        r = result["r"]
        assert r.status == 200 and r.body.count(b"data:") == 3, r
        wait_log(gw, "generation 1 is no longer used: freed")
    finally:
        a.close()
        b.close()


def test_backend_pool_survives_reload(start_gateway):
    a = Backend("a")
    try:
        cfg = make_config(loadModules="[rproxy]", proxyTo=a.url).replace('"[rproxy]"', "[rproxy]")
        gw = start_gateway(cfg)
        with gw.connect() as c:  # one client connection, so one worker and one pool
            for _ in range(2):
                c.send(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
                assert c.read_response().status == 200
            before = a.connections
            rewrite(gw, cfg.replace("global:\n", "global:\n  serverHeader: reloaded\n"))
            reload_and_wait(gw)
            c.send(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.header("Server") == "reloaded", r
        assert a.connections == before, "the pooled backend connection was not reused after the reload"
    finally:
        a.close()


def test_reload_adds_and_removes_listeners(start_gateway, wwwroot, tmp_path):
    cert, key = make_cert(tmp_path / "certs", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    sport = free_port()
    tls = (f"  secure: true\n  sport: {sport}\n  cert: {yaml_scalar(str(cert))}\n"
           f"  key: {yaml_scalar(str(key))}\n  disableToHTTPSRedirect: true\n")
    base = make_config(wwwroot)
    gw = start_gateway(base + "")
    # add the HTTPS listener
    rewrite(gw, base.replace("global:\n", "global:\n" + tls))
    assert "is in use" in reload_and_wait(gw)
    wait_port(sport)
    out = subprocess.run(["curl", "-sk", f"https://127.0.0.1:{sport}/hello.txt"], capture_output=True, timeout=10)
    assert out.stdout == b"hello world\n"
    # a connection open on the HTTPS listener survives the removal of the plain one
    with socket.create_connection(("127.0.0.1", sport), timeout=5) as keep:
        rewrite(gw, base.replace("global:\n", "global:\n" + tls + "  disableNonEncryptedServer: true\n"))
        assert "is in use" in reload_and_wait(gw)
        assert f"stopped listening on [::]:{gw.port}" in gw.stderr()
        deadline = time.monotonic() + 3
        while port_open(gw.port):
            assert time.monotonic() < deadline, "the removed listener still accepts"
            time.sleep(0.05)
        assert keep.fileno() >= 0
    out = subprocess.run(["curl", "-sk", f"https://127.0.0.1:{sport}/hello.txt"], capture_output=True, timeout=10)
    assert out.stdout == b"hello world\n"
    assert gw.stderr().count(f"listening on [::]:{sport}") == 1  # kept, never reopened
    # and back: the plain listener again (the harness stops the gateway through it)
    rewrite(gw, base.replace("global:\n", "global:\n" + tls))
    assert "is in use" in reload_and_wait(gw)
    wait_port(gw.port)
    assert gw.get("/").body == INDEX_HTML


def test_reload_to_a_port_in_use_keeps_serving(start_gateway, wwwroot):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        gw = start_gateway(make_config(wwwroot))
        rewrite(gw, make_config(wwwroot, port=f'"127.0.0.1:{blocker.getsockname()[1]}"'))
        assert "failed, still serving" in reload_and_wait(gw)
        assert "cannot listen on 127.0.0.1:" in gw.stderr()
        assert gw.get("/").body == INDEX_HTML
    finally:
        blocker.close()


@pytest.mark.one_worker  # counts per-worker state
def test_workers_change_needs_restart(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, workers=1))
    rewrite(gw, make_config(wwwroot, workers=3))
    assert "is in use" in reload_and_wait(gw)
    assert "workers changed (1 running): takes effect after a restart" in gw.stderr()
    assert gw.get("/").body == INDEX_HTML


def test_twenty_reloads_under_wrk_load(start_gateway, wwwroot):
    """20 reloads while wrk keeps 32 connections busy: no error, no non-2xx response."""
    cfgs = [make_config(wwwroot, workers=2, serverHeader=f"gen{i % 2}") for i in range(2)]
    gw = start_gateway(cfgs[0])
    wrk = subprocess.Popen(["wrk", "-t2", "-c32", "-d6s", f"http://127.0.0.1:{gw.port}/hello.txt"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        for i in range(20):
            rewrite(gw, cfgs[(i + 1) % 2])
            assert "is in use" in reload_and_wait(gw)
            time.sleep(0.15)
        out = wrk.communicate(timeout=30)[0].decode()
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    m = re.search(r"(\d+) requests in", out)
    assert m and int(m.group(1)) > 1000, out
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    assert gw.stderr().count("is in use") == 20
    gw.assert_alive()
    wait_log(gw, "generation 20 is no longer used: freed")


def test_twenty_reloads_python_clients(start_gateway, wwwroot):
    """Keep-alive and new connections from several threads across 20 reloads: every answer is 200."""
    gw = start_gateway(make_config(wwwroot, workers=2))
    stop = threading.Event()
    bad, done = [], [0]

    def client(k):
        while not stop.is_set():
            try:
                with gw.connect(timeout=5) as c:
                    for _ in range(20):
                        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                        r = c.read_response()
                        if r.status != 200 or r.body != b"hello world\n":
                            bad.append(r)
                        done[0] += 1
            except OSError as e:
                bad.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            rewrite(gw, make_config(wwwroot, workers=2, serverHeader=f"g{i % 2}"))
            assert "is in use" in reload_and_wait(gw)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not bad, bad[:3]
    assert done[0] > 100


def test_unix_socket_listener(start_gateway, wwwroot, tmp_path):
    """A reload replaces the TCP listener by a Unix socket; curl --unix-socket is served; the socket
    file is removed at exit."""
    sock = tmp_path / "gw.sock"
    gw = start_gateway(make_config(wwwroot))
    rewrite(gw, make_config(wwwroot, port=f'"unix:{sock}"'))
    assert "is in use" in reload_and_wait(gw)
    assert f"listening on unix:{sock}" in gw.stderr()
    out = subprocess.run(["curl", "-s", "--unix-socket", str(sock), "http://localhost/hello.txt"],
                         capture_output=True, timeout=10)
    assert out.stdout == b"hello world\n"
    deadline = time.monotonic() + 3
    while port_open(gw.port):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    gw.check_clean_exit()
    assert not sock.exists()


def test_unix_socket_listener_at_start(gateway_bin, wwwroot, tmp_path):
    sock = tmp_path / "start.sock"
    cfgfile = tmp_path / "unix.yaml"
    cfgfile.write_text(make_config(wwwroot, port=f'"unix:{sock}"'))
    proc = subprocess.Popen([str(gateway_bin), "-c", str(cfgfile)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        out = subprocess.run(["curl", "-s", "-D-", "--unix-socket", str(sock), "http://localhost/hello.txt"],
                             capture_output=True, timeout=10)
        assert out.stdout.startswith(b"HTTP/1.1 200") and out.stdout.endswith(b"hello world\n"), out
    finally:
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=10)[1].decode()
    assert proc.returncode == 0, err
    assert "Sanitizer" not in err, err
    assert not sock.exists()


def test_unix_socket_path_errors_are_located(gateway_bin, tmp_path):
    cfgfile = tmp_path / "bad.yaml"
    cfgfile.write_text('global:\n  port: "unix:relative.sock"\n')
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfgfile)], capture_output=True, timeout=10)
    assert out.returncode == 1
    assert f"{cfgfile}:2:9: port: expected" in out.stderr.decode(), out.stderr


def test_reload_reads_certificates_again_and_old_tls_connections_live_on(start_gateway, wwwroot, tmp_path):
    import shutil
    import ssl
    certs = tmp_path / "certs"
    c1, k1 = make_cert(certs / "one", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    c2, k2 = make_cert(certs / "two", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    live_c, live_k = certs / "live.crt", certs / "live.key"
    shutil.copy(c1, live_c)
    shutil.copy(k1, live_k)
    sport = free_port()
    tls = (f"  secure: true\n  sport: {sport}\n  cert: {yaml_scalar(str(live_c))}\n"
           f"  key: {yaml_scalar(str(live_k))}\n  disableToHTTPSRedirect: true\n")
    cfg = make_config(wwwroot, workers=2).replace("global:\n", "global:\n" + tls)
    gw = start_gateway(cfg)
    wait_port(sport)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def der_of(path):
        return ssl.PEM_cert_to_DER_cert(open(path).read())

    old = ctx.wrap_socket(socket.create_connection(("127.0.0.1", sport), timeout=5), server_hostname="localhost")
    assert old.getpeercert(binary_form=True) == der_of(c1)
    shutil.copy(c2, live_c)
    shutil.copy(k2, live_k)
    rewrite(gw, cfg)
    assert "is in use" in reload_and_wait(gw)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", sport), timeout=5), server_hostname="localhost") as s:
        assert s.getpeercert(binary_form=True) == der_of(c2)
    # the connection made before the reload still works on the old contexts
    old.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = old.recv(65536)
        if not chunk:
            break
        data += chunk
    old.close()
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello world\n"), data


@pytest.mark.parametrize("zone", ["", ", zone: api"])
def test_rate_limit_buckets_survive_reload(start_gateway, wwwroot, zone):
    """A spent bucket stays spent across a reload: named zones by name, unnamed ones by where the
    rule is written (unchanged here)."""
    cfg = make_config(wwwroot) + f"  rateLimit: {{requests: 2, per: 1m, burst: 2{zone}}}\n"
    gw = start_gateway(cfg)
    with gw.connect() as c:  # one connection: one worker, whose buckets these are
        for expect in (200, 200, 429):
            c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.read_response().status == expect
        rewrite(gw, cfg + "  serverHeader: reloaded\n")
        assert "is in use" in reload_and_wait(gw)
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 429 and r.header("Server") == "reloaded", r


def test_tls_session_resumes_across_reload(start_gateway, wwwroot, tmp_path):
    import ssl
    cert, key = make_cert(tmp_path / "certs", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    sport = free_port()
    tls = (f"  secure: true\n  sport: {sport}\n  cert: {yaml_scalar(str(cert))}\n"
           f"  key: {yaml_scalar(str(key))}\n  disableToHTTPSRedirect: true\n")
    cfg = make_config(wwwroot).replace("global:\n", "global:\n" + tls)
    gw = start_gateway(cfg)
    wait_port(sport)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # a ticket at the handshake, no 1.3 post-handshake wait

    def fetch(session=None):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", sport), timeout=5), server_hostname="localhost",
                            session=session)
        s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
        sess, reused = s.session, s.session_reused
        s.close()
        return sess, reused

    sess, _ = fetch()
    assert fetch(sess)[1], "no resumption even without a reload"
    rewrite(gw, cfg + "  serverHeader: reloaded\n")
    assert "is in use" in reload_and_wait(gw)
    assert fetch(sess)[1], "the session ticket did not survive the reload"


def test_every_kind_of_request_gives_its_config_back(start_gateway, wwwroot):
    """Rejected heads, aborted uploads, h2c streams and timed-out requests all release the config
    they started with: after a reload the old generation is freed."""
    gw = start_gateway(make_config(wwwroot, headerReadTimeout=200))
    with gw.connect() as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        assert c.read_response().status == 400
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.sendall(b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
    time.sleep(0.1)
    s.close()  # aborted mid-body
    slow = socket.create_connection(("127.0.0.1", gw.port))
    slow.sendall(b"GET / HTTP/1.1\r\n")  # a head that never completes: 408
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", f"http://127.0.0.1:{gw.port}/hello.txt"],
                         capture_output=True, timeout=10)
    assert out.stdout == b"hello world\n"
    held = socket.create_connection(("127.0.0.1", gw.port))  # idle keep-alive, no request: holds nothing
    time.sleep(0.5)
    slow.close()
    rewrite(gw, make_config(wwwroot, headerReadTimeout=300))
    assert "is in use" in reload_and_wait(gw)
    wait_log(gw, "generation 1 is no longer used: freed")
    held.close()


def two_sites(a, b=None):
    """rproxy hosts a.test -> a and (when given) b.test -> b."""
    hosts = f"  - domain: a.test\n    proxyTo: {yaml_scalar(a.url)}\n"
    if b:
        hosts += f"  - domain: b.test\n    proxyTo: {yaml_scalar(b.url)}\n"
    return make_config(hosts=hosts).replace("global:\n", "global:\n  loadModules: [rproxy]\n")


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_reload_closes_idle_connections_of_removed_backends(start_gateway):
    a, b = Backend("a"), Backend("b")
    try:
        gw = start_gateway(two_sites(a, b))
        with gw.connect() as c:  # one client connection: one worker, whose pools these are
            for host in ("a.test", "b.test"):
                c.send(f"GET /echo HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                assert c.read_response().status == 200
            assert (a.connections, b.connections, b.ended) == (1, 1, 0)
            rewrite(gw, two_sites(a))
            reload_and_wait(gw)
            wait_until(lambda: b.ended == 1, 1.0, "the idle connection to the removed backend is still open")
            c.send(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n\r\n")
            assert c.read_response().status == 200
        assert (a.connections, a.ended) == (1, 0), "the kept backend's pooled connection was not reused"
        r = gw.get("/echo", host="b.test")  # no host for it any more: not proxied
        assert b"backend" not in r.body and b.connections == 1, r
    finally:
        a.close()
        b.close()


def test_connection_in_use_to_a_removed_backend_closes_after_its_exchange(start_gateway):
    a, b = Backend("a"), Backend("b")
    try:
        gw = start_gateway(two_sites(a, b))
        with gw.connect() as c:
            # the body is held back: the backend connection stays in use across the reload
            c.send(b"POST /echo HTTP/1.1\r\nHost: b.test\r\nContent-Length: 5\r\n\r\n")
            wait_until(lambda: b.connections == 1, 5.0, "the request did not reach backend b")
            rewrite(gw, two_sites(a))
            reload_and_wait(gw)
            assert b.ended == 0
            c.send(b"hello")
            r = c.read_response()
            assert r.status == 200 and b'"backend": "b"' in r.body, r
        wait_until(lambda: b.ended == 1, 1.0, "the connection went back to a pool that no config uses")
        wait_log(gw, "generation 1 is no longer used: freed")
        assert b'"backend": "a"' in gw.get("/echo", host="a.test").body
    finally:
        a.close()
        b.close()


def test_unnamed_rate_limit_keeps_its_buckets_when_rules_are_inserted_before_it(start_gateway, wwwroot):
    """Unnamed zones belong to the host/location that writes them, not to a file position: a host
    inserted before keeps the spent bucket spent; routes inheriting a rule share its bucket; a changed
    rule starts afresh."""
    limited = ("  - domain: limited.test\n    rateLimit: {requests: 2, per: 1m}\n"
               "    locations:\n      - path: /sub\n      - path: /noindex\n")
    other = "  - domain: other.test\n    rateLimit: {requests: 5, per: 1m}\n"
    gw = start_gateway(make_config(wwwroot, hosts=limited))

    def status(c, path, host="limited.test"):
        c.send(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        return c.read_response().status

    with gw.connect() as c:  # one connection: one worker, whose buckets these are
        assert [status(c, "/sub/page.txt"), status(c, "/noindex/file.txt"), status(c, "/hello.txt")] == [200, 200, 429]
        rewrite(gw, make_config(wwwroot, hosts=other + limited))
        assert "is in use" in reload_and_wait(gw)
        assert status(c, "/hello.txt") == 429
        assert status(c, "/hello.txt", host="other.test") == 200
        rewrite(gw, make_config(wwwroot, hosts=other + limited.replace("requests: 2", "requests: 3")))
        assert "is in use" in reload_and_wait(gw)
        assert [status(c, "/hello.txt") for _ in range(4)] == [200, 200, 200, 429]
