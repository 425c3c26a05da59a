"""Forward authentication (fauth) with a real auth server and a real backend."""
import json
import socket

import pytest

from backends import Backend
from conftest import PORT_PLACEHOLDER


@pytest.fixture
def pair():
    auth, app = Backend("auth"), Backend("app")
    yield auth, app
    auth.close()
    app.close()


def config(auth_url, app_url, extra=""):
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [fauth, rproxy]\n"
            f"  authTo: \"{auth_url}\"\n  forwardedAuthCopyHeaders: [X-User]\n  proxyTo: \"{app_url}\"\n{extra}")


def test_allowed_request_gets_copied_headers(start_gateway, pair):
    auth, app = pair
    gw = start_gateway(config(auth.url + "/auth", app.url))
    r = gw.get("/echo/page?x=1", headers={"Authorization": "Bearer good", "X-User": "mallory"})
    assert r.status == 200
    h = [(k.lower(), v) for k, v in json.loads(r.body)["headers"]]
    assert ("x-user", "alice") in h
    assert ("x-user", "mallory") not in h  # the client's forged copy was removed
    assert not any(k == "x-other" for k, _ in h)  # only the listed headers are copied
    assert auth.last_auth["x-forwarded-method"] == "GET"
    assert auth.last_auth["x-forwarded-uri"] == "/echo/page?x=1"
    assert auth.last_auth["x-forwarded-for"] == "127.0.0.1"
    assert auth.last_auth_target == "/auth"  # the original path is not appended


def test_denied_request_gets_the_auth_answer(start_gateway, pair):
    auth, app = pair
    gw = start_gateway(config(auth.url + "/auth", app.url))
    r = gw.get("/echo")
    assert r.status == 401 and r.body == b"denied by auth\n"
    assert r.header("www-authenticate") == "Bearer"
    r = gw.get("/echo", headers={"Authorization": "Bearer go-login"})
    assert r.status == 302 and r.header("location") == "https://login.test/?next=1"
    assert app.requests == 0


def test_auth_connections_are_reused(start_gateway, pair):
    auth, app = pair
    gw = start_gateway(config(auth.url + "/auth", app.url))
    with gw.connect() as c:
        for _ in range(10):
            c.send(b"GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\n\r\n")
            assert c.read_response().status == 200
    assert auth.connections == 1 and app.connections == 1


def test_auth_server_down_fails_closed(start_gateway, pair):
    _, app = pair
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    gw = start_gateway(config(f"http://127.0.0.1:{dead}/auth", app.url))
    r = gw.get("/echo", headers={"Authorization": "Bearer good"})
    assert r.status == 503
    assert app.requests == 0


def test_post_body_reaches_backend_after_auth(start_gateway, pair):
    auth, app = pair
    gw = start_gateway(config(auth.url + "/auth", app.url))
    status, _, data = gw.http("POST", "/echo", body=b"x" * 100000, headers={"Authorization": "Bearer good"})
    assert status == 200 and json.loads(data)["body_len"] == 100000
    assert "content-length" not in auth.last_auth  # the body is not sent to the auth server
