"""The forward proxy refuses private and special destinations, proved inside a network namespace
this test creates with nothing but `lo` and no route out: even a policy bug could not send a
packet to 10.0.0.1 or 169.254.169.254 from there (a connect would fail, giving 502, never 403).

The test thread enters the namespace with setns(2), so the gateway it starts, the DNS server and
every client socket live there too. Skipped only when a namespace cannot be created (not root)."""
import ctypes
import errno
import os
import socket
import subprocess
import uuid

import pytest

from conftest import PORT_PLACEHOLDER
from dnsserver import DnsServer
from tcp_echo import EchoServer

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

PRIVATE = ["10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254", "[fc00::1]", "[fe80::1]"]


def setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


@pytest.fixture
def netns():
    """A fresh network namespace with only loopback up, entered by this thread for the test."""
    name = f"gwtest-{uuid.uuid4().hex[:10]}"
    p = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {p.stderr.strip() or p.returncode}")
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        ns = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            setns(ns)
        finally:
            os.close(ns)
        try:
            yield name
        finally:
            setns(home)
    finally:
        os.close(home)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def config(resolver_port, ports=(80, 443), extra=""):
    return (f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [fproxy]\n"
            f"  forwardProxyPorts: [{', '.join(map(str, ports))}]\n  resolver: \"127.0.0.1:{resolver_port}\"\n"
            f"  dnsTimeout: 500\n  dnsTries: 1\n{extra}")


def status_of(gw, request):
    with gw.connect() as c:
        c.send(request)
        return c.read_response().status


def test_namespace_has_no_way_out(netns):
    routes = subprocess.run(["ip", "-n", netns, "route", "show"], capture_output=True, text=True, check=True)
    assert routes.stdout.strip() == ""
    for family, addr in ((socket.AF_INET, ("10.0.0.1", 80)), (socket.AF_INET6, ("fc00::1", 80))):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            assert s.connect_ex(addr) == errno.ENETUNREACH
        finally:
            s.close()


def test_private_destinations_refused(netns, start_gateway):
    dns = DnsServer({"internal.test": ("127.0.0.1", 60)})
    try:
        gw = start_gateway(config(dns.port))
        ns_inode = os.stat(f"/run/netns/{netns}").st_ino
        assert os.readlink(f"/proc/{gw.proc.pid}/ns/net") == f"net:[{ns_inode}]"  # the gateway is inside
        for host in PRIVATE + ["internal.test"]:
            get = f"GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            connect = f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode()
            assert status_of(gw, get) == 403, host
            assert status_of(gw, connect) == 403, host
        log = gw.stderr()
        for host in PRIVATE + ["internal.test"]:
            bare = host.strip("[]")
            for port in (80, 443):
                assert f"to {bare} port {port} refused: private or special address" in log, (host, log)
        assert dns.count("internal.test") >= 1  # refused on the resolved address, not on the name
    finally:
        dns.close()


def test_resolved_loopback_allowed_by_cidr(netns, start_gateway):
    """The control: with 127.0.0.0/8 allowed, the same name tunnels to a target in the namespace,
    so the 403s above come from the policy and not from a resolver or network failure."""
    dns = DnsServer({"internal.test": ("127.0.0.1", 60)})
    echo = EchoServer()
    try:
        gw = start_gateway(config(dns.port, (echo.port,), '  forwardProxyAllow: ["127.0.0.0/8"]\n'))
        with gw.connect() as c:
            c.send(f"CONNECT internal.test:{echo.port} HTTP/1.1\r\nHost: internal.test\r\n\r\n".encode())
            assert c.read_head()[1] == 200
            c.send(b"inside")
            assert c._read_exact(6) == b"inside"
        for host in PRIVATE:  # still refused: only loopback was allowed
            req = f"GET http://{host}:{echo.port}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            assert status_of(gw, req) == 403, host
    finally:
        echo.close()
        dns.close()
