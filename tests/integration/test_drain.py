"""Graceful stop (SIGTERM): requests in flight finish, new connections are refused at once, idle
keep-alive connections get gracefulIdleTimeout for a request already on its way, the process exits
within gracefulShutdownTimeout; and a stop under wrk load loses no request."""
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from cache_origin import Origin
from conftest import RawConn, make_config


@pytest.fixture
def slow_origin():
    o = Origin()
    o.route("/slow", delay=1.0, body=b"slow answer")
    o.route("/slower", delay=4.0, body=b"too late")
    yield o
    o.close()


def proxy_config(origin, **props):
    return make_config(proxyTo=origin.url, **props).replace("global:\n", "global:\n  loadModules: [rproxy]\n", 1)


def wait_log(gw, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while text not in gw.stderr():
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.01)


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def wait_refused(gw):
    """A stop closes every worker's listening sockets first, then logs "draining" as it tells the
    workers to drain: from then on new connections are refused."""
    wait_log(gw, "draining")
    assert refused(gw.port)


def test_in_flight_requests_finish_new_connections_refused(start_gateway, slow_origin):
    gw = start_gateway(proxy_config(slow_origin, workers=2, gracefulShutdownTimeout=5000))
    results = []

    def one():
        with RawConn(gw.port, timeout=10) as c:
            c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            results.append((r.status, r.body, r.has_token("connection", "close"), c.closed_by_server()))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while slow_origin.count("/slow") < 4:  # all four are with the backend now
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stopped_at = time.monotonic()
    gw.signal(signal.SIGTERM)
    wait_refused(gw)
    for t in threads:
        t.join()
    # each answered in full, told the connection closes, and closed after it
    assert results == [(200, b"slow answer", True, True)] * 4, results
    assert gw.proc.wait(timeout=5) == 0
    assert time.monotonic() - stopped_at < 5, "not within gracefulShutdownTimeout"
    assert "still open after the graceful timeout" not in gw.stderr()


def test_graceful_timeout_ends_what_is_left(start_gateway, slow_origin):
    gw = start_gateway(proxy_config(slow_origin, gracefulShutdownTimeout=1000))
    c = RawConn(gw.port, timeout=10)
    try:
        c.send(b"GET /slower HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        while slow_origin.count("/slower") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        stopped_at = time.monotonic()
        gw.signal(signal.SIGTERM)
        assert gw.proc.wait(timeout=5) == 0
        took = time.monotonic() - stopped_at
        assert 0.9 < took < 3, took  # the backend would have needed 4 s
        assert c.read_until_close(timeout=2) == b""  # closed without an answer
        assert re.search(r"worker \d+: 1 connections still open after the graceful timeout", gw.stderr())
    finally:
        c.close()


def test_idle_connection_gets_one_more_request(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, gracefulIdleTimeout=3000, gracefulShutdownTimeout=10000))
    busy, quiet = gw.connect(), gw.connect()
    try:
        for c in (busy, quiet):
            c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.read_response().status == 200
        stopped_at = time.monotonic()
        gw.signal(signal.SIGTERM)
        wait_refused(gw)
        # a request arriving on an idle connection after the stop is answered, and the connection closes
        busy.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        r = busy.read_response()
        assert r.status == 200 and r.body == b"hello world\n" and r.has_token("connection", "close"), r
        assert busy.closed_by_server()
        # one that stays quiet is closed once gracefulIdleTimeout has passed
        assert quiet.closed_by_server(timeout=6)
        assert gw.proc.wait(timeout=5) == 0
        assert 2.5 < time.monotonic() - stopped_at < 6
    finally:
        busy.close()
        quiet.close()


def test_idle_connections_closed_at_once_with_zero(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, gracefulIdleTimeout=0))
    c = gw.connect()
    try:
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
        stopped_at = time.monotonic()
        gw.signal(signal.SIGTERM)
        assert c.closed_by_server(timeout=2)
        assert gw.proc.wait(timeout=5) == 0
        assert time.monotonic() - stopped_at < 1.5
    finally:
        c.close()


def wrk_errors(out):
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else \
        dict(connect=0, read=0, write=0, timeout=0)


@pytest.mark.skipif(not shutil.which("wrk"), reason="wrk is not installed")
def test_stop_under_wrk_load_loses_nothing(start_gateway, wwwroot, tmp_path):
    """wrk keeps 20 keep-alive connections busy; SIGTERM comes after 1.5 s of a 3 s run.

    Every request wrk sent before the stop is answered: no read errors (a connection closed under
    a request, or reset with a listening socket that closed after the client reconnected to it: all
    workers close theirs before any tells its clients to go) and no timeouts (a connection left
    waiting in a backlog nobody reads). What wrk
    reports instead are its attempts to connect again after the listeners closed: it connects
    without blocking, so the refusal surfaces at its first write and is counted under "write" (its
    "connect" counter only sees a connect() that fails at once). The access log (flushed at exit)
    holds exactly as many requests as wrk completed: none was answered to a client that did not
    get it, none was lost."""
    log = tmp_path / "access.log"
    gw = start_gateway(make_config(wwwroot, workers=2, gracefulShutdownTimeout=5000, logFilePath=str(log)))
    wrk = subprocess.Popen(["wrk", "-t", "2", "-c", "20", "-d", "3s", f"http://127.0.0.1:{gw.port}/hello.txt"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.5)
    stopped_at = time.monotonic()
    gw.signal(signal.SIGTERM)
    assert gw.proc.wait(timeout=6) == 0
    assert time.monotonic() - stopped_at < 5
    out, _ = wrk.communicate(timeout=30)
    done = int(re.search(r"(\d+) requests in", out).group(1))
    errors = wrk_errors(out)
    assert "Non-2xx" not in out, out
    assert errors["read"] == 0 and errors["timeout"] == 0, out
    assert done > 100, out
    lines = log.read_text().splitlines()
    assert len(lines) == done, (len(lines), out)
    assert all('" 200 ' in ln for ln in lines)
    assert refused(gw.port)
