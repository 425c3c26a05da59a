"""Binary upgrade (SIGUSR2): the running gateway starts its binary again with the listening sockets,
the new process serves on them, the old one drains and exits; under wrk load no request fails. A new
process that cannot start leaves the old one serving."""
import ctypes
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import PORT_PLACEHOLDER, make_config

PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def subreaper():
    """The new process is the old one's child: once the old one exits, it becomes ours, so the test
    can wait for it and see its exit status."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("cannot become a child subreaper")
    started = []
    yield started
    for pid in started:  # a test that failed half-way leaves nothing running
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def new_pid(gw, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(r"upgrade: process (\d+) serves", gw.stderr())
        if m:
            return int(m.group(1))
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.02)


def stop_new(pid, timeout=10.0):
    """SIGTERM to the new process; its exit status once it is gone."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        assert time.monotonic() < deadline, "the new process did not stop"
        time.sleep(0.02)


@pytest.mark.skipif(not shutil.which("wrk"), reason="wrk is not installed")
def test_upgrade_under_wrk_load(start_gateway, wwwroot, tmp_path, subreaper):
    log = tmp_path / "access.log"
    gw = start_gateway(make_config(wwwroot, workers=2, logFilePath=str(log)))
    wrk = subprocess.Popen(["wrk", "-t", "2", "-c", "20", "-d", "3s", f"http://127.0.0.1:{gw.port}/hello.txt"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.0)
    gw.signal(signal.SIGUSR2)
    pid = new_pid(gw)
    subreaper.append(pid)
    assert gw.proc.wait(timeout=10) == 0  # the old one drained and exited
    assert "upgrade: 2 listening sockets handed over" in gw.stderr()
    out, _ = wrk.communicate(timeout=30)
    done = int(re.search(r"(\d+) requests in", out).group(1))
    assert "Socket errors" not in out and "Non-2xx" not in out, out  # not one failed request
    assert done > 100, out
    r = gw.get("/hello.txt")  # the same port, served by the new process
    assert r.status == 200 and r.body == b"hello world\n"
    assert stop_new(pid) == 0
    subreaper.remove(pid)
    # both processes logged into the same file: every request wrk completed, our one, and at most
    # one per connection that was still waiting for its answer when wrk's time was up
    assert done + 1 <= len(log.read_text().splitlines()) <= done + 1 + 20


def test_failed_upgrade_keeps_serving(start_gateway, wwwroot, subreaper):
    gw = start_gateway(make_config(wwwroot))
    good = gw.config_path.read_text()
    gw.config_path.write_text(good + "  maxConnections: lots\n")  # the new process cannot start
    gw.signal(signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while "before serving; still serving" not in gw.stderr():
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.02)
    assert "upgrade: the new process exited (status 1) before serving; still serving" in gw.stderr()
    assert gw.alive() and gw.get("/hello.txt").status == 200
    # fixed, the next upgrade goes through
    gw.config_path.write_text(good)
    gw.signal(signal.SIGUSR2)
    pid = new_pid(gw)
    subreaper.append(pid)
    assert gw.proc.wait(timeout=10) == 0
    assert gw.get("/hello.txt").status == 200
    assert stop_new(pid) == 0
    subreaper.remove(pid)


def test_upgrade_timeout_is_checked(tmp_path, gateway_bin):
    bad = tmp_path / "bad.yaml"
    bad.write_text(make_config(None, port=8080, upgradeTimeout=5))
    p = subprocess.run([str(gateway_bin), "-t", "-c", str(bad)], capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and f"{bad}:4:19: upgradeTimeout:" in p.stderr, p.stderr


def test_unix_socket_listener_is_handed_over(start_gateway, wwwroot, tmp_path, subreaper):
    """A Unix-socket listener cannot be bound twice: the new process takes the old one's socket,
    and the old one leaves the socket file in place when it stops."""
    sock = tmp_path / "gw.sock"
    cfg = make_config(wwwroot, workers=2)
    gw = start_gateway(cfg)
    gw.config_path.write_text(cfg.replace(f"  port: {PORT_PLACEHOLDER}", f'  port: "unix:{sock}"'))
    gw.signal(signal.SIGHUP)  # the harness waits for a TCP port; a reload moves the listener
    deadline = time.monotonic() + 5
    while not sock.exists():
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.02)
    gw.signal(signal.SIGUSR2)
    pid = new_pid(gw)
    subreaper.append(pid)
    assert gw.proc.wait(timeout=10) == 0
    assert sock.exists()
    p = subprocess.run(["curl", "-s", "--unix-socket", str(sock), "http://x/hello.txt"], capture_output=True,
                       timeout=20)
    assert p.stdout == b"hello world\n", p
    assert stop_new(pid) == 0
    subreaper.remove(pid)
    assert not sock.exists()  # the last process to use it removes it
