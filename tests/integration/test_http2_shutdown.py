"""
HTTP/2 at the end of a graceful stop: a stream held open by flow control (the client stops giving
window) past gracefulShutdownTimeout is closed with its connection when the worker exits, with the
request logged, exit status 0 and nothing leaked.
"""
import signal
import socket
import time

from conftest import make_config
from test_http2 import Client


def test_graceful_timeout_closes_h2_streams(start_gateway, wwwroot, tmp_path):
    log = tmp_path / "access.log"
    gw = start_gateway(make_config(wwwroot, gracefulShutdownTimeout=300, logFilePath=str(log)))
    c = Client(socket.create_connection(("127.0.0.1", gw.port)), window=1024)
    sid = c.request("/big.bin")  # 2 MiB through a 1 KiB window nobody refills
    deadline = time.monotonic() + 5
    while c.responses[sid]["headers"] is None:
        assert time.monotonic() < deadline, "no response head"
        c.pump(1.0)
    t0 = time.monotonic()
    gw.signal(signal.SIGTERM)
    rc = gw.stop()
    assert time.monotonic() - t0 < 3.0
    assert "still open after the graceful timeout" in gw.stderr()
    assert rc == 0, gw.stderr()
    assert any('"GET /big.bin HTTP/2.0" 200 ' in ln for ln in log.read_text().splitlines()), log.read_text()
    c.sock.close()
