"""A fault-injecting HTTPS proxy between the gateway and a real pebble, for what pebble cannot do:
rate limits (RFC 8555 §6.6, HTTP 429 with Retry-After and a urn:ietf:params:acme:error:rateLimited
problem document).

Every request is forwarded to pebble with its Host header unchanged, so pebble builds its URLs (and
checks the JWS "url") for the proxy; any pebble URL left in a body, Location or Link header is
rewritten to the proxy all the same. The first `reject` newOrder POSTs are answered by the proxy
itself with 429. Each answer is recorded as (monotonic time, method, path, status), and each TCP
connection is counted (the gateway keeps connections to the CA alive).
"""
import http.client
import http.server
import json
import ssl
import threading
import time

from tls_helpers import make_cert

PASSED_HEADERS = ("content-type", "replay-nonce", "location", "link", "retry-after", "cache-control")


class FaultProxy:
    def __init__(self, workdir, pebble, reject=1, retry_after="2"):
        self.pebble = pebble
        self.reject = reject
        self.retry_after = retry_after
        self.log = []
        self.connections = 0
        self.lock = threading.Lock()
        self.new_order_path = None
        self.cert, key = make_cert(workdir, "fault-proxy", ["DNS:localhost", "IP:127.0.0.1"])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(key))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def directory(self):
        return f"https://localhost:{self.port}/dir"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def times(self, path, status=None):
        with self.lock:
            return [t for t, _, p, s in self.log if p == path and (status is None or s == status)]

    def _rewrite(self, text):
        for host in ("localhost", "127.0.0.1"):
            text = text.replace(f"https://{host}:{self.pebble.port}", f"https://localhost:{self.port}")
        return text

    def _forward(self, method, path, headers, body):
        ctx = ssl.create_default_context(cafile=str(self.pebble.cert))
        conn = http.client.HTTPSConnection("localhost", self.pebble.port, context=ctx, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            conn.close()

    def _fresh_nonce(self, host):
        _, headers, _ = self._forward("HEAD", "/nonce-plz", {"Host": host}, None)
        return dict((k.lower(), v) for k, v in headers).get("replay-nonce", "")

    def _rate_limited(self, method, path):
        with self.lock:
            if method != "POST" or path != self.new_order_path or self.reject <= 0:
                return False
            self.reject -= 1
            return True

    def _handler_class(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with proxy.lock:
                    proxy.connections += 1

            def log_message(self, *args):
                pass

            def _answer(self, status, headers, body):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                with proxy.lock:
                    proxy.log.append((time.monotonic(), self.command, self.path, status))

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                host = self.headers.get("Host", f"localhost:{proxy.port}")
                if proxy._rate_limited(self.command, self.path):
                    problem = {"type": "urn:ietf:params:acme:error:rateLimited",
                               "detail": "too many new orders recently (fault proxy)", "status": 429}
                    self._answer(429, [("Content-Type", "application/problem+json"),
                                       ("Retry-After", proxy.retry_after),
                                       ("Replay-Nonce", proxy._fresh_nonce(host))],
                                 json.dumps(problem).encode())
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("host", "content-type")}
                status, rheaders, rbody = proxy._forward(self.command, self.path, headers, body or None)
                text = proxy._rewrite(rbody.decode("utf-8", "replace"))
                if self.path == "/dir" and status == 200:
                    proxy.new_order_path = "/" + json.loads(text)["newOrder"].split("/", 3)[3]
                kept = [(k, proxy._rewrite(v)) for k, v in rheaders if k.lower() in PASSED_HEADERS]
                self._answer(status, kept, text.encode() if text.isascii() else rbody)

            do_GET = do_POST = do_HEAD = _handle

        return Handler
