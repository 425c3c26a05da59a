"""Configuration loading through the command line: `-t`, located errors, warnings, Ferron examples."""
import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, SANITIZER_MARKERS, child_env, make_config

EXAMPLES_DIR = REPO_ROOT.parent / "shared" / "spec" / "ferron-examples"


def run(gateway_bin, *args, timeout=15, cwd=None):
    p = subprocess.run([str(gateway_bin), *args], capture_output=True, text=True, timeout=timeout,
                       env=child_env(), cwd=cwd)
    for m in SANITIZER_MARKERS:
        assert m not in p.stderr, p.stderr
    return p


def check(gateway_bin, tmp_path, text, name="gateway.yaml"):
    cfg = tmp_path / name
    cfg.write_text(text)
    return cfg, run(gateway_bin, "-t", "-c", str(cfg))


def assert_error(p, cfg, line, col, prop=None, contains=None):
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    prefix = f"{cfg}:{line}:{col}: " + (f"{prop}: " if prop else "")
    lines = p.stderr.splitlines()
    hits = [ln for ln in lines if ln.startswith(prefix)]
    assert hits, f"no line starting with {prefix!r} in:\n{p.stderr}"
    if contains:
        assert any(contains in h for h in hits), p.stderr


# ---- success ----


def test_check_success(gateway_bin, tmp_path):
    cfg, p = check(gateway_bin, tmp_path, make_config(tmp_path, port=8080))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"configuration {cfg} test is successful"


def test_check_full_featured_config(gateway_bin, tmp_path):
    text = f"""\
global:
  port: "127.0.0.1:8080"
  workers: 2
  wwwroot: "{tmp_path}"
  logFilePath: "{tmp_path}/access.log"
  errorLogFilePath: "{tmp_path}/error.log"
  maxRequestHeaderBytes: 16384
  maxRequestHeaders: 100
  maxRequestTargetBytes: 8192
  maxRequestBodyBytes: 10485760
  headerReadTimeout: 30000
  keepaliveTimeout: 60000
  sendTimeout: 60000
  timeout: null
  enableETag: true
  allowDoubleSlashes: false
  disableTrailingSlashRedirects: false
hosts:
  - domain: example.com
    ip: 127.0.0.1
    wwwroot: "{tmp_path}"
    locations:
      - path: /docs
        wwwroot: "{tmp_path}"
        enableETag: false
  - domain: "*.example.com"
    serverAdministratorEmail: admin@example.com
  - domain: "*"
    maxRequestBodyBytes: 0
"""
    cfg, p = check(gateway_bin, tmp_path, text)
    assert p.returncode == 0, p.stderr
    assert "test is successful" in p.stdout
    # -t must not create the log files or bind anything
    assert not (tmp_path / "access.log").exists()


def test_check_empty_file(gateway_bin, tmp_path):
    cfg, p = check(gateway_bin, tmp_path, "")
    assert p.returncode == 0, p.stderr


def test_version_and_help(gateway_bin):
    p = run(gateway_bin, "-v")
    assert p.returncode == 0 and p.stdout.startswith("gateway ")
    p = run(gateway_bin, "--help")
    assert p.returncode == 0
    for prop in ("port", "wwwroot", "maxRequestHeaderBytes", "keepaliveTimeout", "enableETag"):
        assert re.search(rf"^\s+{prop}\s", p.stdout, re.M), prop


def test_bad_argument(gateway_bin):
    p = run(gateway_bin, "--no-such-flag")
    assert p.returncode != 0
    assert "usage" in p.stderr


# ---- fatal errors, located ----


def test_yaml_syntax_error(gateway_bin, tmp_path):
    cfg, p = check(gateway_bin, tmp_path, "global:\n  port: 8080\n wwwroot: /x\n")
    assert_error(p, cfg, 3, 2)


def test_yaml_unclosed_flow(gateway_bin, tmp_path):
    cfg, p = check(gateway_bin, tmp_path, "global:\n  port: [8080\n  workers: 1\n")
    assert p.returncode == 1
    assert re.search(rf"^{re.escape(str(cfg))}:\d+:\d+: ", p.stderr, re.M), p.stderr
    assert "2:9" in p.stderr  # where the sequence started


def test_each_error_on_its_own_line(gateway_bin, tmp_path):
    """Errors are printed one per line; the final verdict is a line of its own."""
    for text in ("global:\n  port: 8080\n wwwroot: /x\n",       # YAML syntax
                 "global:\n  port: 8080\n  port: 8081\n",       # duplicate key
                 "global:\n  port: abc\n"):                     # type error
        cfg, p = check(gateway_bin, tmp_path, text)
        assert p.returncode == 1
        lines = p.stderr.splitlines()
        assert "configuration test failed" in lines, p.stderr
        assert all(ln.startswith(str(cfg)) or ln == "configuration test failed" for ln in lines if ln), p.stderr


def test_missing_file(gateway_bin, tmp_path):
    p = run(gateway_bin, "-t", "-c", str(tmp_path / "nope.yaml"))
    assert p.returncode == 1
    assert str(tmp_path / "nope.yaml") in p.stderr


def test_duplicate_key(gateway_bin, tmp_path):
    cfg, p = check(gateway_bin, tmp_path, "global:\n  port: 8080\n  port: 8081\n")
    assert_error(p, cfg, 3, 3, contains="duplicate key 'port'")


@pytest.mark.parametrize("text,line,col,prop", [
    ("global:\n  port: abc\n", 2, 9, "port"),
    ("global:\n  port: 70000\n", 2, 9, "port"),
    ("global:\n  port: \"127.0.0.1:abc\"\n", 2, 9, "port"),
    ("global:\n  port: 8080\n  enableETag: \"yes\"\n", 3, 15, "enableETag"),
    ("global:\n  port: 8080\n  enableETag: 1\n", 3, 15, "enableETag"),
    ("global:\n  port: 8080\n  workers: 1.5\n", 3, 12, "workers"),
    ("global:\n  port: 8080\n  workers: \"2\"\n", 3, 12, "workers"),
    ("global:\n  port: 8080\n  wwwroot:\n    - /a\n", 4, 5, "wwwroot"),
    ("global:\n  port: 8080\n  maxRequestHeaders: 0\n", 3, 22, "maxRequestHeaders"),
    ("global:\n  port: 8080\n  keepaliveTimeout: -1\n", 3, 21, "keepaliveTimeout"),
    ("global:\n  loadModules: cgi\n", 2, 16, "loadModules"),
    ("hosts:\n  - domain: a.example\n    enableETag: maybe\n", 3, 17, "enableETag"),
    ("hosts:\n  - domain: a.example\n    locations:\n      - path: /x\n        allowDoubleSlashes: 2\n", 5, 29,
     "allowDoubleSlashes"),
])
def test_wrong_type(gateway_bin, tmp_path, text, line, col, prop):
    cfg, p = check(gateway_bin, tmp_path, text)
    assert_error(p, cfg, line, col, prop)


@pytest.mark.parametrize("text,line,col,prop", [
    ("global:\n  port: 8080\nhosts:\n  - domain: example.com\n    port: 8081\n", 5, 5, "port"),
    ("global:\n  port: 8080\nhosts:\n  - domain: example.com\n    workers: 2\n", 5, 5, "workers"),
    ("global:\n  port: 8080\nhosts:\n  - domain: e.com\n    locations:\n      - path: /a\n        logFilePath: /x\n",
     7, 9, "logFilePath"),
    ("global:\n  path: /x\n", 2, 3, "path"),
    ("global:\n  domain: example.com\n", 2, 3, "domain"),
    ("global:\n  port: 8080\nhosts:\n  - domain: e.com\n    path: /x\n", 5, 5, "path"),
    ("hosts:\n  - domain: e.com\n    locations:\n      - path: /a\n        domain: x.com\n", 5, 9, "domain"),
    ("hosts:\n  - domain: e.com\n    scode: 404\n", 3, 5, "scode"),
])
def test_wrong_scope(gateway_bin, tmp_path, text, line, col, prop):
    cfg, p = check(gateway_bin, tmp_path, text)
    assert_error(p, cfg, line, col, prop, contains="not allowed")


def test_locations_in_global(gateway_bin, tmp_path):
    cfg, p = check(gateway_bin, tmp_path, "global:\n  port: 8080\n  locations:\n    - path: /a\n")
    assert p.returncode == 1
    assert f"{cfg}:3:" in p.stderr and "locations" in p.stderr


def test_nested_locations(gateway_bin, tmp_path):
    text = "hosts:\n  - domain: a\n    locations:\n      - path: /a\n        locations:\n          - path: /b\n"
    cfg, p = check(gateway_bin, tmp_path, text)
    assert p.returncode == 1
    assert f"{cfg}:" in p.stderr and "locations" in p.stderr


def test_host_needs_domain_or_ip(gateway_bin, tmp_path):
    cfg, p = check(gateway_bin, tmp_path, "hosts:\n  - wwwroot: /tmp\n")
    assert_error(p, cfg, 2, 5, "hosts")


def test_host_bad_ip(gateway_bin, tmp_path):
    cfg, p = check(gateway_bin, tmp_path, "hosts:\n  - domain: a.com\n    ip: notanip\n")
    assert_error(p, cfg, 3, 9, "ip", contains="notanip")


def test_unknown_module(gateway_bin, tmp_path):
    cfg, p = check(gateway_bin, tmp_path, "global:\n  port: 8080\n  loadModules:\n    - nosuchmod\n")
    assert_error(p, cfg, 4, 7, "loadModules", contains="nosuchmod")


def test_include_is_merged(gateway_bin, tmp_path):
    """`include` is implemented (test_config_include.py); an included host's error names its file."""
    (tmp_path / "other.yaml").write_text("hosts:\n  - domain: x.com\n    workers: 3\n")
    cfg, p = check(gateway_bin, tmp_path, "global:\n  port: 8080\ninclude:\n  - other.yaml\n")
    assert_error(p, tmp_path / "other.yaml", 3, 5, "workers")


def test_several_errors_all_reported(gateway_bin, tmp_path):
    text = "global:\n  port: abc\n  path: /x\nhosts:\n  - domain: e.com\n    workers: 3\n"
    cfg, p = check(gateway_bin, tmp_path, text)
    assert_error(p, cfg, 2, 9, "port")
    assert_error(p, cfg, 3, 3, "path")
    assert_error(p, cfg, 6, 5, "workers")


def test_broken_config_refuses_to_start(gateway_bin, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("global:\n  port: abc\n")
    p = run(gateway_bin, "-c", str(cfg))
    assert p.returncode == 1
    assert f"{cfg}:2:9: port:" in p.stderr


def test_listen_address_in_use(gateway_bin, tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(make_config(tmp_path, port=f'"127.0.0.1:{s.getsockname()[1]}"'))
        p = run(gateway_bin, "-c", str(cfg))
        assert p.returncode == 1
        assert "cannot listen" in p.stderr
    finally:
        s.close()


# ---- warnings only ----


def test_unknown_property_only_warns(gateway_bin, tmp_path):
    cfg, p = check(gateway_bin, tmp_path, "global:\n  port: 8080\n  fooBar: 1\n  wwwrot: /tmp\n")
    assert p.returncode == 0, p.stderr
    assert "test is successful" in p.stdout
    assert f"{cfg}:3:3: " in p.stderr and "fooBar" in p.stderr
    assert f"{cfg}:4:3: " in p.stderr and "did you mean 'wwwroot'" in p.stderr


def test_unknown_property_in_host_and_location_only_warns(gateway_bin, tmp_path):
    text = "hosts:\n  - domain: a.com\n    colour: blue\n    locations:\n      - path: /x\n        shape: round\n"
    cfg, p = check(gateway_bin, tmp_path, text)
    assert p.returncode == 0, p.stderr
    assert f"{cfg}:3:5: " in p.stderr and "colour" in p.stderr
    assert f"{cfg}:6:9: " in p.stderr and "shape" in p.stderr


def test_unknown_top_level_key_only_warns(gateway_bin, tmp_path):
    cfg, p = check(gateway_bin, tmp_path, "global:\n  port: 8080\nextra:\n  a: 1\n")
    assert p.returncode == 0, p.stderr
    assert f"{cfg}:3:1: " in p.stderr


def test_module_property_with_module_loaded_in_global(gateway_bin, tmp_path):
    """A module property next to a loadModules that lists its module must not be reported as
    belonging to a module that is not loaded."""
    text = "global:\n  port: 8080\n  loadModules:\n    - cgi\n  cgiScriptExtensions:\n    - .php\n"
    cfg, p = check(gateway_bin, tmp_path, text)
    if p.returncode == 1:
        # a build may refuse a module it does not have: that error must name the module line
        assert f"{cfg}:4:7: loadModules:" in p.stderr, p.stderr
        pytest.skip("this build has no cgi module")
    assert "not in loadModules" not in p.stderr, p.stderr


def test_module_property_without_module_warns(gateway_bin, tmp_path):
    cfg, p = check(gateway_bin, tmp_path, "global:\n  port: 8080\n  proxyTo: http://127.0.0.1:1/\n")
    assert p.returncode == 0, p.stderr
    assert f"{cfg}:3:3: " in p.stderr and "proxyTo" in p.stderr


# ---- the Ferron 1.x examples ----

EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.glob("*.yaml")) if EXAMPLES_DIR.is_dir() else []


@pytest.mark.skipif(not EXAMPLES, reason="Ferron example configurations not available")
@pytest.mark.parametrize("name", EXAMPLES)
def test_ferron_example_loads(gateway_bin, name):
    """Each example loads with -t, or fails only with errors that name a file missing here."""
    path = EXAMPLES_DIR / name
    p = run(gateway_bin, "-t", "-c", str(path))
    if p.returncode == 0:
        assert "test is successful" in p.stdout
        return
    errors = [ln for ln in p.stderr.splitlines()
              if ln.strip() and "[warn]" not in ln and "[notice]" not in ln and ln != "configuration test failed"]
    assert errors, p.stderr
    for ln in errors:
        named = re.findall(r"'(/[^']+)'|\"(/[^\"]+)\"|(/[\w./-]+)", ln.split(": ", 1)[-1])
        files = [a or b or c for a, b, c in named]
        assert files and all(not Path(f).exists() for f in files), \
            f"{name}: error that names no missing file: {ln}\n(full stderr:\n{p.stderr})"
