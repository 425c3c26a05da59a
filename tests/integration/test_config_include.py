"""`include` globs and environment overrides (spec §1): merge rules, loops, located errors, reload."""
import os
import re
import signal
import subprocess
import time

from conftest import INDEX_HTML, make_config, yaml_scalar


def check(gateway_bin, path, env=None):
    full = dict(os.environ)
    for k in list(full):
        if k.startswith(("FERRON_", "GATEWAY_")) and k != "GATEWAY_BIN":
            del full[k]
    full.update(env or {})
    return subprocess.run([str(gateway_bin), "-t", "-c", str(path)], capture_output=True, timeout=20, env=full)


def site(root, text):
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(text)
    return root


def test_include_appends_hosts_and_replaces_global_keys(start_gateway, wwwroot, tmp_path):
    a, b, g = site(tmp_path / "a", "site a\n"), site(tmp_path / "b", "site b\n"), site(tmp_path / "g", "global\n")
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    (conf_d / "10-b.yaml").write_text(
        f"global:\n  wwwroot: {yaml_scalar(str(g))}\nhosts:\n  - domain: b.test\n    wwwroot: {yaml_scalar(str(b))}\n")
    (conf_d / "20-empty.yaml").write_text("")
    (conf_d / "ignored.txt").write_text("not yaml: [")
    main = make_config(wwwroot) + f"include:\n  - {yaml_scalar(str(conf_d) + '/*.yaml')}\n  - nothing/*.yaml\n"
    main += f"hosts:\n  - domain: a.test\n    wwwroot: {yaml_scalar(str(a))}\n"
    gw = start_gateway(main)
    assert gw.get("/", host="a.test").body == b"site a\n"
    assert gw.get("/", host="b.test").body == b"site b\n"
    assert gw.get("/", host="other.test").body == b"global\n"  # global wwwroot replaced by the include
    # a reload reads the included files again
    (conf_d / "10-b.yaml").write_text(f"hosts:\n  - domain: b.test\n    wwwroot: {yaml_scalar(str(a))}\n")
    before = gw.stderr().count("is in use")
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while gw.stderr().count("is in use") == before:
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.02)
    time.sleep(0.05)
    assert gw.get("/", host="b.test").body == b"site a\n"
    assert gw.get("/", host="other.test").body == INDEX_HTML


def test_include_string_pattern_and_absolute_path(gateway_bin, tmp_path):
    extra = tmp_path / "abs" / "x.yaml"
    extra.parent.mkdir()
    extra.write_text("hosts:\n  - domain: x.test\n")
    main = tmp_path / "main.yaml"
    main.write_text(f"global:\n  port: 0\ninclude: {yaml_scalar(str(extra))}\n")
    out = check(gateway_bin, main)
    assert out.returncode == 0, out.stderr


def test_include_loop_is_located(gateway_bin, tmp_path):
    (tmp_path / "a.yaml").write_text("global:\n  port: 0\ninclude:\n  - b.yaml\n")
    (tmp_path / "b.yaml").write_text("hosts: []\ninclude: [\"a.yaml\"]\n")
    out = check(gateway_bin, tmp_path / "a.yaml")
    assert out.returncode == 1
    assert re.search(re.escape(str(tmp_path / "b.yaml")) + r":2:11: include: .*a\.yaml is already being included",
                     out.stderr.decode()), out.stderr


def test_error_in_included_file_is_located(gateway_bin, tmp_path):
    (tmp_path / "main.yaml").write_text("global:\n  port: 0\ninclude:\n  - inc/*.yaml\n")
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "bad.yaml").write_text("global:\n  keepaliveTimeout: soon\n")
    out = check(gateway_bin, tmp_path / "main.yaml")
    assert out.returncode == 1
    assert "inc/bad.yaml:2:21: keepaliveTimeout: expected an integer" in out.stderr.decode(), out.stderr
    (tmp_path / "inc" / "bad.yaml").write_text("hosts:\n  - domain: [\n")
    out = check(gateway_bin, tmp_path / "main.yaml")
    assert out.returncode == 1
    assert re.search(r"inc/bad\.yaml:\d+:\d+: .*\(included from .*main\.yaml:4:5\)", out.stderr.decode()), out.stderr


def test_include_must_be_patterns(gateway_bin, tmp_path):
    (tmp_path / "main.yaml").write_text("global:\n  port: 0\ninclude:\n  - {a: 1}\n")
    out = check(gateway_bin, tmp_path / "main.yaml")
    assert out.returncode == 1
    assert "main.yaml:4:5: include: expected a glob pattern" in out.stderr.decode(), out.stderr


def test_env_overrides_are_checked_and_located(gateway_bin, tmp_path):
    (tmp_path / "main.yaml").write_text("global:\n  port: 0\n")
    out = check(gateway_bin, tmp_path / "main.yaml", {"FERRON_PORT": "abc"})
    assert out.returncode == 1 and "$FERRON_PORT:1:1: port: expected" in out.stderr.decode(), out.stderr
    # our prefix wins over Ferron's
    out = check(gateway_bin, tmp_path / "main.yaml", {"FERRON_PORT": "abc", "GATEWAY_PORT": "8080"})
    assert out.returncode == 0, out.stderr
    out = check(gateway_bin, tmp_path / "main.yaml", {"FERRON_HTTP2_MAX_FRAME_SIZE": "12"})
    assert out.returncode == 0, out.stderr  # http2Settings entries are checked where they are used
    out = check(gateway_bin, tmp_path / "main.yaml", {"FERRON_SECURE": "true"})
    assert out.returncode == 1 and "secure: needs cert and key" in out.stderr.decode(), out.stderr
    out = check(gateway_bin, tmp_path / "main.yaml", {"FERRON_LOAD_MODULES": "rproxy, cache"})
    assert out.returncode == 0, out.stderr


def test_env_override_applies(start_gateway, wwwroot, monkeypatch):
    monkeypatch.setenv("FERRON_ENABLE_DIRECTORY_LISTING", "true")
    monkeypatch.setenv("FERRON_BLOCKLIST", "192.0.2.1, 198.51.100.0/24")
    gw = start_gateway(make_config(wwwroot))
    r = gw.get("/noindex/")
    assert r.status == 200 and b"file.txt" in r.body, r


def test_env_sni_hosts(gateway_bin, tmp_path):
    from tls_helpers import make_cert
    cert, key = make_cert(tmp_path / "certs", "localhost")
    wc, wk = make_cert(tmp_path / "certs", "*.example.com")
    (tmp_path / "main.yaml").write_text(
        f"global:\n  port: 0\n  sport: 0\n  secure: true\n  cert: {yaml_scalar(str(cert))}\n  key: {yaml_scalar(str(key))}\n")
    env = {"FERRON_SNI_HOSTS": "*.example.com", "FERRON_SNI_WILDCARD_example_com_CERT": str(wc),
           "FERRON_SNI_WILDCARD_example_com_KEY": str(wk)}
    assert check(gateway_bin, tmp_path / "main.yaml", env).returncode == 0
    env["FERRON_SNI_WILDCARD_example_com_KEY"] = str(tmp_path / "missing.key")
    out = check(gateway_bin, tmp_path / "main.yaml", env)
    assert out.returncode == 1 and "missing.key" in out.stderr.decode(), out.stderr
