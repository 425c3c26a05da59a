"""
TLS on the HTTPS listener: HTTP/2 and HTTP/1.1 by ALPN, TLS 1.2 and 1.3, SNI certificates, 421 for
a misdirected HTTP/2 request, cipher and curve policy, session resumption, HTTPS-only mode and the
development certificate generated at first start. Clients: curl, nghttp, openssl s_client.
"""
import os
import stat
import subprocess

import pytest

from conftest import FILE_2M, INDEX_HTML, PORT_PLACEHOLDER, free_port
from tls_helpers import curl, curl_write_out, make_cert, start_tls, tls_config, wait_port


def s_client(port, *args, data=b""):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args], input=data,
                       capture_output=True, timeout=15)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


REQ = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def session(port, *args):
    """s_client that sends one request and reads to the end, so TLS 1.3 tickets arrive."""
    return s_client(port, "-ign_eof", *args, data=REQ)


def test_h2_over_tls_with_curl(start_gateway, wwwroot, tmp_path):
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path)
    r = curl("--http2", "-k", f"https://127.0.0.1:{sport}/", "-w", "\n%{http_version} %{http_code}")
    body, _, status = r.stdout.rpartition(b"\n")
    assert status == b"2 200"
    assert body == INDEX_HTML


def test_alpn_fallback_to_http11(start_gateway, wwwroot, tmp_path):
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path)
    assert curl_write_out("--http1.1", "-k", f"https://127.0.0.1:{sport}/") == "1.1 200"
    # a client offering no ALPN at all also gets HTTP/1.1
    out = s_client(sport, "-quiet", "-servername", "localhost",
                   data=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert "HTTP/1.1 200 OK" in out


def test_enable_http2_false_offers_only_http11(start_gateway, wwwroot, tmp_path):
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path, extra={"enableHTTP2": False})
    assert curl_write_out("--http2", "-k", f"https://127.0.0.1:{sport}/") == "1.1 200"
    # and no h2c on the plain port either: the preface is not HTTP/1.1
    assert curl_write_out("--http2-prior-knowledge", f"http://127.0.0.1:{gw.port}/") != "2 200"


@pytest.mark.parametrize("version,args", [("TLSv1.2", ["--tlsv1.2", "--tls-max", "1.2"]),
                                          ("TLSv1.3", ["--tlsv1.3"])])
def test_tls_versions(start_gateway, wwwroot, tmp_path, version, args):
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path)
    r = curl("-v", "--http2", "-k", *args, "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
             f"https://127.0.0.1:{sport}/")
    assert r.stdout == b"2 200"
    assert f"SSL connection using {version}" in r.stderr.decode()


def test_tls_min_version_refuses_older(start_gateway, wwwroot, tmp_path):
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path, extra={"tlsMinVersion": "TLSv1.3"})
    assert curl("-k", "--tlsv1.2", "--tls-max", "1.2", f"https://127.0.0.1:{sport}/").returncode != 0
    assert curl_write_out("-k", "--tlsv1.3", f"https://127.0.0.1:{sport}/") == "2 200"


def test_sni_picks_certificate(start_gateway, wwwroot, tmp_path):
    d = tmp_path / "certs"
    cert, key = make_cert(d, "localhost")
    alt = make_cert(d, "alt.test")
    wild = make_cert(d, "*.wild.test")
    sport = free_port()
    start_gateway(tls_config(wwwroot, cert, key, sport, sni={"alt.test": alt, "*.wild.test": wild}))
    wait_port(sport)
    assert "CN = alt.test" in s_client(sport, "-servername", "alt.test")
    assert "CN = *.wild.test" in s_client(sport, "-servername", "a.wild.test")
    assert "CN = localhost" in s_client(sport, "-servername", "a.b.wild.test")  # one label only
    assert "CN = localhost" in s_client(sport, "-servername", "unknown.test")
    assert "CN = localhost" in s_client(sport, "-noservername")


def test_misdirected_request_421(start_gateway, wwwroot, tmp_path):
    d = tmp_path / "certs"
    cert, key = make_cert(d, "localhost")
    alt = make_cert(d, "alt.test")
    sport = free_port()
    start_gateway(tls_config(wwwroot, cert, key, sport, sni={"alt.test": alt}))
    wait_port(sport)
    resolve = ["--resolve", f"alt.test:{sport}:127.0.0.1", "--resolve", f"other.test:{sport}:127.0.0.1"]
    ok = curl_write_out("--http2", "-k", *resolve, f"https://alt.test:{sport}/")
    assert ok == "2 200"
    # SNI alt.test, :authority other.test (curl turns Host into :authority): another certificate's name
    bad = curl_write_out("--http2", "-k", *resolve, "-H", "Host: other.test", f"https://alt.test:{sport}/")
    assert bad == "2 421"
    # the default certificate is not tied to a name: any authority goes
    assert curl_write_out("--http2", "-k", "-H", "Host: other.test", f"https://127.0.0.1:{sport}/") == "2 200"


def test_cipher_suite_policy(start_gateway, wwwroot, tmp_path):
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path,
                          extra={"cipherSuite": "[TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]"})
    ok = s_client(sport, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in ok and "Cipher is (NONE)" not in ok
    refused = s_client(sport, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384")
    assert "Cipher is (NONE)" in refused or "handshake failure" in refused
    # the default policy refuses CBC suites
    gw2, sport2 = start_tls(start_gateway, wwwroot, tmp_path / "b")
    cbc = s_client(sport2, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA")
    assert "Cipher is (NONE)" in cbc or "handshake failure" in cbc


def test_ecdh_curve_policy(start_gateway, wwwroot, tmp_path):
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path, extra={"ecdhCurve": "[secp384r1]"})
    assert "Server Temp Key: ECDH, secp384r1" in s_client(sport, "-tls1_3", "-groups", "P-384:X25519")
    refused = s_client(sport, "-tls1_2", "-groups", "X25519")
    assert "Cipher is (NONE)" in refused or "handshake failure" in refused


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_session_resumption(start_gateway, wwwroot, tmp_path, version):
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path, workers=2)
    sess = tmp_path / "sess.pem"
    first = session(sport, version, "-servername", "localhost", "-sess_out", str(sess))
    assert "New," in first
    for _ in range(3):  # tickets resume on any worker (shared ticket keys)
        again = session(sport, version, "-servername", "localhost", "-sess_in", str(sess))
        assert "Reused," in again


def test_no_resumption_across_sni_entries(start_gateway, wwwroot, tmp_path):
    d = tmp_path / "certs"
    cert, key = make_cert(d, "localhost")
    alt = make_cert(d, "alt.test")
    sport = free_port()
    start_gateway(tls_config(wwwroot, cert, key, sport, sni={"alt.test": alt}))
    wait_port(sport)
    sess = tmp_path / "alt.pem"
    session(sport, "-tls1_3", "-servername", "alt.test", "-sess_out", str(sess))
    assert "Reused," in session(sport, "-tls1_3", "-servername", "alt.test", "-sess_in", str(sess))
    other = session(sport, "-tls1_3", "-servername", "localhost", "-sess_in", str(sess))
    assert "Reused," not in other and "CN = localhost" in other


def test_https_only(start_gateway, wwwroot, tmp_path):
    cert, key = make_cert(tmp_path / "certs", "localhost")
    plain = free_port()
    text = tls_config(wwwroot, cert, key, PORT_PLACEHOLDER, port=plain, extra={"disableNonEncryptedServer": True})
    gw = start_gateway(text)  # the harness waits on the HTTPS port here
    assert curl_write_out("-k", f"https://127.0.0.1:{gw.port}/") == "2 200"
    assert curl("-o", "/dev/null", f"http://127.0.0.1:{plain}/").returncode == 7  # nothing listens


def test_dev_certificate_generated_at_first_start(start_gateway, wwwroot, tmp_path):
    d = tmp_path / "dev" / ".dev-certs"
    cert, key = d / "localhost.crt", d / "localhost.key"
    sport = free_port()
    gw = start_gateway(tls_config(wwwroot, cert, key, sport, extra={"generateDevCertificate": True}))
    wait_port(sport)
    assert cert.is_file() and key.is_file()
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"], capture_output=True).stdout.decode()
    assert "DNS:localhost" in text and "IP Address:127.0.0.1" in text and "prime256v1" in text
    assert "generated a self-signed development certificate" in gw.stderr()
    assert curl_write_out("--http2", "--cacert", str(cert), f"https://localhost:{sport}/") == "2 200"
    # a second start keeps the existing certificate
    before = cert.read_bytes()
    gw2 = start_gateway(tls_config(wwwroot, cert, key, free_port(), extra={"generateDevCertificate": True}))
    assert cert.read_bytes() == before
    assert "generated" not in gw2.stderr()


def test_bad_certificate_config_is_located(gateway_bin, wwwroot, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(tls_config(wwwroot, tmp_path / "missing.crt", tmp_path / "missing.key", 8443, port=8080))
    r = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, timeout=20)
    assert r.returncode == 1
    assert b"bad.yaml:7:9:" in r.stderr and b"cert: cannot load certificate" in r.stderr


def test_nghttp_and_large_file(start_gateway, wwwroot, tmp_path):
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path)
    r = subprocess.run(["nghttp", "-nv", f"https://127.0.0.1:{sport}/"], capture_output=True, timeout=20)
    out = r.stdout.decode()
    assert "The negotiated protocol: h2" in out and ":status: 200" in out
    big = curl("--http2", "-k", f"https://127.0.0.1:{sport}/big.bin")
    assert big.stdout == FILE_2M
    # a small client window (64 KiB per stream and connection): flow control end to end
    r = subprocess.run(["nghttp", "-n", "-s", "-w", "16", "-W", "16", f"https://127.0.0.1:{sport}/big.bin",
                        f"https://127.0.0.1:{sport}/file1k.bin"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    h2load = subprocess.run(["h2load", "-n", "40", "-c", "2", "-m", "4", f"https://127.0.0.1:{sport}/big.bin"],
                            capture_output=True, timeout=60).stdout.decode()
    assert "40 succeeded" in h2load


def test_access_log_shows_http2(start_gateway, wwwroot, tmp_path):
    log = tmp_path / "access.log"
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path, extra={"logFilePath": str(log)})
    assert curl_write_out("--http2", "-k", f"https://127.0.0.1:{sport}/hello.txt") == "2 200"
    assert curl_write_out("--http1.1", "-k", f"https://127.0.0.1:{sport}/hello.txt") == "1.1 200"
    gw.check_clean_exit()
    text = log.read_text()
    assert '"GET /hello.txt HTTP/2.0" 200 12' in text
    assert '"GET /hello.txt HTTP/1.1" 200 12' in text


def make_ocsp_response(d):
    """A CA, a localhost certificate it signed and a "good" OCSP response for it (DER)."""
    d.mkdir(parents=True, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
        "-out", "ca.crt", "-subj", "/CN=testca", "-days", "2")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key", "-out",
        "leaf.csr", "-subj", "/CN=localhost")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "0x1234", "-out",
        "leaf.crt", "-days", "2")
    (d / "index.txt").write_text("V\t301231000000Z\t\t1234\tunknown\t/CN=localhost\n")
    run("ocsp", "-index", "index.txt", "-rsigner", "ca.crt", "-rkey", "ca.key", "-CA", "ca.crt", "-issuer", "ca.crt",
        "-cert", "leaf.crt", "-respout", "resp.der", "-ndays", "1")
    return d / "leaf.crt", d / "leaf.key", d / "resp.der"


def test_ocsp_stapling_from_file(start_gateway, wwwroot, tmp_path):
    cert, key, resp = make_ocsp_response(tmp_path / "pki")
    sport = free_port()
    start_gateway(tls_config(wwwroot, cert, key, sport, extra={"ocspResponseFile": str(resp)}))
    wait_port(sport)
    out = s_client(sport, "-status", "-servername", "localhost")
    assert "OCSP Response Status: successful" in out and "Cert Status: good" in out
    # without the property nothing is stapled
    gw2, sport2 = start_tls(start_gateway, wwwroot, tmp_path / "b")
    assert "OCSP response: no response sent" in s_client(sport2, "-status", "-servername", "localhost")


def test_client_certificate_required(start_gateway, wwwroot, tmp_path):
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path, extra={"useClientCertificate": True})
    r = curl("-k", f"https://127.0.0.1:{sport}/")
    assert r.returncode != 0  # no client certificate: the handshake fails
    # a certificate no trusted CA signed is refused as well
    ccert, ckey = make_cert(tmp_path / "client", "client.test")
    r = curl("-k", "--cert", str(ccert), "--key", str(ckey), f"https://127.0.0.1:{sport}/")
    assert r.returncode != 0
