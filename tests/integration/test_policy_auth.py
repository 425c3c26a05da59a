"""Basic auth through nonStandardCodes 401 rules: users with hashes made by htpasswd, mkpasswd, the
argon2 CLI and PHC strings, htpasswd files, realms, userList, IP targeting, brute-force lockout."""
import base64
import shutil
import subprocess

import pytest

from conftest import make_config

# (user, password, hash) made by the tools users use; see tests/unit/test_policy.c for their origin
HASHES = {
    "bcrypt": ("b-secret", "$2y$05$6PJjFzbng98J23xBgUWKOeyq425OFF4NmCahcAYUs7R.oOxR2gpEO"),
    "apr1": ("m-secret", "$apr1$T7Z8IwHW$ZynIBaC1Zg1XmXsiZhCrX0"),
    "sha1": ("s-secret", "{SHA}7YX78Oz8LXLfkqQdW9a5bxXYgCQ="),
    "sha512crypt": ("c-secret", "$6$2om/kUV1D/puD2u5$x7vcHhMIVqa90RJK.3unfofrdCblrXO4mEOF4kpNzwJT9hhLBEuwY274xEMQnXmfj2lcH2cwKPLMgQj/NxQMA0"),
    "yescrypt": ("y-secret", "$y$j9T$vGPh.VCtaR481o//goESG0$bhrZiscqeJVx1CAbRc3vdRy.Vns5f1eMLvqaNTfMbbC"),
    "argon2id": ("a-secret", "$argon2id$v=19$m=4096,t=2,p=1$c29tZXNhbHQxMjM0$vq5HTS9upGIaStDE+KXnorr1+jvNcDbo9KRe0VPJSKY"),
    "pbkdf2": ("p-secret", "$pbkdf2-sha256$i=10000,l=32$MDEyMzQ1Njc4OWFiY2RlZg$mcV4mQmxQUos/DTbFi6Y3OSW08VKBc01n0taoyZBB1s"),
    "scrypt": ("k-secret", "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$g8MhtX7rkbcyETAXO/0gfKtTsaWuwf91h99HNPH/d5c"),
}


def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def users_yaml(indent="  "):
    out = [f"{indent}users:"]
    for name, (_, h) in HASHES.items():
        out.append(f'{indent}  - name: "{name}"\n{indent}    pass: "{h}"')
    return "\n".join(out) + "\n"


@pytest.fixture
def auth_gw(start_gateway, wwwroot, tmp_path):
    made = tmp_path / "made.htpasswd"
    lines = []
    if shutil.which("htpasswd"):  # made at test time by the real tool as well
        lines.append(subprocess.run(["htpasswd", "-nbB", "tooluser", "tool-pass"], capture_output=True,
                                    text=True, check=True).stdout.strip())
    if shutil.which("mkpasswd"):
        h = subprocess.run(["mkpasswd", "-m", "yescrypt", "mk-pass"], capture_output=True, text=True,
                           check=True).stdout.strip()
        lines.append(f"mkuser:{h}")
    if shutil.which("argon2"):
        h = subprocess.run(["argon2", "saltysalt", "-id", "-t", "1", "-m", "10", "-e"], input="ar-pass",
                           capture_output=True, text=True, check=True).stdout.strip()
        lines.append(f"aruser:{h}")
    made.write_text("# made by the tools\n" + "\n".join(lines) + "\n")
    text = make_config(wwwroot) + f"""\
  trustedProxies: ["127.0.0.1"]
  htpasswdFile: "{made}"
{users_yaml()}  nonStandardCodes:
    - scode: 401
      regex: "^/hello\\\\.txt"
    - scode: 401
      url: /sub/page.txt
      realm: 'Staff "only"'
      userList: [bcrypt, tooluser]
    - scode: 401
      regex: "^/noindex/"
      users: ["198.51.100.0/24"]
    - scode: 401
      url: /data.json
      disableBruteProtection: true
"""
    gw = start_gateway(text)
    gw.made = lines
    return gw


def req(gw, path="/hello.txt", auth=None, ip="198.51.100.1"):
    h = {"X-Forwarded-For": ip}
    if auth:
        h["Authorization"] = auth
    return gw.get(path, headers=h)


def test_challenge(auth_gw):
    r = req(auth_gw)
    assert r.status == 401
    assert r.header("www-authenticate") == 'Basic realm="gateway", charset="UTF-8"'
    assert b"401 Unauthorized" in r.body
    r = req(auth_gw, "/sub/page.txt")
    assert r.header("www-authenticate") == 'Basic realm="Staff \\"only\\"", charset="UTF-8"'
    assert req(auth_gw, "/index.html").status == 200  # no rule for it


@pytest.mark.parametrize("scheme", sorted(HASHES))
def test_each_hash_format(auth_gw, scheme):
    pw, _ = HASHES[scheme]
    ip = f"198.51.100.{10 + sorted(HASHES).index(scheme)}"
    r = req(auth_gw, auth=basic(scheme, pw), ip=ip)
    assert r.status == 200, r
    assert r.body == b"hello world\n"
    assert req(auth_gw, auth=basic(scheme, pw + "x"), ip=ip).status == 401
    assert req(auth_gw, auth=basic(scheme, pw[:-1]), ip=ip).status == 401
    assert req(auth_gw, auth=basic("nobody", pw), ip=ip).status == 401


def test_hashes_made_now_by_the_tools(auth_gw):
    creds = {"tooluser": "tool-pass", "mkuser": "mk-pass", "aruser": "ar-pass"}
    for line in auth_gw.made:
        user = line.split(":", 1)[0]
        assert req(auth_gw, auth=basic(user, creds[user]), ip="198.51.100.30").status == 200, line
        assert req(auth_gw, auth=basic(user, "nope"), ip="198.51.100.31").status == 401


def test_user_list(auth_gw):
    assert req(auth_gw, "/sub/page.txt", basic("bcrypt", "b-secret")).status == 200
    assert req(auth_gw, "/sub/page.txt", basic("argon2id", "a-secret"), ip="198.51.100.40").status == 401


def test_ip_targeted_rule(auth_gw):
    # the rule on /noindex/ applies only to 198.51.100.0/24
    assert req(auth_gw, "/noindex/file.txt", ip="198.51.100.2").status == 401
    assert req(auth_gw, "/noindex/file.txt", ip="192.0.2.2").status == 200


def test_malformed_authorization(auth_gw):
    for a in ["Basic", "Basic !!!!", "Basic " + base64.b64encode(b"nocolon").decode(), "Bearer x", "Basic  "]:
        r = req(auth_gw, auth=a, ip="198.51.100.50")
        assert r.status == 401, a
        assert r.header("www-authenticate")


def test_keep_alive_reuses_verification(auth_gw):
    with auth_gw.connect() as c:
        for _ in range(20):
            c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.60\r\n"
                   b"Authorization: " + basic("argon2id", "a-secret").encode() + b"\r\n\r\n")
            assert c.read_response().status == 200


def test_brute_force_lockout(auth_gw):
    ip = "198.51.100.99"
    for i in range(10):
        r = req(auth_gw, auth=basic("bcrypt", f"wrong{i}"), ip=ip)
        assert r.status == 401, i
    r = req(auth_gw, auth=basic("bcrypt", "b-secret"), ip=ip)  # even the right password now
    assert r.status == 429
    assert 1 <= int(r.header("retry-after")) <= 300
    assert req(auth_gw, ip=ip).status == 429
    # another client is not affected
    assert req(auth_gw, auth=basic("bcrypt", "b-secret"), ip="198.51.100.98").status == 200
    # a rule with disableBruteProtection still answers 401/200
    assert req(auth_gw, "/data.json", basic("bcrypt", "wrong"), ip=ip).status == 401
    assert req(auth_gw, "/data.json", basic("bcrypt", "b-secret"), ip=ip).status == 200


def test_missing_header_is_not_a_failure(auth_gw):
    ip = "198.51.100.120"
    for _ in range(15):
        assert req(auth_gw, ip=ip).status == 401
    assert req(auth_gw, auth=basic("sha1", "s-secret"), ip=ip).status == 200


def test_plain_text_password_fails_closed(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot) + """\
  users:
    - {name: joe, pass: "hunter2"}
  nonStandardCodes:
    - {scode: 401, url: /hello.txt}
""")
    assert "users: user 'joe' can never log in: not a password hash" in gw.stderr()
    assert gw.get("/hello.txt", headers={"Authorization": basic("joe", "hunter2")}).status == 401
