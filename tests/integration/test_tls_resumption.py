"""
TLS session resumption beyond one process and one config generation:
- session-ticket keys from files shared by replicas (sessionTicketKeyFiles): a ticket from one
  gateway resumes on another with the same files, rotation is a reload with [new, old] then [new],
  bad files are located config errors (at start, `gateway -t` and on reload, which keeps the keys);
- the session-ID cache (TLS 1.2 without tickets) survives a reload for a host whose settings did
  not change, never crosses hosts, stops for a host whose certificate changed, and is bounded by
  tlsSessionCacheSize.
Client: openssl s_client with -sess_out / -sess_in ("Reused," or "New," in its output).
"""
import os
import re
import subprocess

import pytest

from conftest import free_port, yaml_scalar
from test_reload import reload_and_wait, rewrite
from tls_helpers import make_cert, tls_config, wait_port

REQ = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def s_client(port, version, *args, name="localhost"):
    """One s_client connection that sends a request and reads to the end (TLS 1.3 tickets come
    after the handshake); returns its output."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ign_eof", version,
                        "-servername", name, *args], input=REQ, capture_output=True, timeout=15)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def new_session(port, path, version="-tls1_2", *args, name="localhost"):
    out = s_client(port, version, "-sess_out", str(path), *args, name=name)
    assert "New," in out and path.exists(), out
    return path


def resumes(port, path, version="-tls1_2", *args, name="localhost"):
    out = s_client(port, version, "-sess_in", str(path), *args, name=name)
    assert "New," in out or "Reused," in out, out  # a handshake happened either way
    return "Reused," in out


def key_file(path, size=80):
    path.write_bytes(os.urandom(size))
    return path


def keys_list(*paths):
    return "[" + ", ".join(yaml_scalar(str(p)) for p in paths) + "]"


class Site:
    """Certificates and the config text of a gateway serving localhost (default certificate) and
    alt.test (an SNI entry)."""

    def __init__(self, tmp_path, wwwroot):
        d = tmp_path / "certs"
        self.wwwroot = wwwroot
        self.cert, self.key = make_cert(d, "localhost", ["DNS:localhost", "IP:127.0.0.1"])
        self.alt = make_cert(d, "alt.test")

    def config(self, sport, workers=1, alt=None, **extra):
        return tls_config(self.wwwroot, self.cert, self.key, sport, workers=workers, extra=extra,
                          sni={"alt.test": alt or self.alt})

    def start(self, start_gateway, workers=1, **extra):
        sport = free_port()
        gw = start_gateway(self.config(sport, workers, **extra))
        wait_port(sport)
        return gw, sport


@pytest.fixture
def site(tmp_path, wwwroot):
    return Site(tmp_path, wwwroot)


# ---- ticket keys shared by replicas ----

@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_ticket_from_one_replica_resumes_on_another(start_gateway, site, tmp_path, version):
    shared = key_file(tmp_path / "ticket.key")
    _, a = site.start(start_gateway, workers=2, sessionTicketKeyFiles=keys_list(shared))
    _, b = site.start(start_gateway, workers=2, sessionTicketKeyFiles=keys_list(shared))
    sess = new_session(a, tmp_path / "a.pem", version)
    assert resumes(a, sess, version)
    assert resumes(b, sess, version), "a ticket of replica A did not resume on replica B"
    alt = new_session(b, tmp_path / "alt.pem", version, name="alt.test")  # per SNI entry too
    assert resumes(a, alt, version, name="alt.test")
    assert not resumes(a, alt, version, name="localhost")  # never across hosts


def test_replicas_with_other_key_files_do_not_resume(start_gateway, site, tmp_path):
    _, a = site.start(start_gateway, sessionTicketKeyFiles=keys_list(key_file(tmp_path / "a.key")))
    _, b = site.start(start_gateway, sessionTicketKeyFiles=keys_list(key_file(tmp_path / "b.key", 48)))
    _, c = site.start(start_gateway)  # in-process keys
    sess = new_session(a, tmp_path / "a.pem")
    assert resumes(a, sess)
    assert not resumes(b, sess)
    assert not resumes(c, sess)
    sess_b = new_session(b, tmp_path / "b.pem", "-tls1_3")  # a 48-byte key works as well
    assert resumes(b, sess_b, "-tls1_3") and not resumes(a, sess_b, "-tls1_3")


def test_rotation_by_reload(start_gateway, site, tmp_path):
    old, new = key_file(tmp_path / "old.key"), key_file(tmp_path / "new.key")
    sport = free_port()
    cfg = site.config(sport, sessionTicketKeyFiles=keys_list(old))
    gw = start_gateway(cfg)
    wait_port(sport)
    old_ticket = new_session(sport, tmp_path / "old.pem")
    rewrite(gw, site.config(sport, sessionTicketKeyFiles=keys_list(new, old)))
    assert "is in use" in reload_and_wait(gw)
    assert resumes(sport, old_ticket), "an old ticket must resume while the old key is still listed"
    new_ticket = new_session(sport, tmp_path / "new.pem")  # issued under the new key
    rewrite(gw, site.config(sport, sessionTicketKeyFiles=keys_list(new)))
    assert "is in use" in reload_and_wait(gw)
    assert not resumes(sport, old_ticket)
    assert resumes(sport, new_ticket)


def test_bad_key_file_on_reload_keeps_the_keys(start_gateway, site, tmp_path):
    good = key_file(tmp_path / "good.key")
    sport = free_port()
    gw = start_gateway(site.config(sport, sessionTicketKeyFiles=keys_list(good)))
    wait_port(sport)
    sess = new_session(sport, tmp_path / "s.pem")
    short = key_file(tmp_path / "short.key", 32)
    rewrite(gw, site.config(sport, sessionTicketKeyFiles=keys_list(short)))
    assert "not valid" in reload_and_wait(gw)
    log = gw.stderr()
    assert re.search(rf"reload: {re.escape(str(gw.config_path))}:\d+:\d+: sessionTicketKeyFiles: "
                     rf"'{re.escape(str(short))}' is 32 bytes", log), log
    assert resumes(sport, sess), "the running keys must stay after a bad reload"
    assert short.read_bytes() not in log.encode(errors="replace")


def located_error(gateway_bin, tmp_path, site, files_yaml):
    cfg = tmp_path / "bad.yaml"
    text = site.config(8443, sessionTicketKeyFiles=files_yaml).replace("@PORT@", "8080")
    cfg.write_text(text)
    r = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, timeout=20)
    assert r.returncode == 1, r
    line_no = next(i for i, ln in enumerate(text.splitlines(), 1) if "sessionTicketKeyFiles" in ln)
    return r.stderr.decode(), text.splitlines()[line_no - 1], line_no


def test_key_file_errors_are_located(gateway_bin, site, tmp_path):
    good = key_file(tmp_path / "good.key")
    bad = key_file(tmp_path / "bad.key", 79)
    err, line, n = located_error(gateway_bin, tmp_path, site, keys_list(good, bad))
    col = line.index(yaml_scalar(str(bad))) + 1
    assert f"bad.yaml:{n}:{col}: sessionTicketKeyFiles: '{bad}' is 79 bytes; " \
           "a ticket key file holds 80 (or 48) bytes" in err, err
    missing = tmp_path / "missing.key"
    err, line, n = located_error(gateway_bin, tmp_path, site, keys_list(missing))
    assert f"bad.yaml:{n}:{line.index('[') + 2}: sessionTicketKeyFiles: cannot read '{missing}'" in err, err
    started = subprocess.run([str(gateway_bin), "-c", str(tmp_path / "bad.yaml")], capture_output=True, timeout=20)
    assert started.returncode == 1 and f"sessionTicketKeyFiles: cannot read '{missing}'" in started.stderr.decode()
    err, _, n = located_error(gateway_bin, tmp_path, site, "[]")
    assert f"bad.yaml:{n}:" in err and "sessionTicketKeyFiles: no key file listed" in err, err
    err, _, n = located_error(gateway_bin, tmp_path, site, "[[nested]]")
    assert f"bad.yaml:{n}:" in err and "sessionTicketKeyFiles: expected a list of strings" in err, err
    os.chmod(bad, 0o000)
    if os.access(bad, os.R_OK):  # root reads anything
        return
    err, _, n = located_error(gateway_bin, tmp_path, site, keys_list(bad))
    assert f"sessionTicketKeyFiles: cannot read '{bad}': Permission denied" in err, err


# ---- the session-ID cache ----

def test_session_id_resumes_across_reload_on_any_worker(start_gateway, site, tmp_path):
    sport = free_port()
    cfg = site.config(sport, workers=2)
    gw = start_gateway(cfg)
    wait_port(sport)
    sess = new_session(sport, tmp_path / "id.pem", "-tls1_2", "-no_ticket")
    alt = new_session(sport, tmp_path / "alt.pem", "-tls1_2", "-no_ticket", name="alt.test")
    for _ in range(3):  # whichever worker accepts
        assert resumes(sport, sess, "-tls1_2", "-no_ticket")
    rewrite(gw, cfg + "  serverHeader: reloaded\n")
    assert "is in use" in reload_and_wait(gw)
    assert resumes(sport, sess, "-tls1_2", "-no_ticket"), "the session-ID cache did not survive the reload"
    assert resumes(sport, alt, "-tls1_2", "-no_ticket", name="alt.test")
    assert not resumes(sport, alt, "-tls1_2", "-no_ticket", name="localhost")  # never across hosts
    assert not resumes(sport, sess, "-tls1_2", "-no_ticket", name="alt.test")


def test_changed_certificate_does_not_resume(start_gateway, site, tmp_path):
    """A session carries the identity the client verified: a host whose certificate changed starts
    afresh (by session ID and by ticket); the hosts whose settings stayed resume."""
    sport = free_port()
    gw = start_gateway(site.config(sport))
    wait_port(sport)
    by_id = new_session(sport, tmp_path / "alt-id.pem", "-tls1_2", "-no_ticket", name="alt.test")
    by_ticket = new_session(sport, tmp_path / "alt-t.pem", "-tls1_3", name="alt.test")
    local = new_session(sport, tmp_path / "local.pem", "-tls1_2", "-no_ticket")
    rewrite(gw, site.config(sport, alt=make_cert(tmp_path / "certs2", "alt.test")))
    assert "is in use" in reload_and_wait(gw)
    assert not resumes(sport, by_id, "-tls1_2", "-no_ticket", name="alt.test")
    assert not resumes(sport, by_ticket, "-tls1_3", name="alt.test")
    assert resumes(sport, local, "-tls1_2", "-no_ticket")


def test_policy_change_does_not_resume(start_gateway, site, tmp_path):
    """A session negotiated under other TLS settings (here the cipher suites) starts afresh, even
    when its cipher is still allowed."""
    sport = free_port()
    cfg = site.config(sport)
    gw = start_gateway(cfg)
    wait_port(sport)
    sess = new_session(sport, tmp_path / "s.pem", "-tls1_2", "-no_ticket")
    rewrite(gw, site.config(sport, cipherSuite="[ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES256-GCM-SHA384]"))
    assert "is in use" in reload_and_wait(gw)
    assert not resumes(sport, sess, "-tls1_2", "-no_ticket")


def test_session_cache_size_bounds_the_cache(start_gateway, site, tmp_path):
    _, sport = site.start(start_gateway, tlsSessionCacheSize=1)
    first = new_session(sport, tmp_path / "1.pem", "-tls1_2", "-no_ticket")
    assert resumes(sport, first, "-tls1_2", "-no_ticket")
    second = new_session(sport, tmp_path / "2.pem", "-tls1_2", "-no_ticket")  # evicts the first
    assert resumes(sport, second, "-tls1_2", "-no_ticket")
    assert not resumes(sport, first, "-tls1_2", "-no_ticket")
    _, off = site.start(start_gateway, tlsSessionCacheSize=0)
    assert not resumes(off, new_session(off, tmp_path / "3.pem", "-tls1_2", "-no_ticket"), "-tls1_2", "-no_ticket")
    assert resumes(off, new_session(off, tmp_path / "4.pem"))  # tickets still work
