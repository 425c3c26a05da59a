"""Automatic TLS (enableAutomaticTLS) against a real ACME server on loopback: Debian's pebble,
validating for real (its validator connects to the gateway for http-01 and tls-alpn-01)."""
import os
import signal
import ssl
import stat
import socket
import subprocess
import time

import pytest

from conftest import free_port, yaml_scalar
from dnsserver import DnsServer
from pebble_ca import PEBBLE, Pebble
from tls_helpers import curl, wait_port

pytestmark = pytest.mark.skipif(PEBBLE is None, reason="pebble is not installed (scripts/deps.sh test)")

NAMES = ["a.example.test", "b.example.test"]


@pytest.fixture
def dns():
    d = DnsServer({n: ("127.0.0.1", 60) for n in NAMES})
    yield d
    d.close()


@pytest.fixture
def pebble(tmp_path):
    p = Pebble(tmp_path / "pebble")
    yield p
    p.stop()


def acme_config(wwwroot, sport, directory, ca_file, cache, http01=False, extra=None):
    lines = ["global:", "  port: @PORT@", f"  sport: {sport}", "  secure: true", "  workers: 1",
             f"  wwwroot: {yaml_scalar(str(wwwroot))}", "  disableToHTTPSRedirect: true",
             "  enableAutomaticTLS: true", f"  automaticTLSDirectory: {yaml_scalar(directory)}",
             f"  automaticTLSCaFile: {yaml_scalar(str(ca_file))}",
             f"  automaticTLSContactCacheDirectory: {yaml_scalar(str(cache))}",
             "  automaticTLSContactEmail: admin@example.test",
             f"  useAutomaticTLSHTTPChallenge: {'true' if http01 else 'false'}"]
    lines += [f"  {k}: {v}" for k, v in (extra or {}).items()]
    lines += ["hosts:"] + [f"  - domain: {n}" for n in NAMES] + ["  - domain: \"*.wild.test\""]
    return "\n".join(lines) + "\n"


def served_cert(sport, name=NAMES[0]):
    """The DER certificate the gateway presents for `name`, or None when the handshake fails."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", sport), timeout=3) as s, \
                ctx.wrap_socket(s, server_hostname=name) as t:
            return t.getpeercert(binary_form=True)
    except (ssl.SSLError, OSError):
        return None


def wait_for_cert(sport, gw, timeout=30, differs_from=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        der = served_cert(sport)
        if der and der != differs_from:
            return der
        time.sleep(0.2)
    raise AssertionError("no certificate issued; gateway log:\n" + gw.stderr())


def curl_ok(sport, root, name=NAMES[0]):
    r = curl("--cacert", str(root), "--resolve", f"{name}:{sport}:127.0.0.1", "-o", "/dev/null",
             "-w", "%{http_code}", f"https://{name}:{sport}/")
    return r.returncode, r.stdout.decode()


def start_acme(start_gateway, pebble, wwwroot, tmp_path, dns, http01, env=None, validity=None, extra=None,
               directory=None):
    """The gateway, then pebble pointed at its ports: the gateway's first attempt may find no CA
    yet and back off (2 s)."""
    sport = free_port()
    cache = tmp_path / "acme-cache"
    gw = start_gateway(acme_config(wwwroot, sport, directory or pebble.directory, pebble.cert, cache, http01, extra))
    pebble.start(dns.port, gw.port, sport, env=env, validity=validity)
    wait_port(sport)
    return gw, sport, cache


@pytest.mark.parametrize("http01", [False, True], ids=["tls-alpn-01", "http-01"])
def test_first_issuance_is_served_and_cached(start_gateway, pebble, wwwroot, tmp_path, dns, http01):
    gw, sport, cache = start_acme(start_gateway, pebble, wwwroot, tmp_path, dns, http01,
                                  extra={"logFilePath": yaml_scalar(str(tmp_path / "access.log"))})
    assert served_cert(sport) is None  # nothing to serve before the CA answered
    wait_for_cert(sport, gw)
    root = tmp_path / "root.pem"
    root.write_bytes(pebble.root_pem())
    for name in NAMES:
        assert curl_ok(sport, root, name) == (0, "200"), gw.stderr()
    # the validator really came (pebble -strict, no PEBBLE_VA_ALWAYS_VALID), with our challenge type:
    # http-01 asked the plain port for the token (access log), tls-alpn-01 did not
    assert "set VALID by completed challenge" in pebble.output()
    time.sleep(1.2)  # the access log is written once a second
    log = (tmp_path / "access.log").read_text()
    assert ("GET /.well-known/acme-challenge/" in log) == http01, log
    for f in ("account.key", "cert.pem", "key.pem"):
        assert stat.S_IMODE(os.stat(cache / f).st_mode) == 0o600, f
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    assert "acme: certificate for a.example.test and more installed" in gw.stderr()
    # an unknown name gets no certificate (there is no default one); the wildcard host was not ordered
    assert served_cert(sport, "other.wild.test") is None


def test_cached_certificate_served_while_the_ca_is_down(start_gateway, pebble, wwwroot, tmp_path, dns):
    gw, sport, cache = start_acme(start_gateway, pebble, wwwroot, tmp_path, dns, False)
    first = wait_for_cert(sport, gw)
    root = tmp_path / "root.pem"
    root.write_bytes(pebble.root_pem())
    gw.stop()
    pebble.stop()
    sport2 = free_port()
    gw2 = start_gateway(acme_config(wwwroot, sport2, "https://localhost:%d/dir" % free_port(), pebble.cert, cache))
    wait_port(sport2)
    assert served_cert(sport2) == first  # at once, without the CA
    assert curl_ok(sport2, root) == (0, "200")
    assert "serving the cached certificate" in gw2.stderr()


def test_renewal_before_expiry(start_gateway, pebble, wwwroot, tmp_path, dns):
    # pebble issues 20-second certificates; with the default 30-day margin the gateway renews at
    # half their remaining life
    gw, sport, _ = start_acme(start_gateway, pebble, wwwroot, tmp_path, dns, False, validity=20)
    first = wait_for_cert(sport, gw)
    second = wait_for_cert(sport, gw, timeout=30, differs_from=first)
    assert second != first
    assert gw.stderr().count("installed") >= 2


def test_bad_nonces_are_retried(start_gateway, pebble, wwwroot, tmp_path, dns):
    # pebble rejects 40% of valid nonces with badNonce (RFC 8555 §6.5): retried with the new nonce
    gw, sport, _ = start_acme(start_gateway, pebble, wwwroot, tmp_path, dns, True,
                              env={"PEBBLE_WFE_NONCEREJECT": "40"}, directory=pebble.directory_by_address)
    wait_for_cert(sport, gw, timeout=40)
    # about a dozen signed requests: all accepted at once has a chance of 0.6^12, under 0.3%
    assert "badNonce, retrying" in gw.stderr()


def test_failed_validation_is_logged_and_retried(start_gateway, pebble, wwwroot, tmp_path):
    # the names do not resolve: every authorization fails; the error is logged, nothing is served,
    # the gateway keeps running and backs off
    dns = DnsServer({})
    try:
        gw, sport, _ = start_acme(start_gateway, pebble, wwwroot, tmp_path, dns, True,
                                  extra={"automaticTLSRetryMax": 1})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and gw.stderr().count("authorization: status invalid") < 2:
            time.sleep(0.2)
        log = gw.stderr()
        assert log.count("authorization: status invalid") >= 2, log  # retried after the failure
        assert "example.test" in log.split("authorization: status invalid")[1].splitlines()[0], log
        assert served_cert(sport) is None
        assert gw.get("/").status == 200
    finally:
        dns.close()


def test_config_errors(gateway_bin, tmp_path):
    cfg = tmp_path / "g.yaml"
    cfg.write_text("global:\n  port: 0\n  secure: true\n")
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, timeout=20)
    assert out.returncode == 1 and "g.yaml:3:11: secure: needs cert and key" in out.stderr.decode(), out.stderr
    cfg.write_text("global:\n  port: 0\n  enableAutomaticTLS: true\n  automaticTLSRenewBefore: 0\n")
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, timeout=20)
    assert out.returncode == 1 and "g.yaml:4:28: automaticTLSRenewBefore" in out.stderr.decode(), out.stderr
    cfg.write_text("global:\n  port: 0\n  enableAutomaticTLS: true\n  automaticTLSDirectory: http://ca.test/dir\n"
                   "  automaticTLSCaFile: /nonexistent/ca.pem\n")
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, timeout=20)
    err = out.stderr.decode()
    assert out.returncode == 1 and "g.yaml:4:26: automaticTLSDirectory: 'http://ca.test/dir' is not an https" in err, err
    assert "g.yaml:5:23: automaticTLSCaFile:" in err, err
    cfg.write_text("global:\n  port: 0\n  secure: true\n  enableAutomaticTLS: true\n  disableNonEncryptedServer: true\n"
                   "  useAutomaticTLSHTTPChallenge: true\n")
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, timeout=20)
    assert out.returncode == 0 and "g.yaml:6:33: useAutomaticTLSHTTPChallenge needs the plain HTTP listener" \
        in out.stderr.decode(), out.stderr
    cfg.write_text("global:\n  port: 0\n  secure: true\n  enableAutomaticTLS: true\n")
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr


def test_reload_says_acme_changes_need_a_restart(start_gateway, wwwroot, tmp_path):
    sport = free_port()
    dead = "https://127.0.0.1:%d/dir" % free_port()
    text = acme_config(wwwroot, sport, dead, "/etc/ssl/certs/ca-certificates.crt", tmp_path / "cache")
    gw = start_gateway(text)
    gw.config_path.write_text(gw.config_path.read_text().replace("admin@example.test", "ops@example.test"))
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "automatic TLS settings" not in gw.stderr() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "reload: automatic TLS settings and the host domains it orders for take effect after a restart" \
        in gw.stderr()
    assert gw.get("/").status == 200
