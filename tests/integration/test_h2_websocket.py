"""WebSocket over HTTP/2 (RFC 8441 extended CONNECT) through rproxy to an HTTP/1.1 backend: the
stream becomes an HTTP/1.1 Upgrade request towards the backend's /ws endpoint, whose 101 becomes
the 200 that opens the stream as a tunnel (python h2 on h2c prior knowledge)."""
import time

import h2.settings
import pytest

from backends import Backend
from conftest import PORT_PLACEHOLDER
from test_fproxy_h2 import CONNECT_ERROR, PROTOCOL_ERROR, H2Proxy, status

ENABLE_CONNECT_PROTOCOL = h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL


@pytest.fixture
def backend():
    b = Backend("ws")
    yield b
    b.close()


def config(url, enable=True):
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [rproxy]\n"
            f"  proxyTo: \"{url}\"\n  http2Settings:\n    enableConnectProtocol: {str(enable).lower()}\n")


def client_with_settings(port):
    """A client that has seen (and acknowledged) the gateway's SETTINGS before it sends anything."""
    c = H2Proxy(port)
    deadline = time.monotonic() + 5
    while not c.settings_seen:
        assert time.monotonic() < deadline, "no SETTINGS from the gateway"
        c.pump(0.5)
    return c


def websocket(c, path="/ws", protocol="websocket"):
    return c.open([(":method", "CONNECT"), (":protocol", protocol), (":scheme", "http"), (":path", path),
                   (":authority", "localhost"), ("sec-websocket-version", "13")])


def test_websocket_over_h2_to_http1_backend(start_gateway, backend):
    gw = start_gateway(config(backend.url))
    c = client_with_settings(gw.port)
    assert c.conn.remote_settings[ENABLE_CONNECT_PROTOCOL] == 1
    sid = websocket(c)
    st = c.response(sid)
    assert status(st) == 200 and not st.ended, st.headers
    assert b"sec-websocket-accept" not in st.headers and b"upgrade" not in st.headers
    assert b"content-length" not in st.headers
    frame = b"\x81\x85" + b"\x01\x02\x03\x04" + bytes(b ^ k for b, k in zip(b"hello", b"\x01\x02\x03\x04"))
    c.send(sid, frame)
    c.wait(sid, lambda s: bytes(s.data) == frame)  # the backend echoes every byte of the tunnel
    big = bytes(range(256)) * 1024
    c.send(sid, big)
    c.wait(sid, lambda s: len(s.data) == len(frame) + len(big))
    assert bytes(c.streams[sid].data[len(frame):]) == big
    # the client's END_STREAM reaches the backend as end of stream; its close ends the stream
    c.send(sid, b"", end=True)
    st = c.finished(sid)
    assert st.ended and st.reset in (None, 0)
    assert backend.connections == 1


def test_websocket_backend_refusing_upgrade_is_passed_on(start_gateway, backend):
    gw = start_gateway(config(backend.url))
    c = client_with_settings(gw.port)
    st = c.finished(websocket(c, path="/status/403"))
    assert status(st) == 403


def test_backend_down_is_an_error_response(start_gateway):
    from conftest import free_port
    gw = start_gateway(config(f"http://127.0.0.1:{free_port()}"))
    c = client_with_settings(gw.port)
    st = c.finished(websocket(c))
    assert st.reset == CONNECT_ERROR or status(st) in (502, 503)


def test_extended_connect_needs_the_setting(start_gateway, backend):
    gw = start_gateway(config(backend.url, enable=False))
    c = client_with_settings(gw.port)
    assert c.conn.remote_settings.get(ENABLE_CONNECT_PROTOCOL, 0) == 0
    st = c.finished(websocket(c))
    assert st.reset == PROTOCOL_ERROR and st.headers is None
    assert backend.connections == 0


def test_other_protocols_are_not_implemented(start_gateway, backend):
    gw = start_gateway(config(backend.url))
    c = client_with_settings(gw.port)
    st = c.finished(websocket(c, protocol="connect-udp"))
    assert status(st) == 501
    assert backend.connections == 0
