"""A raw TCP target for tunnel tests: one thread, non-blocking sockets, any number of connections.

Every byte received is echoed back, except the commands below (each on its own in one segment):
  b"!close"  the server closes its side cleanly (FIN) after what it already owes
  b"!reset"  the server resets the connection (RST, SO_LINGER 0)
  b"!flood"  the server sends FLOOD_BYTES of pattern(), as fast as the peer takes them
When the client ends its side (half-close), the server sends b"<eof>" and then closes.

  paused     an Event: while it is clear nothing is read (the peer's sends back up)
  received   total bytes read, connections accepted, open connections
"""
import selectors
import socket
import struct
import threading

FLOOD_BYTES = 16 * 1024 * 1024


_BLOCK = bytes(i % 251 for i in range(251 * 256))  # whole periods, to send from


def pattern(n):
    """The first n bytes of the flood: i % 251, so a lost or repeated piece shows."""
    return (_BLOCK * (n // len(_BLOCK) + 1))[:n]


class EchoServer:
    def __init__(self, host="127.0.0.1", family=socket.AF_INET):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(4096)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ, None)
        self.paused = threading.Event()
        self.paused.set()  # set: reading; clear: paused
        self.lock = threading.Lock()
        self.accepted = 0
        self.received = 0
        self.conns = {}  # socket -> bytearray owed to the peer
        self.closing = set()  # sockets to close once what they are owed is written
        self.interest = {}  # socket -> events registered (absent: not registered)
        self.dirty = set()  # sockets whose interest may have changed
        self.flood = {}  # socket -> flood bytes still to send
        self.flooded = 0  # flood bytes written so far (all connections)
        self.stopping = False
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    @property
    def open_connections(self):
        with self.lock:
            return len(self.conns)

    def pause(self):
        self.paused.clear()
        self.wake_w.send(b"x")

    def resume(self):
        self.paused.set()
        self.wake_w.send(b"x")

    def close(self):
        self.stopping = True
        self.wake_w.send(b"x")
        self.thread.join(5)
        for c in list(self.conns):
            c.close()
        self.sock.close()
        self.wake_r.close()
        self.wake_w.close()

    # -- the loop --

    def _loop(self):
        while not self.stopping:
            for key, events in self.sel.select(0.2):
                if key.data == "wake":
                    try:
                        self.wake_r.recv(4096)
                    except BlockingIOError:
                        pass
                    self.dirty.update(self.conns)  # paused or resumed: every interest changes
                elif key.data is None:
                    self._accept()
                else:
                    self._event(key.fileobj, events)
            self._rearm()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except (BlockingIOError, OSError):
                return
            c.setblocking(False)
            with self.lock:
                self.accepted += 1
                self.conns[c] = bytearray()
            self.dirty.add(c)

    def _interest(self, c):
        ev = selectors.EVENT_READ if self.paused.is_set() and c not in self.closing else 0
        if self.conns.get(c) or self.flood.get(c):
            ev |= selectors.EVENT_WRITE
        return ev

    def _rearm(self):
        dirty, self.dirty = self.dirty, set()
        for c in dirty:
            if c not in self.conns:
                continue
            ev = self._interest(c)
            if not ev and c in self.closing:
                self._drop(c)
            elif ev == self.interest.get(c, 0):
                continue
            elif not ev:
                self.sel.unregister(c)
                del self.interest[c]
            elif c in self.interest:
                self.sel.modify(c, ev, "conn")
                self.interest[c] = ev
            else:
                self.sel.register(c, ev, "conn")
                self.interest[c] = ev

    def _event(self, c, events):
        if c not in self.conns:
            return
        self.dirty.add(c)
        if events & selectors.EVENT_WRITE:
            self._write(c)
        if c in self.conns and events & selectors.EVENT_READ and self.paused.is_set() and c not in self.closing:
            self._read(c)

    def _read(self, c):
        try:
            data = c.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self._drop(c)
            return
        if not data:
            self.conns[c] += b"<eof>"
            self.closing.add(c)
            return
        with self.lock:
            self.received += len(data)
        if data == b"!close":
            self.closing.add(c)
        elif data == b"!flood":
            self.flood[c] = FLOOD_BYTES
        elif data == b"!reset":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._drop(c)
        else:
            self.conns[c] += data

    def _write(self, c):
        out, flood = self.conns[c], self.flood.get(c, 0)
        if not out and flood:
            done = FLOOD_BYTES - flood
            off = done % 251
            out = memoryview(_BLOCK)[off:off + min(flood, len(_BLOCK) - off)]
        try:
            n = c.send(out)
        except BlockingIOError:
            return
        except OSError:
            self._drop(c)
            return
        if self.conns[c]:
            del self.conns[c][:n]
        else:
            self.flood[c] = flood - n
            with self.lock:
                self.flooded += n

    def _drop(self, c):
        if self.interest.pop(c, None) is not None:
            self.sel.unregister(c)
        with self.lock:
            self.conns.pop(c, None)
        self.closing.discard(c)
        self.flood.pop(c, None)
        c.close()
