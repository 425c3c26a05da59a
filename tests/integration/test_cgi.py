"""CGI programs (cgi): real php-cgi, shell, Python and Perl scripts, failures, kills and the cap."""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import PORT_PLACEHOLDER

SCRIPTS = {
    "cgi-bin/env.sh": "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\n"
                      "echo \"SCRIPT_NAME=$SCRIPT_NAME\"\necho \"PATH_INFO=$PATH_INFO\"\n"
                      "echo \"QUERY_STRING=$QUERY_STRING\"\necho \"REQUEST_METHOD=$REQUEST_METHOD\"\n"
                      "echo \"HTTPS=${HTTPS:-unset}\"\necho \"PWD=$(pwd)\"\necho \"HTTP_X_TEST=$HTTP_X_TEST\"\n"
                      "echo \"SCRIPT_FILENAME=$SCRIPT_FILENAME\"\n",
    "cgi-bin/echo.py": "#!/usr/bin/env python3\nimport os, sys, hashlib\n"
                       "n = int(os.environ.get('CONTENT_LENGTH') or 0)\nb = sys.stdin.buffer.read(n)\n"
                       "sys.stdout.write('Content-Type: text/plain\\r\\n\\r\\n')\n"
                       "sys.stdout.write('%d %s' % (len(b), hashlib.sha256(b).hexdigest()))\n",
    "cgi-bin/big.pl": "#!/usr/bin/perl\n$| = 0;\nprint \"Content-Type: application/octet-stream\\n\\n\";\n"
                      "my $c = '0123456789abcdef' x 4096;\nfor (1..256) { print $c; }\n",
    "cgi-bin/status.sh": "#!/bin/sh\nprintf 'Status: 418 Teapot\\r\\nX-From: cgi\\r\\n\\r\\nshort and stout'\n",
    "cgi-bin/location.sh": "#!/bin/sh\nprintf 'Location: /moved\\r\\n\\r\\n'\n",
    "cgi-bin/garbage.sh": "#!/bin/sh\necho 'this is not a header line'\necho\necho body\n",
    "cgi-bin/early.sh": "#!/bin/sh\nexit 3\n",
    "cgi-bin/never.sh": "#!/bin/sh\necho $$ > never.pid\nexec sleep 1000\n",
    "cgi-bin/slow.sh": "#!/bin/sh\necho $$ > slow.pid\nprintf 'Content-Type: text/plain\\n\\n'\n"
                       "while true; do echo tick; sleep 0.05; done\n",
    "cgi-bin/hold.sh": "#!/bin/sh\nsleep 1.5\nprintf 'Content-Type: text/plain\\n\\nheld'\n",
    "cgi-bin/stderr.sh": "#!/bin/sh\necho 'a note on stderr' >&2\nprintf 'Content-Type: text/plain\\n\\nfine'\n",
    "noexec.sh": "printf 'Content-Type: text/plain\\n\\nvia bash'\n",
    "info.php": "<?php header('X-Php: yes'); echo $_SERVER['SCRIPT_NAME'], '|', $_SERVER['PATH_INFO'] ?? '', '|', $_GET['q'] ?? '';",
    "form.php": "<?php echo strlen(file_get_contents('php://input'));",
}


@pytest.fixture
def cgi_site(tmp_path):
    root = tmp_path / "site"
    for name, code in SCRIPTS.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(code)
        if name.startswith("cgi-bin/"):
            p.chmod(0o755)
    (root / "static.txt").write_text("static\n")
    return root


def cgi_config(root, extra=""):
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [cgi]\n  wwwroot: \"{root}\"\n"
            f"  cgiScriptExtensions: [\".php\", \".sh\"]\n{extra}")


def gone(pid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_shell_cgi_variables(start_gateway, cgi_site):
    gw = start_gateway(cgi_config(cgi_site))
    r = gw.get("/cgi-bin/env.sh/more/info?x=1", headers={"X-Test": "v"})
    assert r.status == 200, r
    v = dict(line.split("=", 1) for line in r.body.decode().splitlines())
    assert v["SCRIPT_NAME"] == "/cgi-bin/env.sh"
    assert v["PATH_INFO"] == "/more/info"
    assert v["QUERY_STRING"] == "x=1" and v["REQUEST_METHOD"] == "GET"
    assert v["HTTPS"] == "unset"
    assert v["PWD"] == str(cgi_site / "cgi-bin")
    assert v["HTTP_X_TEST"] == "v"
    assert v["SCRIPT_FILENAME"] == str(cgi_site / "cgi-bin" / "env.sh")


def test_post_body_to_python(start_gateway, cgi_site):
    gw = start_gateway(cgi_config(cgi_site, "  maxRequestBodyBytes: 20000000\n"))
    body = os.urandom(3 * 1024 * 1024)
    status, _, data = gw.http("POST", "/cgi-bin/echo.py", body=body, timeout=30)
    import hashlib
    assert status == 200 and data.decode() == f"{len(body)} {hashlib.sha256(body).hexdigest()}"


def test_large_output_from_perl(start_gateway, cgi_site):
    gw = start_gateway(cgi_config(cgi_site))
    status, _, data = gw.http("GET", "/cgi-bin/big.pl", timeout=30)
    assert status == 200 and data == b"0123456789abcdef" * 4096 * 256


def test_status_location_and_interpreter(start_gateway, cgi_site):
    gw = start_gateway(cgi_config(cgi_site))
    r = gw.get("/cgi-bin/status.sh")
    assert r.status == 418 and r.body == b"short and stout" and r.header("x-from") == "cgi"
    r = gw.get("/cgi-bin/location.sh")
    assert r.status == 302 and r.header("location") == "/moved"
    r = gw.get("/noexec.sh")  # not executable: run by bash, the .sh interpreter
    assert r.status == 200 and r.body == b"via bash"
    assert gw.get("/static.txt").body == b"static\n"


@pytest.mark.skipif(not shutil.which("php-cgi"), reason="php-cgi not installed")
def test_php_cgi(start_gateway, cgi_site):
    gw = start_gateway(cgi_config(cgi_site))
    r = gw.get("/info.php/tail?q=z")
    assert r.status == 200 and r.header("x-php") == "yes", r
    assert r.body == b"/info.php|/tail|z"
    status, _, data = gw.http("POST", "/form.php", body=b"a=1&b=2",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and data == b"7"


def test_garbage_and_early_exit_are_502(start_gateway, cgi_site):
    gw = start_gateway(cgi_config(cgi_site))
    assert gw.get("/cgi-bin/garbage.sh").status == 502
    assert gw.get("/cgi-bin/early.sh").status == 502
    assert gw.get("/cgi-bin/status.sh").status == 418


def test_stderr_goes_to_error_log(start_gateway, cgi_site, tmp_path):
    log = tmp_path / "err.log"
    gw = start_gateway(cgi_config(cgi_site, f"  errorLogFilePath: \"{log}\"\n"))
    assert gw.get("/cgi-bin/stderr.sh").body == b"fine"
    time.sleep(0.3)
    assert "a note on stderr" in (log.read_text() if log.exists() else gw.stderr())


def test_never_ending_program_is_504_and_killed(start_gateway, cgi_site):
    gw = start_gateway(cgi_config(cgi_site, "  proxyReadTimeout: 700\n"))
    t = time.monotonic()
    r = gw.get("/cgi-bin/never.sh", timeout=10)
    assert r.status == 504 and time.monotonic() - t < 5
    pid = int((cgi_site / "cgi-bin" / "never.pid").read_text())
    assert gone(pid), "the CGI program is still running"


def test_client_disconnect_kills_program(start_gateway, cgi_site):
    gw = start_gateway(cgi_config(cgi_site))
    c = gw.connect()
    c.send(b"GET /cgi-bin/slow.sh HTTP/1.1\r\nHost: x\r\n\r\n")
    c.read_head()
    pid = int((cgi_site / "cgi-bin" / "slow.pid").read_text())
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    assert gone(pid), "the CGI program outlived its client"
    assert gw.get("/cgi-bin/status.sh").status == 418


def test_concurrent_cap(start_gateway, cgi_site):
    gw = start_gateway(cgi_config(cgi_site, "  cgiMaxProcesses: 1\n"))
    c = gw.connect()
    c.send(b"GET /cgi-bin/hold.sh HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    assert gw.get("/cgi-bin/status.sh").status == 503
    r = c.read_response()
    assert r.status == 200 and r.body == b"held"
    c.close()
    time.sleep(0.2)
    assert gw.get("/cgi-bin/status.sh").status == 418


def test_no_program_outside_root(start_gateway, cgi_site, tmp_path):
    outside = tmp_path / "outside.sh"
    outside.write_text("#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nescaped'\n")
    outside.chmod(0o755)
    (cgi_site / "cgi-bin" / "link.sh").symlink_to(outside)
    gw = start_gateway(cgi_config(cgi_site))
    r = gw.get("/cgi-bin/link.sh")
    assert r.status != 200 and b"escaped" not in r.body
    r = gw.get("/cgi-bin/../../outside.sh")
    assert b"escaped" not in r.body


def test_chunked_body_is_spooled(start_gateway, cgi_site):
    # read ahead in full, then given to the program with CONTENT_LENGTH (more cases: test_spool.py)
    gw = start_gateway(cgi_config(cgi_site))
    with gw.connect() as c:
        c.send(b"POST /cgi-bin/echo.py HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        r = c.read_response()
    assert r.status == 200
    assert r.body == b"3 " + hashlib.sha256(b"abc").hexdigest().encode()
    time.sleep(0.3)  # the program may still be exiting: let it be reaped before the gateway stops


ENV_SCRIPT = ("#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\n"
              "echo \"GREETING=$GREETING\"\necho \"REMOTE_ADDR=$REMOTE_ADDR\"\necho \"GATEWAY_INTERFACE=$GATEWAY_INTERFACE\"\n")


def env_config(root, greeting):
    return cgi_config(root, f"  environmentVariables:\n    GREETING: \"{greeting}\"\n"
                            "    REMOTE_ADDR: 203.0.113.9\n    GATEWAY_INTERFACE: none\n")


def test_environment_variables_follow_reloads_and_never_override_cgi_variables(start_gateway, cgi_site):
    script = cgi_site / "cgi-bin" / "vars.sh"
    script.write_text(ENV_SCRIPT)
    script.chmod(0o755)
    gw = start_gateway(env_config(cgi_site, "hello"))

    def variables():
        r = gw.get("/cgi-bin/vars.sh")
        assert r.status == 200, r
        return dict(line.split("=", 1) for line in r.body.decode().splitlines())

    v = variables()
    assert v == {"GREETING": "hello", "REMOTE_ADDR": "127.0.0.1", "GATEWAY_INTERFACE": "CGI/1.1"}, v
    gw.config_path.write_text(env_config(cgi_site, "bye").replace(PORT_PLACEHOLDER, str(gw.port)))
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "generation 2 is in use" not in gw.stderr():
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.02)
    time.sleep(0.05)  # the worker adopts it at its next loop iteration
    assert variables()["GREETING"] == "bye"
    assert "environmentVariables take effect after a restart" not in gw.stderr()
    assert "environmentVariables changed: CGI programs get the new values" in gw.stderr()


def test_environment_variable_names_are_checked(gateway_bin, tmp_path):
    cfg = tmp_path / "env.yaml"
    cfg.write_text("global:\n  port: 8080\n  environmentVariables:\n    OK: yes\n    \"A=B\": x\n")
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert f"{cfg}:5:5: environmentVariables: 'A=B' is not a variable name (empty or with '=')" in out.stderr, out.stderr


@pytest.mark.parametrize("spoof", ["X_Test", "x.test", "X_TEST"])
def test_header_names_that_collide_with_a_cgi_variable_are_left_out(start_gateway, cgi_site, spoof):
    """X_Test would become HTTP_X_TEST like X-Test; a client could override what a proxy set."""
    gw = start_gateway(cgi_config(cgi_site))
    for headers in ({"X-Test": "real", spoof: "forged"}, {spoof: "forged", "X-Test": "real"}):
        r = gw.get("/cgi-bin/env.sh", headers=headers)
        assert r.status == 200, r
        v = dict(line.split("=", 1) for line in r.body.decode().splitlines())
        assert v["HTTP_X_TEST"] == "real"
