"""https:// backends: verification, host checks, disabling verification, pooled TLS connections."""
import json
import socket
import ssl

import pytest

from backends import Backend
from conftest import PORT_PLACEHOLDER
from tls_helpers import make_cert


class TlsBackend(Backend):
    """The ordinary test backend, served over TLS with the given certificate."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        super().__init__("tls")

    def _serve(self, c):
        try:
            c = self.ctx.wrap_socket(c, server_side=True)
        except (ssl.SSLError, OSError):
            c.close()
            return
        super()._serve(c)


@pytest.fixture
def tls_backend(tmp_path):
    cert, key = make_cert(tmp_path / "certs", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    b = TlsBackend(cert, key)
    yield b, cert
    b.close()


def config(url, extra=""):
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [rproxy]\n"
            f"  proxyTo: \"{url}\"\n{extra}")


def test_verified_backend_by_name_and_ip(start_gateway, tls_backend):
    b, cert = tls_backend
    for host in ("localhost", "127.0.0.1"):
        gw = start_gateway(config(f"https://{host}:{b.port}", f"  proxyCaFile: \"{cert}\"\n"))
        r = gw.get("/echo")
        assert r.status == 200, r
        assert json.loads(r.body)["backend"] == "tls"


def test_untrusted_certificate_is_502(start_gateway, tls_backend):
    b, _ = tls_backend
    gw = start_gateway(config(f"https://localhost:{b.port}"))  # the system store does not know it
    assert gw.get("/echo").status == 502


def test_wrong_host_name_is_502(start_gateway, tls_backend, tmp_path):
    b, _ = tls_backend
    other, _ = make_cert(tmp_path / "other", "other.test")
    cert, key = make_cert(tmp_path / "wrong", "wrong.test", ["DNS:wrong.test"])
    b2 = TlsBackend(cert, key)
    try:
        gw = start_gateway(config(f"https://localhost:{b2.port}", f"  proxyCaFile: \"{cert}\"\n"))
        assert gw.get("/echo").status == 502
    finally:
        b2.close()


def test_verification_disabled(start_gateway, tls_backend):
    b, _ = tls_backend
    gw = start_gateway(config(f"https://localhost:{b.port}", "  disableProxyCertificateVerification: true\n"))
    assert gw.get("/echo").status == 200


def test_tls_connections_are_pooled_and_bodies_stream(start_gateway, tls_backend):
    b, cert = tls_backend
    gw = start_gateway(config(f"https://localhost:{b.port}", f"  proxyCaFile: \"{cert}\"\n"))
    with gw.connect() as c:
        for _ in range(10):
            c.send(b"GET /bytes/300000 HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and len(r.body) == 300000
    status, _, data = gw.http("POST", "/echo", body=b"z" * 500000)
    assert status == 200 and json.loads(data)["body_len"] == 500000
    assert b.connections <= 2


def test_bad_ca_file_is_a_config_error(gateway_bin, tmp_path):
    import subprocess
    cfg = tmp_path / "c.yaml"
    cfg.write_text("global:\n  proxyCaFile: /nonexistent/ca.pem\n")
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 1 and f"{cfg}:2:16: proxyCaFile:" in out.stderr
