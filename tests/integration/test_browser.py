"""
A real browser: headless Chromium loads the demo site (the repository's www/: index.html and its
stylesheet) over https://localhost:<port> and speaks HTTP/2 to the gateway. The certificate is made
by the test and trusted by its public-key hash only (--ignore-certificate-errors-spki-list), so a
broken handshake or a wrong certificate shows as Chromium's error page, not as the demo page. The
protocol is read from the gateway's access log.

Skipped (with the reason) only when no Chromium is installed (Debian package `chromium`).
"""
import base64
import hashlib
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import REPO_ROOT, free_port
from tls_helpers import make_cert, tls_config, wait_port

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)
BROWSER_TIMEOUT = 60


def spki_hash(cert):
    """Base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo (DER), as Chromium wants it."""
    pem = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pem, check=True,
                         capture_output=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def run_chromium(url, spki, *mode):
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                f"--ignore-certificate-errors-spki-list={spki}", *mode, url]
        try:
            return subprocess.run(args, capture_output=True, timeout=BROWSER_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"chromium did not finish within {BROWSER_TIMEOUT} s: {(e.stderr or b'')[-2000:]!r}")
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def access_lines(log):
    return log.read_text(errors="replace").splitlines() if log.exists() else []


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package `chromium`)")
def test_chromium_loads_demo_site_over_h2(start_gateway, tmp_path):
    cert, key = make_cert(tmp_path / "certs", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    sport = free_port()
    log = tmp_path / "access.log"
    gw = start_gateway(tls_config(REPO_ROOT / "www", cert, key, sport, extra={"logFilePath": str(log)}))
    wait_port(sport)

    r = run_chromium(f"https://localhost:{sport}/", spki_hash(cert), "--dump-dom")
    dom = r.stdout.decode(errors="replace")
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    assert "It works." in dom, (dom[-2000:], r.stderr.decode(errors="replace")[-3000:])

    shot = tmp_path / "page.png"
    r = run_chromium(f"https://localhost:{sport}/", spki_hash(cert), f"--screenshot={shot}",
                     "--window-size=800,600")
    assert r.returncode == 0 and shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", \
        r.stderr.decode(errors="replace")[-3000:]

    gw.stop()  # flushes the access log
    lines = access_lines(log)
    req = re.compile(r'"(\w+) (\S+) (HTTP/[\d.]+)" (\d{3}) ')
    seen = [m.groups() for m in map(req.search, lines) if m]
    assert ("GET", "/", "HTTP/2.0", "200") in seen, lines
    assert ("GET", "/style.css", "HTTP/2.0", "200") in seen, lines
    # everything the browser asked for went over HTTP/2 (the page, its stylesheet, the favicon)
    assert all(v == "HTTP/2.0" for _, _, v, _ in seen), lines
