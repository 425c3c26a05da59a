"""A tiny authoritative DNS server on loopback UDP for resolver tests (A/AAAA, NXDOMAIN, silence).

  names: {"app.test": ("127.0.0.1", ttl)}   answered with one A record
  silent: a set of names never answered (a slow or dead resolver)
Everything else is NXDOMAIN. AAAA queries for known names get an empty NOERROR answer.
"""
import socket
import struct
import threading


class DnsServer:
    def __init__(self, names, silent=()):
        self.names = dict(names)
        self.silent = set(silent)
        self.queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.running = True
        threading.Thread(target=self._loop, daemon=True).start()

    def close(self):
        self.running = False
        self.sock.close()

    def count(self, name, qtype=1):
        return sum(1 for n, t in self.queries if n == name and t == qtype)

    def _loop(self):
        while self.running:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            reply = self._answer(data)
            if reply:
                self.sock.sendto(reply, addr)

    def _answer(self, q):
        if len(q) < 12:
            return None
        qid, flags, qd = struct.unpack("!HHH", q[:6])
        pos, labels = 12, []
        while q[pos]:
            labels.append(q[pos + 1:pos + 1 + q[pos]].decode().lower())
            pos += q[pos] + 1
        name = ".".join(labels)
        qtype, qclass = struct.unpack("!HH", q[pos + 1:pos + 5])
        question = q[12:pos + 5]
        self.queries.append((name, qtype))
        if name in self.silent:
            return None
        if name not in self.names:
            return struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
        ip, ttl = self.names[name]
        if qtype != 1:
            return struct.pack("!HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question  # no AAAA
        rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, ttl, 4) + socket.inet_aton(ip)
        return struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + rr
