"""
Helpers for the TLS and HTTP/2 integration tests: throw-away certificates made with the openssl
command-line tool, configs with an HTTPS listener, curl runs, and raw HTTP/2 frames.
"""
import socket
import ssl
import struct
import subprocess
import time
from pathlib import Path

from conftest import free_port, yaml_scalar

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types and error codes (RFC 9113)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, COMPRESSION_ERROR = 0, 1, 2, 3, 6, 9
ENHANCE_YOUR_CALM = 11


def make_cert(directory, name, sans=None):
    """A self-signed ECDSA P-256 certificate for `name`; returns (cert_path, key_path)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = name.replace("*", "wildcard")
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    san = ",".join(sans or [f"DNS:{name}"])
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName={san}"],
        check=True, capture_output=True)
    return cert, key


def tls_config(wwwroot, cert, key, sport, workers=1, sni=None, extra=None, port="@PORT@"):
    """YAML text: HTTP on @PORT@ (the harness waits for it), HTTPS on `sport`, no redirect to
    HTTPS. `sni` maps names to (cert, key); `extra` is a dict of more global properties (scalars or
    YAML text for lists)."""
    lines = ["global:", f"  port: {port}", f"  sport: {sport}", "  secure: true", f"  workers: {workers}",
             f"  wwwroot: {yaml_scalar(str(wwwroot))}", f"  cert: {yaml_scalar(str(cert))}",
             f"  key: {yaml_scalar(str(key))}", "  disableToHTTPSRedirect: true"]
    for k, v in (extra or {}).items():
        lines.append(f"  {k}: {v if isinstance(v, str) and v.startswith('[') else yaml_scalar(v)}")
    if sni:
        lines.append("  sni:")
        for name, (c, k) in sni.items():
            lines.append(f"    {yaml_scalar(name)}:")
            lines.append(f"      cert: {yaml_scalar(str(c))}")
            lines.append(f"      key: {yaml_scalar(str(k))}")
    return "\n".join(lines) + "\n"


def start_tls(start_gateway, wwwroot, tmp_path, **kw):
    """Starts a gateway with the default certificate for localhost; returns (gateway, sport)."""
    cert, key = make_cert(tmp_path / "certs", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    sport = free_port()
    gw = start_gateway(tls_config(wwwroot, cert, key, sport, **kw))
    wait_port(sport)
    return gw, sport


def wait_port(port, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def curl(*args, timeout=20):
    """Runs curl -s with `args`; returns the CompletedProcess (stdout bytes)."""
    return subprocess.run(["curl", "-s", "--max-time", str(timeout), *args], capture_output=True, timeout=timeout + 5)


def curl_write_out(*args, fmt="%{http_version} %{http_code}"):
    """curl's -w output for a request whose body is discarded."""
    r = curl("-o", "/dev/null", "-w", fmt, *args)
    return r.stdout.decode()


# ---- raw HTTP/2 frames ----

def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id) + payload


def settings_frame(**values):
    ids = {"max_frame_size": 5, "initial_window_size": 4, "max_concurrent_streams": 3}
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", ids[k], v) for k, v in values.items()))


def parse_frames(data):
    """Splits bytes into (type, flags, stream_id, payload) tuples (a truncated tail is dropped)."""
    out = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        if len(data) < 9 + length:
            break
        out.append((data[3], data[4], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF, data[9:9 + length]))
        data = data[9 + length:]
    return out


def goaway_code(frames):
    """The error code of the first GOAWAY among `frames`, or None."""
    for t, _, _, p in frames:
        if t == GOAWAY and len(p) >= 8:
            return int.from_bytes(p[4:8], "big")
    return None


def read_until_close(sock, timeout=5.0):
    """Every byte until the peer closes or `timeout` passes; returns (bytes, closed)."""
    out = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return out, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return out, False
        except (ConnectionResetError, ssl.SSLError, OSError):
            return out, True
        if not chunk:
            return out, True
        out += chunk


def tls_socket(port, alpn=("h2",), server_name="localhost"):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname=server_name)
