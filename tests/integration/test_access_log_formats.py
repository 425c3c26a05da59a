"""Access log formats (logFormat: extended, json), X-Request-ID (requestId), and the access log
following a reload."""
import json
import re
import signal
import time

from backends import Backend
from conftest import make_config
from test_logs import LINE_RE, read_lines, wait_for


def test_json_lines(start_gateway, wwwroot, tmp_path):
    log = tmp_path / "access.json"
    gw = start_gateway(make_config(wwwroot, logFilePath=str(log), logFormat="json", requestId=True))
    r = gw.get("/hello.txt", headers={"User-Agent": 'ua "quoted" \xe9', "X-Request-ID": "abc-123"})
    assert r.status == 200 and r.header("X-Request-ID") == "abc-123"
    lines = wait_for(lambda: [ln for ln in read_lines(log) if "hello.txt" in ln])
    doc = json.loads(lines[0])
    assert doc["method"] == "GET" and doc["target"] == "/hello.txt" and doc["status"] == 200
    assert doc["bytes_sent"] > 0 and doc["remote_addr"] == "127.0.0.1" and doc["tls"] is False
    assert doc["user_agent"] == 'ua "quoted" \xe9' and doc["request_id"] == "abc-123"
    assert doc["host"] == "localhost" and doc["remote_user"] is None and doc["referer"] is None
    assert isinstance(doc["request_time_ms"], int)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$", doc["time"])


def test_extended_lines_and_generated_request_id(start_gateway, wwwroot, tmp_path):
    log = tmp_path / "access.log"
    gw = start_gateway(make_config(wwwroot, logFilePath=str(log), logFormat="extended", requestId=True))
    r = gw.get("/hello.txt", headers={"X-Request-ID": "bad id with spaces"})
    rid = r.header("X-Request-ID")
    assert rid and re.fullmatch(r"[0-9a-f]{32}", rid), r
    r2 = gw.get("/hello.txt")
    assert r2.header("X-Request-ID") != rid
    lines = wait_for(lambda: [ln for ln in read_lines(log) if "hello.txt" in ln and rid in ln])
    line = lines[0]
    head, tail = line.split('" host=', 1)
    assert LINE_RE.match(head + '"'), line
    assert re.fullmatch(r'"localhost" time_ms=\d+ request_id="[0-9a-f]{32}" cache="-" upstream="-" upstream_ms=- tls=no',
                        tail), line


def test_request_id_reaches_the_backend_and_upstream_is_logged(start_gateway, tmp_path):
    b = Backend("b")
    log = tmp_path / "access.json"
    try:
        cfg = make_config(loadModules="[rproxy]", proxyTo=b.url, requestId=True, logFilePath=str(log),
                          logFormat="json").replace('"[rproxy]"', "[rproxy]")
        gw = start_gateway(cfg)
        r = gw.get("/echo")
        sent = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
        assert sent.get("x-request-id") == r.header("X-Request-ID"), (sent, r)
        r = gw.get("/echo", headers={"X-Request-ID": "client-given"})
        sent = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
        assert sent.get("x-request-id") == "client-given"
        lines = wait_for(lambda: [ln for ln in read_lines(log) if "client-given" in ln])
        doc = json.loads(lines[0])
        assert doc["upstream"] == b.url and isinstance(doc["upstream_ms"], int), doc
    finally:
        b.close()


def test_no_request_id_by_default(gateway):
    r = gateway.get("/hello.txt", headers={"X-Request-ID": "x"})
    assert r.header("X-Request-ID") is None


def test_bad_log_format_is_located(gateway_bin, tmp_path):
    import subprocess
    cfg = tmp_path / "g.yaml"
    cfg.write_text("global:\n  port: 0\n  logFormat: xml\n")
    p = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, timeout=20)
    assert p.returncode == 1 and f"{cfg}:3:14: logFormat: expected combined, extended or json" in p.stderr.decode()


def test_reload_switches_access_log(start_gateway, wwwroot, tmp_path):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    gw = start_gateway(make_config(wwwroot, logFilePath=str(a)))
    gw.get("/hello.txt")
    assert wait_for(lambda: [ln for ln in read_lines(a) if "hello.txt" in ln])
    gw.config_path.write_text(make_config(wwwroot, logFilePath=str(b), logFormat="json").replace("@PORT@", str(gw.port)))
    gw.signal(signal.SIGHUP)
    assert wait_for(lambda: "generation 2 is in use" in gw.stderr())
    time.sleep(0.1)
    gw.get("/file1k.bin")
    lines = wait_for(lambda: [ln for ln in read_lines(b) if "file1k.bin" in ln])
    assert json.loads(lines[0])["status"] == 200
    # and off: nothing more is written
    gw.config_path.write_text(make_config(wwwroot).replace("@PORT@", str(gw.port)))
    gw.signal(signal.SIGHUP)
    assert wait_for(lambda: "generation 3 is in use" in gw.stderr())
    time.sleep(0.1)
    gw.get("/noext")
    time.sleep(1.5)
    assert not [ln for ln in read_lines(a) + read_lines(b) if "noext" in ln]
