"""SERVER_PROTOCOL as CGI, FastCGI (PHP-FPM) and SCGI applications see it: the protocol the client
spoke to the gateway (HTTP/2.0 for h2c with prior knowledge, HTTP/1.1, HTTP/1.0), not the one the
gateway speaks to the application."""
import json

import pytest

from cgi_backends import PhpFpm, ScgiServer, find_php_fpm
from conftest import PORT_PLACEHOLDER
from tls_helpers import curl

pytestmark = pytest.mark.skipif(not find_php_fpm(), reason="php-fpm not installed")

CLIENTS = {"HTTP/2.0": "--http2-prior-knowledge", "HTTP/1.1": "--http1.1", "HTTP/1.0": "--http1.0"}


@pytest.fixture
def apps(tmp_path):
    site = tmp_path / "site"
    (site / "cgi-bin").mkdir(parents=True)
    cgi = site / "cgi-bin" / "proto.sh"
    cgi.write_text("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s' \"$SERVER_PROTOCOL\"\n")
    cgi.chmod(0o755)
    (site / "proto.php").write_text("<?php echo $_SERVER['SERVER_PROTOCOL'];")
    fpm, scgi = PhpFpm(tmp_path / "fpm", children=2), ScgiServer()
    yield site, fpm, scgi
    fpm.stop()
    scgi.close()


def fetch(gw, option, path):
    r = curl("-sS", "--fail-with-body", option, f"http://127.0.0.1:{gw.port}{path}")
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_each_application_sees_the_client_protocol(start_gateway, apps):
    site, fpm, scgi = apps
    gw = start_gateway(f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n"
                       f"  loadModules: [cgi, fcgi, scgi]\n  wwwroot: \"{site}\"\n"
                       f"  fcgiScriptExtensions: [\".php\"]\n  fcgiTo: \"{fpm.url}\"\n"
                       f"  scgiPath: \"/app\"\n  scgiTo: \"{scgi.url}\"\n")
    for protocol, option in CLIENTS.items():
        assert fetch(gw, option, "/cgi-bin/proto.sh") == protocol.encode(), option
        assert fetch(gw, option, "/proto.php") == protocol.encode(), option
        env = dict(json.loads(fetch(gw, option, "/app/env"))["env"])
        assert env["SERVER_PROTOCOL"] == protocol, option
