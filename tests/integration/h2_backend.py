"""
A real HTTP/2 backend with prior knowledge (h2c) on loopback, built on the python h2 state machine,
for the gateway's HTTP/2 client. It counts the TCP connections it accepted, so tests can prove that
streams share one connection. Each request is answered on its own thread (so slow answers overlap).

Endpoints:
  /echo...      JSON: method, path, headers (lower-case names), body length; the body is read first
  /bytes/N      N bytes, pattern bytes(i % 251), sent as the stream's flow control allows
  /slow/MS      "ok" after MS milliseconds
  /trailers     a body, then trailers x-checksum: abc and x-count: 2
  /reset        a head and 1000 body bytes, then RST_STREAM(INTERNAL_ERROR)
  /goaway       "bye", then GOAWAY (NO_ERROR) naming this stream as the last one
"""
import json
import socket
import struct
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings


class H2Backend:
    def __init__(self, max_concurrent_streams=100):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.max_concurrent_streams = max_concurrent_streams
        self.connections = 0
        self.requests = 0
        self.max_active = 0  # most streams open at once on one connection
        self.ended = 0  # connections the gateway closed
        self.resets = 0  # streams the gateway reset
        self.mute = False  # drop every byte received, PINGs included (a hung backend)
        self.lock = threading.Lock()
        self.stopping = False
        self.open = []
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def url(self):
        return f"h2c://127.0.0.1:{self.port}"

    def close(self):
        self.stopping = True
        for s in [self.sock] + list(self.open):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept_loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open.append(c)
            threading.Thread(target=_Conn(self, c).run, daemon=True).start()


class _Conn:
    def __init__(self, backend, sock):
        self.b = backend
        self.sock = sock
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.cv = threading.Condition()
        self.bodies = {}
        self.heads = {}
        self.active = 0
        self.closed = False

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def run(self):
        with self.cv:
            self.h2.initiate_connection()
            limit = self.b.max_concurrent_streams
            self.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limit})
            self.flush()
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self.b.lock:
                    self.b.ended += 1
                break
            if self.b.mute:
                continue
            with self.cv:
                try:
                    events = self.h2.receive_data(data)
                except Exception:
                    break
                for ev in events:
                    self.on_event(ev)
                self.flush()
                self.cv.notify_all()
        with self.cv:
            self.closed = True
            self.cv.notify_all()
        self.sock.close()

    def on_event(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            self.heads[ev.stream_id] = dict(ev.headers)
            self.bodies[ev.stream_id] = 0
            self.active += 1
            with self.b.lock:
                self.b.requests += 1
                self.b.max_active = max(self.b.max_active, self.active)
        elif isinstance(ev, h2.events.DataReceived):
            self.bodies[ev.stream_id] = self.bodies.get(ev.stream_id, 0) + len(ev.data)
            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            threading.Thread(target=self.answer, args=(ev.stream_id,), daemon=True).start()
        elif isinstance(ev, h2.events.StreamReset):
            with self.b.lock:
                self.b.resets += 1

    def send_body(self, sid, body, end=True):
        """Sends body bytes as the flow-control windows allow (the caller holds self.cv)."""
        off = 0
        while off < len(body):
            window = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
            if window <= 0:
                self.cv.wait(1.0)
                if self.closed:
                    return
                continue
            chunk = body[off:off + window]
            off += len(chunk)
            self.h2.send_data(sid, chunk, end_stream=end and off == len(body))
            self.flush()
        if end and not body:
            self.h2.send_data(sid, b"", end_stream=True)
            self.flush()

    def answer(self, sid):
        head = self.heads.pop(sid)
        path = head[":path"]
        if path.startswith("/slow/"):
            time.sleep(int(path[6:]) / 1000.0)
        with self.cv:
            try:
                self.respond(sid, head, path)
            except Exception:
                pass  # the stream or connection went away meanwhile
            self.active -= 1
            self.flush()

    def respond(self, sid, head, path):
        h = self.h2
        if path.startswith("/echo"):
            body = json.dumps({"method": head[":method"], "path": path, "authority": head.get(":authority"),
                               "headers": {k: v for k, v in head.items() if not k.startswith(":")},
                               "body_length": self.bodies.pop(sid, 0)}).encode()
            h.send_headers(sid, [(":status", "200"), ("content-type", "application/json"),
                                 ("content-length", str(len(body)))])
            self.send_body(sid, body)
        elif path.startswith("/bytes/"):
            n = int(path[7:])
            h.send_headers(sid, [(":status", "200"), ("content-length", str(n))])
            self.send_body(sid, (bytes(range(251)) * (n // 251 + 1))[:n])
        elif path.startswith("/slow/"):
            h.send_headers(sid, [(":status", "200")])
            self.send_body(sid, b"ok")
        elif path == "/trailers":
            h.send_headers(sid, [(":status", "200"), ("content-type", "text/plain")])
            self.send_body(sid, b"body before trailers", end=False)
            h.send_headers(sid, [("x-checksum", "abc"), ("x-count", "2")], end_stream=True)
        elif path == "/reset":
            h.send_headers(sid, [(":status", "200"), ("content-length", "100000")])
            self.send_body(sid, b"x" * 1000, end=False)
            h.reset_stream(sid, error_code=h2.errors.ErrorCodes.INTERNAL_ERROR)
        elif path == "/goaway":
            h.send_headers(sid, [(":status", "200")])
            self.send_body(sid, b"bye")
            # a raw GOAWAY: python-h2 would refuse to answer the streams still in flight after its own
            goaway = struct.pack(">I", 8)[1:] + bytes([7, 0]) + struct.pack(">III", 0, sid, 0)
            self.sock.sendall(goaway)
        else:
            h.send_headers(sid, [(":status", "404"), ("content-length", "0")], end_stream=True)
