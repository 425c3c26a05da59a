"""
A scripted origin for the cache tests: each test registers what a path answers (a function of the
request) and reads back how many requests each path received, which proves hits and misses.
Built on backends.Backend (keep-alive HTTP/1.1 on loopback); unscripted paths fall through to the
Backend's own endpoints.
"""
import threading
import time
from email.utils import formatdate

import pytest

from backends import Backend
from conftest import make_config


def http_date(t=None):
    return formatdate(time.time() if t is None else t, usegmt=True)


class Origin(Backend):
    def __init__(self):
        self.routes = {}
        self.hits = {}
        self.seen = {}  # path -> list of request header dicts (lower-case names)
        self.hit_lock = threading.Lock()
        super().__init__("origin")

    def route(self, path, fn=None, status=200, headers=(), body=b"body", delay=0.0):
        """Scripts `path`: `fn(method, hmap, n)` -> (status, headers, body), or a fixed answer."""
        if fn is None:
            def fn(method, hmap, n, _s=status, _h=list(headers), _b=body):
                return _s, _h, _b
        self.routes[path] = (fn, delay)

    def count(self, path):
        with self.hit_lock:
            return self.hits.get(path, 0)

    def _respond(self, c, method, target, version, headers, hmap, body):
        if target not in self.routes:
            return super()._respond(c, method, target, version, headers, hmap, body)
        with self.hit_lock:
            self.hits[target] = self.hits.get(target, 0) + 1
            n = self.hits[target]
            self.seen.setdefault(target, []).append(dict(hmap))
        fn, delay = self.routes[target]
        if delay:
            time.sleep(delay)
        status, hdrs, out = fn(method, hmap, n)
        if out == "DIE":  # a length promised and not delivered: the backend dies mid-body
            self._send(c, status, list(hdrs) + [("Content-Length", 100000)], b"x" * 1000)
            time.sleep(0.05)
            c.close()
            return False
        if isinstance(out, str):
            out = out.encode()
        hdrs = list(hdrs)
        if not any(k.lower() == "date" for k, _ in hdrs):
            hdrs.append(("Date", http_date()))
        if status in (204, 304) or status < 200:
            self._send(c, status, hdrs)
        else:
            hdrs.append(("Content-Length", len(out)))
            self._send(c, status, hdrs, b"" if method == "HEAD" else out)
        return True


# ---- fixtures and helpers shared by the cache test files ----

@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.close()


@pytest.fixture(params=[1, 2], ids=["w1", "w2"])
def workers(request):
    return request.param


@pytest.fixture
def cached(start_gateway, origin, workers, tmp_path):
    """Factory: a gateway with loadModules [cache, rproxy] in front of `origin`."""

    def start(**props):
        text = make_config(workers=workers, proxyTo=origin.url, **props)
        text = text.replace("global:\n", "global:\n  loadModules:\n    - cache\n    - rproxy\n", 1)
        return start_gateway(text)

    return start


def xc(r):
    return r.header("x-gateway-cache")


def cs(r):
    return r.header("cache-status") or ""
