"""Active health checks of named upstream groups (`healthCheck:`): a server whose probe fails gets no
more client traffic and gets it back once it recovers; timeouts and stopped servers; every server
down falls back to trying them; bad settings are located errors; state survives a reload."""
import json
import re
import signal
import subprocess
import time

import pytest

from backends import Backend
from conftest import PORT_PLACEHOLDER
from test_backend_tls import TlsBackend
from tls_helpers import make_cert

FAST = "{path: /health, interval: 100, timeout: 300}"


@pytest.fixture
def backends():
    made = []

    def make(n):
        for _ in range(n):
            made.append(Backend(f"b{len(made)}"))
        return made[-n:]

    yield make
    for b in made:
        b.close()


def group_config(servers, check=FAST, extra_global=""):
    srv = "\n".join(f'      - "{b if isinstance(b, str) else b.url}"' for b in servers)
    # two workers: worker 0 probes, the other must see its verdicts too
    return (f"upstreams:\n  api:\n    balance: roundRobin\n    healthCheck: {check}\n    servers:\n{srv}\n"
            f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 2\n  loadModules: [rproxy]\n"
            f"  proxyTo: http://api\n  metricsPath: /metrics\n{extra_global}")


def spread(gw, n=30):
    seen = {}
    for _ in range(n):
        r = gw.get("/echo")
        assert r.status == 200, r
        name = json.loads(r.body)["backend"]
        seen[name] = seen.get(name, 0) + 1
    return seen


def wait_log(gw, pattern, timeout=5.0, count=1):
    deadline = time.monotonic() + timeout
    while len(re.findall(pattern, gw.stderr())) < count:
        assert time.monotonic() < deadline, f"no '{pattern}' in:\n{gw.stderr()}"
        time.sleep(0.02)


def down_line(b):
    return re.escape(f"health: {b.url} of group 'api' is down")


def up_line(b):
    return re.escape(f"health: {b.url} of group 'api' is up")


def healthy_gauge(gw):
    body = gw.get("/metrics").body.decode()
    m = re.search(r'^gateway_upstream_healthy_servers\{group="api"\} (\d+)$', body, re.M)
    assert m and 'gateway_upstream_servers{group="api"} 3' in body, body
    return int(m.group(1))


def test_failing_server_is_skipped_then_comes_back(start_gateway, backends):
    bs = backends(3)
    gw = start_gateway(group_config(bs))
    assert set(spread(gw, 30)) == {b.name for b in bs}
    bs[2].health_status = 500
    wait_log(gw, down_line(bs[2]) + re.escape(" (status 500)"))
    seen = spread(gw, 40)
    assert bs[2].name not in seen and seen.get(bs[0].name, 0) >= 10 and seen.get(bs[1].name, 0) >= 10, seen
    assert healthy_gauge(gw) == 2
    bs[2].health_status = 200
    wait_log(gw, up_line(bs[2]))
    assert spread(gw, 30).get(bs[2].name, 0) >= 5
    assert healthy_gauge(gw) == 3
    # one worker probes for the process: about one probe per interval, not one per worker
    before = bs[0].health_probes
    time.sleep(1.0)
    assert 2 <= bs[0].health_probes - before <= 14
    gw.check_clean_exit()


def test_expected_status_and_host(start_gateway, backends):
    bs = backends(3)
    bs[1].health_status = 204
    check = "{path: /health, interval: 100, expectedStatus: [200, 204], host: probe.test}"
    gw = start_gateway(group_config(bs, check))
    bs[2].health_status = 204
    time.sleep(0.5)
    assert "is down" not in gw.stderr()
    assert set(spread(gw, 30)) == {b.name for b in bs}
    bs[2].health_status = 299  # a 2xx, but not one of the expected codes
    wait_log(gw, down_line(bs[2]) + re.escape(" (status 299)"))
    assert bs[2].name not in spread(gw, 20)


def test_probe_timeout_marks_down(start_gateway, backends):
    bs = backends(3)
    gw = start_gateway(group_config(bs, "{path: /health, interval: 100, timeout: 200}"))
    bs[1].health_delay = 1.0
    wait_log(gw, down_line(bs[1]) + re.escape(" (no response head within the timeout)"))
    assert bs[1].name not in spread(gw, 30)


def test_stopped_server_is_marked_down(start_gateway, backends):
    bs = backends(3)
    gw = start_gateway(group_config(bs, "{path: /health, interval: 100, fails: 1}"))
    bs[0].close()
    wait_log(gw, down_line(bs[0]))  # refused, or a probe in flight cut off by the close
    seen = spread(gw, 30)
    assert bs[0].name not in seen and len(seen) == 2
    gw.check_clean_exit()


def test_https_servers_are_probed_over_verified_tls(start_gateway, backends, tmp_path):
    cert, key = make_cert(tmp_path / "certs", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    other, other_key = make_cert(tmp_path / "other", "localhost", ["DNS:localhost"])
    good, untrusted = TlsBackend(cert, key), TlsBackend(other, other_key)
    try:
        plain = backends(1)[0]
        urls = [f"https://localhost:{good.port}", f"https://localhost:{untrusted.port}", plain.url]
        gw = start_gateway(group_config(urls, extra_global=f'  proxyCaFile: "{cert}"\n'))
        wait_log(gw, re.escape(f"health: {urls[1]} of group 'api' is down (TLS handshake with backend failed)"))
        time.sleep(0.3)
        assert good.health_probes >= 2 and f"health: {urls[0]}" not in gw.stderr()
        assert set(spread(gw, 20)) == {"tls", plain.name}  # TLS probes and requests share the pool
        good.health_status = 500
        wait_log(gw, re.escape(f"health: {urls[0]} of group 'api' is down (status 500)"))
        assert set(spread(gw, 20)) == {plain.name}
    finally:
        good.close()
        untrusted.close()


def test_every_server_down_falls_back_to_trying_them(start_gateway, backends):
    bs = backends(3)
    gw = start_gateway(group_config(bs))
    for b in bs:
        b.health_status = 503
    for b in bs:
        wait_log(gw, down_line(b))
    assert healthy_gauge(gw) == 0
    assert set(spread(gw, 30)) == {b.name for b in bs}  # still served, still balanced


def test_reload_keeps_the_state(start_gateway, backends):
    bs = backends(3)
    text = group_config(bs, "{path: /health, interval: 200, fails: 3}")
    gw = start_gateway(text)
    bs[1].health_status = 500
    wait_log(gw, down_line(bs[1]))
    # another interval for the same group and servers; a fresh state would be "up" for at least
    # three probes after the reload
    gw.config_path.write_text(text.replace("interval: 200", "interval: 300").replace(PORT_PLACEHOLDER, str(gw.port)))
    gw.signal(signal.SIGHUP)
    wait_log(gw, r"reload: configuration generation 2 is in use")
    time.sleep(0.05)  # the workers adopt it at their next loop iteration
    assert bs[1].name not in spread(gw, 30)
    bs[1].health_status = 200
    wait_log(gw, up_line(bs[1]))
    assert bs[1].name in spread(gw, 30)
    gw.check_clean_exit()


@pytest.mark.parametrize("check,at,msg", [
    ("{interval: 100}", "{", "healthCheck: 'path' is required"),
    ("{path: health}", "health", "healthCheck.path: expected an absolute path"),
    ("{path: /h, interval: 5}", "5", "healthCheck.interval: 5 is out of range (10 to 3600000)"),
    ("{path: /h, timeout: soon}", "soon", "healthCheck.timeout: expected an integer"),
    ("{path: /h, expectedStatus: [200, 99]}", "99", "healthCheck.expectedStatus: expected a status code"),
    ("{path: /h, fails: 0}", "0", "healthCheck.fails: 0 is out of range (1 to 1000)"),
    ("{path: /h, intervall: 100}", "intervall", "healthCheck: unknown key 'intervall'"),
    ("/health", "/", "healthCheck: expected a map"),
])
def test_bad_health_check_is_a_located_error(gateway_bin, tmp_path, check, at, msg):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"upstreams:\n  api:\n    healthCheck: {check}\n    servers: [\"http://127.0.0.1:1\"]\n"
                   "global:\n  loadModules: [rproxy]\n  proxyTo: http://api\n")
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=20)
    col = len("    healthCheck: ") + check.index(at) + 1
    assert out.returncode == 1 and f"{cfg}:3:{col}: {msg}" in out.stderr, out.stderr


def test_health_check_outside_a_group_is_refused(gateway_bin, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("global:\n  healthCheck: {path: /health}\n")
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=20)
    assert out.returncode == 1 and f"{cfg}:2:3: healthCheck: not allowed in global" in out.stderr, out.stderr
