"""Access log (Combined Log Format), escaping, error log, SIGUSR1 reopen."""
import re
import signal
import time

from conftest import RawConn, make_config

LINE_RE = re.compile(
    r'^(?P<ip>\S+) - - \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<ua>(?:[^"\\]|\\.)*)"$')


def wait_for(predicate, timeout=5.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(step)
    return predicate()


def read_lines(path):
    try:
        return path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []


def lines_with(path, needle):
    return [ln for ln in read_lines(path) if needle in ln]


def send(gw, data):
    with RawConn(gw.port) as c:
        c.send(data)
        return c.read_response("HEAD" if data.startswith(b"HEAD") else "GET")


def test_access_log_line_format(start_gateway, wwwroot, tmp_path):
    log = tmp_path / "access.log"
    gw = start_gateway(make_config(wwwroot, logFilePath=str(log)))
    r = send(gw, b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: ua-test/1.0\r\nConnection: close\r\n\r\n")
    assert r.status == 200
    n = len(r.body)
    gw.stop()
    lines = read_lines(log)
    assert len(lines) == 1, lines
    m = LINE_RE.match(lines[0])
    assert m, lines[0]
    assert m["ip"] == "127.0.0.1"
    assert m["request"] == "GET / HTTP/1.1"
    assert m["status"] == "200"
    assert m["bytes"] == str(n)
    assert m["referer"] == "-"
    assert m["ua"] == "ua-test/1.0"
    assert re.fullmatch(r'127\.0\.0\.1 - - \[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET / HTTP/1\.1" 200 '
                        + str(n) + r' "-" "ua-test/1\.0"', lines[0])
    time.strptime(m["time"], "%d/%b/%Y:%H:%M:%S %z")


def test_access_log_fields(start_gateway, wwwroot, tmp_path):
    log = tmp_path / "access.log"
    gw = start_gateway(make_config(wwwroot, logFilePath=str(log)))
    with RawConn(gw.port) as c:
        c.send(b"GET /missing?q=1 HTTP/1.1\r\nHost: localhost\r\nReferer: http://ref.example/p\r\nUser-Agent: a\r\n\r\n"
               b"HEAD /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"
               b"GET /hello.txt HTTP/1.0\r\n\r\n")
        r404 = c.read_response()
        c.read_response("HEAD")
        c.read_response()
    gw.stop()
    lines = read_lines(log)
    assert len(lines) == 3, lines
    m = [LINE_RE.match(ln) for ln in lines]
    assert all(m), lines
    assert (m[0]["request"], m[0]["status"], m[0]["bytes"]) == ("GET /missing?q=1 HTTP/1.1", "404", str(len(r404.body)))
    assert m[0]["referer"] == "http://ref.example/p" and m[0]["ua"] == "a"
    assert (m[1]["request"], m[1]["status"], m[1]["bytes"]) == ("HEAD /hello.txt HTTP/1.1", "200", "-")
    assert m[1]["ua"] == "-"
    assert (m[2]["request"], m[2]["status"], m[2]["bytes"]) == ("GET /hello.txt HTTP/1.0", "200", "12")


def test_access_log_escapes_quotes_and_bytes(start_gateway, wwwroot, tmp_path):
    log = tmp_path / "access.log"
    gw = start_gateway(make_config(wwwroot, logFilePath=str(log)))
    send(gw, b'GET /hello.txt HTTP/1.1\r\nHost: x\r\nUser-Agent: evil" 200 0 "forged\r\n'
             b'Referer: caf\xe9\\x\r\nConnection: close\r\n\r\n')
    gw.stop()
    lines = read_lines(log)
    assert len(lines) == 1, lines
    m = LINE_RE.match(lines[0])
    assert m, lines[0]
    assert m["status"] == "200"
    assert '"' not in m["ua"].replace('\\"', "")  # no unescaped quote inside the field
    assert "evil" in m["ua"] and "forged" in m["ua"]
    assert "\\xe9" in m["referer"] or "\\xE9" in m["referer"]
    assert "\xe9" not in lines[0]


def test_access_log_records_refused_requests(start_gateway, wwwroot, tmp_path):
    log = tmp_path / "access.log"
    gw = start_gateway(make_config(wwwroot, logFilePath=str(log)))
    gw.raw(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", timeout=3)
    gw.raw(b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", timeout=3)
    gw.stop()
    statuses = [LINE_RE.match(ln)["status"] for ln in read_lines(log)]
    assert sorted(statuses) == ["400", "505"], read_lines(log)  # two workers: either order


def test_access_log_flushed_while_running(start_gateway, wwwroot, tmp_path):
    log = tmp_path / "access.log"
    gw = start_gateway(make_config(wwwroot, logFilePath=str(log)))
    gw.get("/hello.txt?flush-test")
    assert wait_for(lambda: lines_with(log, "flush-test"), timeout=4), "access log not flushed within 4 s"


def test_sigusr1_reopens_access_log(start_gateway, wwwroot, tmp_path):
    log = tmp_path / "access.log"
    err = tmp_path / "error.log"
    gw = start_gateway(make_config(wwwroot, logFilePath=str(log), errorLogFilePath=str(err)))
    gw.get("/hello.txt?before-rotate")
    assert wait_for(lambda: lines_with(log, "before-rotate"), timeout=4)
    rotated = tmp_path / "access.log.1"
    log.rename(rotated)
    gw.signal(signal.SIGUSR1)
    assert wait_for(lambda: log.exists(), timeout=4), "SIGUSR1 did not create a new access log"
    assert wait_for(lambda: "reopened" in err.read_text(), timeout=4), err.read_text()
    gw.get("/hello.txt?after-rotate")
    assert wait_for(lambda: lines_with(log, "after-rotate"), timeout=4), read_lines(log)
    assert not lines_with(log, "before-rotate")
    assert lines_with(rotated, "before-rotate")
    assert not lines_with(rotated, "after-rotate")
    assert gw.alive()


def test_error_log_file(start_gateway, wwwroot, tmp_path):
    err = tmp_path / "error.log"
    gw = start_gateway(make_config(wwwroot, errorLogFilePath=str(err)))
    assert wait_for(lambda: err.exists() and "listening on" in err.read_text(), timeout=4)
    assert "listening on" not in gw.stderr()
    rotated = tmp_path / "error.log.1"
    err.rename(rotated)
    gw.signal(signal.SIGUSR1)
    assert wait_for(lambda: err.exists() and "reopened" in err.read_text(), timeout=4)
    gw.stop()
    assert "stopped" in err.read_text()
    assert "stopped" not in rotated.read_text()


def test_log_file_unwritable_fails_start(gateway_bin, wwwroot, tmp_path):
    import subprocess
    from conftest import child_env
    cfg = tmp_path / "c.yaml"
    cfg.write_text(make_config(wwwroot, port=0, logFilePath=str(tmp_path / "no-such-dir" / "access.log")))
    p = subprocess.run([str(gateway_bin), "-c", str(cfg)], capture_output=True, text=True, timeout=10,
                       env=child_env())
    assert p.returncode == 1
    assert "access.log" in p.stderr
