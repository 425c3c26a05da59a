"""
TLS session-ticket key rotation (sessionTicketKeyRotation), client certificates verified against
our own CA (useClientCertificate + clientCertificateCaFile), and a handshake whose server flight
does not fit into the socket buffer (the gateway must wait for the socket to drain, not for input).
"""
import socket
import ssl
import subprocess
import time

from conftest import INDEX_HTML
from tls_helpers import curl, make_cert, start_tls, tls_config


def s_client(port, *args):
    """openssl s_client sending one request and reading to the end, so TLS 1.3 tickets arrive."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ign_eof", "-tls1_3",
                        "-servername", "localhost", *args],
                       input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                       capture_output=True, timeout=15)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def test_ticket_keys_rotate(start_gateway, wwwroot, tmp_path):
    period = 2  # a key rotates at the first handshake at least `period` seconds after it became current
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path, extra={"sessionTicketKeyRotation": period})
    sess = tmp_path / "sess.pem"
    assert "New," in s_client(sport, "-sess_out", str(sess))
    assert "Reused," in s_client(sport, "-sess_in", str(sess))
    time.sleep(period + 0.2)
    # the first handshake after the period rotates: the ticket's key becomes the previous one,
    # which still decrypts (and the client gets a ticket under the new key)
    assert "New," in s_client(sport)
    assert "Reused," in s_client(sport, "-sess_in", str(sess))
    time.sleep(period + 0.2)
    # a second rotation: the ticket's key is gone, a full handshake follows
    assert "New," in s_client(sport)
    again = s_client(sport, "-sess_in", str(sess))
    assert "Reused," not in again and "New," in again


def test_rotation_period_is_checked(gateway_bin, wwwroot, tmp_path):
    cert, key = make_cert(tmp_path / "certs", "localhost")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(tls_config(wwwroot, cert, key, 8443, port=8080, extra={"sessionTicketKeyRotation": 0}))
    r = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, timeout=20)
    assert r.returncode == 1 and b"sessionTicketKeyRotation" in r.stderr, r.stderr


def make_ca_and_client(d):
    """A CA, a client certificate it signed, and a self-signed client certificate."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = d / "ca.key", d / "ca.crt"
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2", "-subj", "/CN=test client CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    key, csr, crt = d / "client.key", d / "client.csr", d / "client.crt"
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
        "-out", str(csr), "-subj", "/CN=alice")
    ext = d / "client.ext"
    ext.write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return ca_crt, (crt, key), make_cert(d / "other", "mallory")


def test_client_certificate_login(start_gateway, wwwroot, tmp_path):
    ca, (ccert, ckey), (scert, skey) = make_ca_and_client(tmp_path / "pki")
    gw, sport = start_tls(start_gateway, wwwroot, tmp_path,
                          extra={"useClientCertificate": True, "clientCertificateCaFile": str(ca)})
    url = f"https://127.0.0.1:{sport}/"
    for proto in ("--http1.1", "--http2"):
        ok = curl("-k", proto, "--cert", str(ccert), "--key", str(ckey), url)
        assert ok.returncode == 0 and ok.stdout == INDEX_HTML, ok
    assert curl("-k", url).returncode != 0  # no certificate
    assert curl("-k", "--cert", str(scert), "--key", str(skey), url).returncode != 0  # not from our CA
    # the CertificateRequest names our CA
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{sport}", "-cert", str(ccert),
                          "-key", str(ckey)], input=b"", capture_output=True, timeout=15).stdout.decode()
    assert "Acceptable client certificate CA names" in out and "CN = test client CA" in out, out


def test_client_ca_file_errors_are_located(gateway_bin, wwwroot, tmp_path):
    cert, key = make_cert(tmp_path / "certs", "localhost")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(tls_config(wwwroot, cert, key, 8443, port=8080,
                              extra={"useClientCertificate": True,
                                     "clientCertificateCaFile": str(tmp_path / "missing-ca.pem")}))
    r = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, timeout=20)
    assert r.returncode == 1
    assert b"bad.yaml:" in r.stderr and b"clientCertificateCaFile: cannot load CA certificates" in r.stderr


def test_handshake_waits_for_room_to_write(start_gateway, wwwroot, tmp_path):
    """A 700 KB certificate on a Unix-socket HTTPS listener (a fixed socket buffer of a few hundred KB)
    and a client that reads nothing for a while: the server's flight fills the socket, and the
    handshake must go on when the socket drains, not only when more input comes (which never does:
    the client waits for the rest of the flight)."""
    d = tmp_path / "certs"
    d.mkdir()
    sans = ",".join(["DNS:localhost"] + [f"DNS:host-{i:06d}.padding.example.test" for i in range(20000)])
    (d / "ext.cnf").write_text(f"[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName={sans}\n")
    cert, key = d / "big.crt", d / "big.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-config", str(d / "ext.cnf"), "-extensions", "ext"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "der"], check=True,
                         capture_output=True).stdout
    assert len(der) > 600_000
    path = tmp_path / "tls.sock"
    start_gateway(tls_config(wwwroot, cert, key, f'"unix:{path}"'))
    deadline = time.monotonic() + 10
    while not path.exists():
        assert time.monotonic() < deadline, "no Unix listener"
        time.sleep(0.05)

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        sock.sendall(outgoing.read())  # the ClientHello, then nothing
        time.sleep(1.0)  # the gateway writes until the socket is full
        sock.settimeout(3.0)
        total = 0
        try:
            while total < len(der):  # the flight holds the whole certificate
                data = sock.recv(262144)
                if not data:
                    break
                total += len(data)
        except socket.timeout:
            pass
        assert total >= len(der), f"the handshake stalled after {total} of more than {len(der)} bytes"
