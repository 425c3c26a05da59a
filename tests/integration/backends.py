"""
Real HTTP/1.1 backends for proxy tests: a small threaded server speaking keep-alive HTTP/1.1 on
loopback, counting the TCP connections it accepted (and those that ended) so tests can prove
connection reuse and closing.

Endpoints:
  /echo...        JSON: method, path (with query), headers, body length and sha256 of the body
  /bytes/N        N bytes (Content-Length), pattern bytes(i % 251)
  /chunked/N/K    N chunks of K bytes each, Transfer-Encoding: chunked, flushed one by one
  /close/N        N bytes, no length: the body ends when the connection closes
  /die            a Content-Length of 100000 but only 1000 bytes, then the connection is closed
  /never          reads the request and never answers
  /status/N       status N with a short body
  /health         a health-check endpoint: status `health_status` (200) after `health_delay` seconds;
                  each probe counted in `health_probes` (tests flip both while the backend runs)
  /sse            three server-sent events 0.2 s apart (chunked)
  /ws             a WebSocket handshake (101 with Sec-WebSocket-Accept), then every byte echoed back
  /auth           a forward-auth server: "Bearer good" -> 200 with X-User: alice; "Bearer go-login"
                  -> 302 to /login; anything else -> 401 with a body. Records the last request.
"""
import hashlib
import json
import socket
import threading
import time


class Backend:
    def __init__(self, name="b", port=0):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))  # a fixed port lets a test restart a backend
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.ended = 0  # connections that are over (either side closed them)
        self.requests = 0
        self.health_status = 200
        self.health_delay = 0.0
        self.health_probes = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.threads = []
        self.open = []
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self.threads.append(t)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        for c in list(self.open):
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def _accept_loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            self.open.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    # -- one connection --

    def _serve(self, c):
        try:
            c.settimeout(30)  # inside the try: close() may have closed c before this thread ran
            f = c.makefile("rb")
            while not self.stopping:
                req = self._read_request(f)
                if req is None:
                    return
                with self.lock:
                    self.requests += 1
                if not self._respond(c, *req):
                    return
        except (OSError, ValueError):
            return
        finally:
            try:
                c.close()
            except OSError:
                pass
            with self.lock:
                self.ended += 1

    def _read_request(self, f):
        line = f.readline(65536)
        if not line:
            return None
        method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers = []
        while True:
            h = f.readline(65536).decode("latin-1")
            if h in ("\r\n", "\n", ""):
                break
            k, v = h.split(":", 1)
            headers.append((k.strip(), v.strip()))
        hmap = {k.lower(): v for k, v in headers}
        body = b""
        if "content-length" in hmap:
            body = f.read(int(hmap["content-length"]))
        elif hmap.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked(f)
        return method, target, version, headers, hmap, body

    @staticmethod
    def _read_chunked(f):
        body = bytearray()  # not bytes +=: that is quadratic on large uploads
        while True:
            size = int(f.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            body += f.read(size)
            f.readline()

    @staticmethod
    def _send(c, status, headers, body=b"", close=False):
        head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        if close:
            head += "Connection: close\r\n"
        c.sendall(head.encode() + b"\r\n" + body)

    def _respond(self, c, method, target, version, headers, hmap, body):
        path = target.split("?", 1)[0]
        parts = path.strip("/").split("/")
        if path.startswith("/echo"):
            doc = {"backend": self.name, "method": method, "target": target, "headers": headers,
                   "body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}
            out = json.dumps(doc).encode()
            self._send(c, 200, [("Content-Type", "application/json"), ("Content-Length", len(out))],
                       b"" if method == "HEAD" else out)
            return True
        if parts[0] == "bytes":
            n = int(parts[1])
            data = bytes(i % 251 for i in range(min(n, 251 * 4096)))
            data = (data * (n // len(data) + 1))[:n] if n else b""
            self._send(c, 200, [("Content-Length", n)], b"" if method == "HEAD" else data)
            return True
        if parts[0] == "chunked":
            n, k = int(parts[1]), int(parts[2])
            self._send(c, 200, [("Transfer-Encoding", "chunked")])
            for i in range(n):
                c.sendall(b"%x\r\n" % k + bytes([65 + i % 26]) * k + b"\r\n")
            c.sendall(b"0\r\n\r\n")
            return True
        if parts[0] == "close":
            n = int(parts[1])
            self._send(c, 200, [], bytes(i % 251 for i in range(n)), close=True)
            return False
        if parts[0] == "die":
            self._send(c, 200, [("Content-Length", 100000)], b"x" * 1000)
            time.sleep(0.1)
            c.shutdown(socket.SHUT_RDWR)
            return False
        if parts[0] == "never":
            time.sleep(30)
            return False
        if parts[0] == "ws":
            import base64
            key = hmap.get("sec-websocket-key", "")
            accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
            ok = hmap.get("upgrade", "").lower() == "websocket" and "upgrade" in hmap.get("connection", "").lower()
            if not ok:
                self._send(c, 400, [("Content-Length", 0)])
                return True
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            while True:
                data = c.recv(65536)
                if not data:
                    return False
                c.sendall(data)
        if parts[0] == "auth":
            self.last_auth = hmap
            self.last_auth_target = target
            token = hmap.get("authorization", "")
            if token == "Bearer good":
                self._send(c, 200, [("Content-Length", 2), ("X-User", "alice"), ("X-Other", "no")], b"ok")
            elif token == "Bearer go-login":
                self._send(c, 302, [("Location", "https://login.test/?next=1"), ("Content-Length", 0)])
            else:
                out = b"denied by auth\n"
                self._send(c, 401, [("WWW-Authenticate", "Bearer"), ("Content-Length", len(out))], out)
            return True
        if parts[0] == "health":
            with self.lock:
                self.health_probes += 1
            time.sleep(self.health_delay)
            out = f"health {self.health_status}\n".encode()
            self._send(c, self.health_status, [("Content-Length", len(out))], out)
            return True
        if parts[0] == "status":
            code = int(parts[1])
            out = f"status {code}\n".encode()
            self._send(c, code, [("Content-Length", len(out)), ("X-Backend", self.name)], out)
            return True
        if parts[0] == "sse":
            self._send(c, 200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")])
            for i in range(3):
                ev = f"data: event {i}\n\n".encode()
                c.sendall(b"%x\r\n" % len(ev) + ev + b"\r\n")
                time.sleep(0.2)
            c.sendall(b"0\r\n\r\n")
            return True
        self._send(c, 404, [("Content-Length", 0)])
        return True
