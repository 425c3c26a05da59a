"""Debian's pebble (a small ACME test CA, RFC 8555) on loopback for the automatic TLS tests.

Pebble's API is served with a throw-away localhost certificate (the gateway trusts it through
automaticTLSCaFile); its validator resolves names through DnsServer (dnsserver.py) and connects to
the gateway's ports for http-01 / tls-alpn-01. Its issuing root comes from the management port.
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request

from conftest import free_port
from tls_helpers import make_cert

PEBBLE = shutil.which("pebble")


class Pebble:
    """Ports and the API certificate are chosen at once; start() runs pebble once the gateway's
    ports are known (http-01 connects to the gateway's plain port)."""

    def __init__(self, workdir):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = make_cert(self.dir, "localhost", ["DNS:localhost", "IP:127.0.0.1"])
        self.port, self.mgmt_port = free_port(), free_port()
        self.proc = None
        self.log = None

    def start(self, dns_port, http_port, tls_port, env=None, validity=None):
        conf = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}", "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
            "certificate": str(self.cert), "privateKey": str(self.key),
            "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
            "externalAccountBindingRequired": False}}
        if validity:
            conf["pebble"]["certificateValidityPeriod"] = validity
        (self.dir / "pebble.json").write_text(json.dumps(conf))
        full_env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
        full_env.update(env or {})
        self.log = open(self.dir / "pebble.log", "wb")
        self.proc = subprocess.Popen(
            [PEBBLE, "-config", str(self.dir / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}", "-strict"],
            stdout=self.log, stderr=subprocess.STDOUT, env=full_env, cwd=str(self.dir))
        self._wait()
        return self

    @property
    def directory(self):
        return f"https://localhost:{self.port}/dir"

    @property
    def directory_by_address(self):
        """The same by IP address: the certificate is then checked against its IP SAN."""
        return f"https://127.0.0.1:{self.port}/dir"

    def _wait(self):
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("pebble did not start:\n" + self.output())
                time.sleep(0.05)

    def output(self):
        self.log.flush()
        return (self.dir / "pebble.log").read_text(errors="replace")

    def root_pem(self):
        """The root that issued the certificates (it changes with every pebble start)."""
        ctx = ssl.create_default_context(cafile=str(self.cert))
        with urllib.request.urlopen(f"https://localhost:{self.mgmt_port}/roots/0", context=ctx, timeout=5) as r:
            return r.read()

    def stop(self):
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
