"""Path normalisation happens once (spec §3.4): routing, policy and handlers see the same path, so
an encoded or dotted variant of /admin cannot slip past a location rule written for /admin, and
the path forwarded to a backend is that same normalised path."""
import json

import pytest

from backends import Backend
from conftest import make_config

HOSTS = """\
  - domain: "*"
    locations:
      - path: /admin
        blocklist: ["127.0.0.1", "::1"]
"""

VARIANTS = ["/admin", "/%61dmin", "/%61%64%6d%69%6e", "/adm%69n/", "/./admin", "//admin", "/x/../admin",
            "/admin/./", "/%2e/admin", "/x/%2e%2e/admin", "/admin%2fsecret", "/admin/%2e%2e/admin/x",
            "/%2fadmin"]


@pytest.mark.parametrize("path", VARIANTS)
def test_encoded_variant_cannot_pass_a_location_rule(start_gateway, wwwroot, path):
    (wwwroot / "admin").mkdir(exist_ok=True)
    (wwwroot / "admin" / "index.html").write_text("secret\n")
    gw = start_gateway(make_config(wwwroot, hosts=HOSTS))
    r = gw.get(path)
    assert r.status in (400, 403, 404) and b"secret" not in r.body, (path, r)


def test_double_encoding_is_not_decoded_twice(start_gateway, wwwroot):
    (wwwroot / "admin").mkdir(exist_ok=True)
    (wwwroot / "admin" / "index.html").write_text("secret\n")
    gw = start_gateway(make_config(wwwroot, hosts=HOSTS))
    r = gw.get("/%2561dmin/")  # the file name "%61dmin", not /admin
    assert b"secret" not in r.body, r


def test_backend_sees_the_normalised_path(start_gateway):
    b = Backend("b")
    try:
        hosts = "  - domain: proxied.test\n    locations:\n      - path: /echo\n        proxyTo: " + b.url + "\n" + HOSTS
        gw = start_gateway(make_config(loadModules="[rproxy]", hosts=hosts).replace('"[rproxy]"', "[rproxy]"))
        r = gw.get("/%65cho/./x/../y%20z", host="proxied.test")
        assert r.status == 200, r
        target = json.loads(r.body)["target"]
        assert target.split("?")[0] in ("/echo/y%20z", "/echo/y z"), target
    finally:
        b.close()
