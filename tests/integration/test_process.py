"""Process set-up: open-file limit raised for maxConnections, privilege drop after binding."""
import os
import re

import pytest

from conftest import make_config


def proc_status(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return line.split()[1:]
    return None


def soft_nofile(pid):
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return None


def test_nofile_raised_for_max_connections(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, maxConnections=30000))
    soft = soft_nofile(gw.proc.pid)
    if soft < 30000 + 1024:  # the hard limit did not allow even the clients: said so
        assert re.search(r"open files are limited to \d+: maxConnections 30000 needs about 61024", gw.stderr()), gw.stderr()
    else:
        assert "open files are limited" not in gw.stderr()
    gw2 = start_gateway(make_config(wwwroot, maxConnections=1000))
    assert soft_nofile(gw2.proc.pid) >= 3024
    assert gw.get("/").status == 200


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_privilege_drop_after_binding(start_gateway, tmp_path):
    www = tmp_path / "pub"
    www.mkdir()
    (www / "index.html").write_text("public\n")
    for d in [www] + list(www.parents):  # let the unprivileged user reach the site
        if str(d) in ("/", "/tmp"):
            break
        os.chmod(d, 0o755)
    os.chmod(www / "index.html", 0o644)
    gw = start_gateway(make_config(www, user="nobody", group="nogroup" if _has_group("nogroup") else "nobody"))
    import pwd
    import time
    deadline = time.monotonic() + 5
    while "running as uid" not in gw.stderr():  # the port accepts (backlog) before the drop
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.02)
    uid = int(proc_status(gw.proc.pid, "Uid")[0])
    assert uid == pwd.getpwnam("nobody").pw_uid
    r = gw.get("/")
    assert r.status == 200 and r.body == b"public\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="user/group are only warned about without root")
def test_unknown_user_is_an_error(gateway_bin, tmp_path):
    import subprocess
    cfg = tmp_path / "u.yaml"
    cfg.write_text(make_config(None, port=0, user="no-such-user-here"))
    p = subprocess.run([str(gateway_bin), "-c", str(cfg)], capture_output=True, timeout=20)
    assert p.returncode == 1 and "user: no user named 'no-such-user-here'" in p.stderr.decode(), p.stderr


def _has_group(name):
    import grp
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False
