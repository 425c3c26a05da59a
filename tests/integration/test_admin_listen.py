"""adminListen: a listener of its own for the health, readiness and metrics endpoints. On it only
they are answered (anything else 404, never a site's route); the public listeners stop answering
them; adminAllow still applies; no PROXY protocol on it; reloads add, move and remove it."""
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import GATEWAY_BIN, INDEX_HTML, RawConn, free_port, get, make_config
from test_admin import parse_metrics
from test_reload import port_open, reload_and_wait, rewrite, wait_log
from test_upgrade import new_pid, stop_new, subreaper  # noqa: F401 (subreaper is a fixture)


def admin_config(wwwroot, admin, **props):
    return make_config(wwwroot, adminListen=admin, metricsPath="/metrics", **props)


def test_admin_endpoints_on_admin_listener_only(start_gateway, wwwroot):
    admin = free_port()
    gw = start_gateway(admin_config(wwwroot, f"127.0.0.1:{admin}"))
    wait_log(gw, f"listening on 127.0.0.1:{admin} for the admin endpoints")  # logged once serving
    for path in ("/healthz", "/readyz"):
        r = get(admin, path)
        assert r.status == 200 and r.body == b"ok\n", r
        assert r.header("cache-control") == "no-store"
    r = get(admin, "/metrics")
    assert r.status == 200 and r.header("content-type").startswith("text/plain; version=0.0.4"), r
    assert parse_metrics(r.body.decode())["gateway_draining"] == 0
    # the public port never exposes them: they are the site's paths there
    for path in ("/healthz", "/readyz", "/metrics"):
        assert gw.get(path).status == 404, path
    assert gw.get("/").body == INDEX_HTML
    # the admin port never reaches the site's routes
    for path in ("/", "/hello.txt", "/healthz/x", "/sub/"):
        assert get(admin, path).status == 404, path
    r = get(admin, "/hello.txt", host="anything.test")
    assert r.status == 404 and b"hello world" not in r.body, r


def test_site_file_at_admin_path_served_publicly(start_gateway, wwwroot):
    """With adminListen set, a site's own /healthz is what the public port serves to everyone."""
    (wwwroot / "healthz").write_bytes(b"the site's own page\n")
    admin = free_port()
    gw = start_gateway(admin_config(wwwroot, f"127.0.0.1:{admin}"))
    r = gw.get("/healthz")
    assert r.status == 200 and r.body == b"the site's own page\n", r
    assert get(admin, "/healthz").body == b"ok\n"


def test_admin_allow_applies_on_admin_listener(start_gateway, wwwroot):
    admin = free_port()
    gw = start_gateway(admin_config(wwwroot, f"127.0.0.1:{admin}") + '  adminAllow: ["10.0.0.0/8"]\n')
    for path in ("/healthz", "/readyz", "/metrics"):
        assert get(admin, path).status == 404, path
    assert gw.get("/").status == 200


def test_methods_on_admin_listener(start_gateway, wwwroot):
    admin = free_port()
    start_gateway(admin_config(wwwroot, f"127.0.0.1:{admin}"))
    with RawConn(admin) as c:
        c.send(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response("HEAD")
        assert r.status == 200 and r.header("content-length") == "3", r
        c.send(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        r = c.read_response()
        assert r.status == 405 and r.header("allow") == "GET, HEAD", r


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_admin_listener_speaks_h2c(start_gateway, wwwroot):
    admin = free_port()
    start_gateway(admin_config(wwwroot, f"127.0.0.1:{admin}"))
    for path, want in (("/healthz", "200"), ("/hello.txt", "404")):
        p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                            "--http2-prior-knowledge", f"http://127.0.0.1:{admin}{path}"],
                           capture_output=True, text=True, timeout=20)
        assert p.stdout == f"{want} 2", (path, p.stdout, p.stderr)


def test_admin_listener_on_unix_socket(start_gateway, wwwroot, tmp_path):
    sock = tmp_path / "admin.sock"
    gw = start_gateway(admin_config(wwwroot, f"unix:{sock}") + '  adminAllow: ["::"]\n')
    # a Unix-socket peer has no IP: it is shown as ::, which adminAllow must name
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(str(sock))
    with s:
        s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"ok\n"), data
    assert gw.get("/readyz").status == 404


def test_no_proxy_protocol_on_admin_listener(start_gateway, wwwroot):
    """proxyProtocol applies to the public listeners only: a trusted peer must send a header there,
    while probes and scrapers reach the admin listener directly."""
    admin = free_port()
    gw = start_gateway(admin_config(wwwroot, f"127.0.0.1:{admin}", proxyProtocol=True)
                       + '  proxyProtocolTrusted: ["127.0.0.1"]\n')
    assert get(admin, "/healthz").status == 200
    assert get(admin, "/metrics").status == 200
    with gw.connect() as c:  # no PROXY header from a trusted peer: refused
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.closed_by_server()
    with gw.connect() as c:
        c.send(b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200


def test_readyz_503_while_draining_on_admin_listener(start_gateway, wwwroot):
    """SIGTERM: a probe whose request arrives on an admin connection open before the stop gets 503
    from /readyz, while /healthz stays 200."""
    admin = free_port()
    gw = start_gateway(admin_config(wwwroot, f"127.0.0.1:{admin}", gracefulShutdownTimeout=5000))
    ready, health = RawConn(admin), RawConn(admin)
    try:
        ready.send(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
        health.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.3)
        gw.signal(signal.SIGTERM)
        wait_log(gw, "draining", timeout=3)
        time.sleep(0.2)
        ready.send(b"\r\n")
        health.send(b"\r\n")
        r = ready.read_response()
        assert r.status == 503 and r.body == b"draining\n", r
        assert health.read_response().status == 200
    finally:
        ready.close()
        health.close()


def test_reload_adds_moves_and_removes_admin_listener(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, metricsPath="/metrics"))
    first, second = free_port(), free_port()
    assert gw.get("/metrics").status == 200  # no adminListen: answered on the public port
    public_conn = gw.connect()  # a public connection stays open through every reload
    try:
        rewrite(gw, admin_config(wwwroot, f"127.0.0.1:{first}"))
        assert "generation 2 is in use" in reload_and_wait(gw)
        assert f"reload: listening on 127.0.0.1:{first} for the admin endpoints" in gw.stderr()
        assert get(first, "/metrics").status == 200
        assert gw.get("/metrics").status == 404
        # moved: the old address closes, the new one opens
        rewrite(gw, admin_config(wwwroot, f"127.0.0.1:{second}"))
        assert "generation 3 is in use" in reload_and_wait(gw)
        assert f"reload: stopped listening on 127.0.0.1:{first} for the admin endpoints" in gw.stderr()
        assert get(second, "/healthz").status == 200
        assert not port_open(first)
        # removed: the public port answers them again
        rewrite(gw, make_config(wwwroot, metricsPath="/metrics"))
        assert "generation 4 is in use" in reload_and_wait(gw)
        assert not port_open(second)
        assert gw.get("/metrics").status == 200
        # the public listener was never reopened, and its connection still serves
        assert gw.stderr().count(f"listening on [::]:{gw.port}") == 1
        public_conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert public_conn.read_response().status == 200
    finally:
        public_conn.close()


def test_admin_listener_handed_over_on_upgrade(start_gateway, wwwroot, subreaper):
    """SIGUSR2: the new process takes the admin listener's sockets with the public ones and keeps
    their roles."""
    admin = free_port()
    gw = start_gateway(admin_config(wwwroot, f"127.0.0.1:{admin}", workers=2))
    gw.signal(signal.SIGUSR2)
    pid = new_pid(gw)
    subreaper.append(pid)
    assert gw.proc.wait(timeout=10) == 0
    assert "upgrade: 4 listening sockets handed over" in gw.stderr()  # 2 listeners x 2 workers
    assert get(admin, "/healthz").status == 200
    assert get(admin, "/hello.txt").status == 404
    assert gw.get("/healthz").status == 404
    assert gw.get("/hello.txt").status == 200
    assert stop_new(pid) == 0
    subreaper.remove(pid)


def test_reload_with_colliding_admin_listener_keeps_running_config(start_gateway, wwwroot):
    admin = free_port()
    gw = start_gateway(admin_config(wwwroot, f"127.0.0.1:{admin}"))
    rewrite(gw, admin_config(wwwroot, "127.0.0.1:@PORT@"))
    assert "not valid" in reload_and_wait(gw)
    assert f"adminListen: '127.0.0.1:{gw.port}' collides with the public listener [::]:{gw.port}" in gw.stderr()
    assert get(admin, "/healthz").status == 200
    assert gw.get("/healthz").status == 404


@pytest.mark.parametrize("value,where,message", [
    ("@P@", "3:16", "adminListen: '@P@' collides with the public listener [::]:@P@"),
    ('"127.0.0.1:@P@"', "3:16", "adminListen: '127.0.0.1:@P@' collides with the public listener [::]:@P@"),
    ('"not-an-address"', "3:16", 'adminListen: expected a port or "address:port"'),
    ('"127.0.0.1:70000"', "3:16", 'adminListen: expected a port or "address:port"'),
    ('"unix:relative.sock"', "3:16", 'adminListen: expected "unix:/absolute/path"'),
    ("70000", "3:16", "adminListen:"),
])
def test_bad_admin_listen_is_a_located_error(tmp_path, value, where, message):
    port = str(free_port())
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"global:\n  port: {port}\n  adminListen: {value.replace('@P@', port)}\n")
    p = subprocess.run([str(GATEWAY_BIN), "-t", "-c", str(bad)], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0, p.stderr
    assert f"{bad}:{where}: {message.replace('@P@', port)}" in p.stderr, p.stderr


def test_admin_listen_colliding_with_https_listener(tmp_path):
    cfg = tmp_path / "tls.yaml"
    cfg.write_text("global:\n  port: 8080\n  secure: true\n  sport: 8443\n  generateDevCertificate: true\n"
                   f"  cert: {tmp_path}/c.pem\n  key: {tmp_path}/k.pem\n  adminListen: \"127.0.0.1:8443\"\n")
    p = subprocess.run([str(GATEWAY_BIN), "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "adminListen: '127.0.0.1:8443' collides with the public listener [::]:8443" in p.stderr, p.stderr


def test_admin_listen_only_global(tmp_path):
    cfg = tmp_path / "host.yaml"
    cfg.write_text("global:\n  port: 8080\nhosts:\n  - domain: a.test\n    adminListen: 9901\n")
    p = subprocess.run([str(GATEWAY_BIN), "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0 and "adminListen: not allowed in a host" in p.stderr, p.stderr
