#!/usr/bin/env python3
"""
Soak run: the real gateway under mixed traffic for a while, with reloads and backend restarts,
sampling its resident memory and open file descriptors. It fails when the gateway dies, prints a
sanitizer report, answers anything but 200 outside a backend's restart window, loses HTTP/2
requests, or grows: memory over the second half of the run must stay within a bound of the first
half's peak, and its descriptors must return to the idle baseline once traffic stops.

    /usr/bin/python3 tests/soak/soak.py --gateway build-asan/gateway --duration 120   # CI
    /usr/bin/python3 tests/soak/soak.py --gateway build-release/gateway --duration 600

Traffic (HTTP/1.1 keep-alive clients in threads, and h2load bursts over h2c):
  /index.html    static file (1 KiB)         /big.bin       static file (256 KiB, sendfile)
  /bytes/N       reverse proxy, restarted    /cached/item   reverse proxy + response cache
  /hi.php        FastCGI (PHP-FPM), restarted
Exit status 0 when every check holds; the summary is printed as JSON.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

from backends import Backend  # noqa: E402
from cache_origin import Origin  # noqa: E402
from cgi_backends import PhpFpm, find_php_fpm  # noqa: E402
from conftest import PORT_PLACEHOLDER, SANITIZER_MARKERS, Gateway  # noqa: E402

STATIC = {"/index.html": 1024, "/big.bin": 256 * 1024}
RESTART_GRACE = 3.0  # seconds after a restart during which the restarted backend may still fail


def config(port, www, backend, origin, fpm, generation):
    """The soak config; `generation` changes a response header so every reload is a real change."""
    return (f"global:\n  port: {port}\n  workers: 2\n  wwwroot: \"{www}\"\n"
            "  loadModules: [rproxy, cache, fcgi]\n"
            f"  fcgiTo: \"{fpm}\"\n  fcgiScriptExtensions: [\".php\"]\n"
            "  proxyKeepaliveTimeout: 2000\n  keepaliveTimeout: 5000\n  proxyBackoffMax: 1000\n  proxyReadTimeout: 5000\n"
            f"  customHeaders:\n    X-Generation: \"{generation}\"\n"
            "hosts:\n  - domain: \"*\"\n    locations:\n"
            f"      - path: /bytes\n        proxyTo: \"{backend}\"\n"
            f"      - path: /cached\n        proxyTo: \"{origin}\"\n")


class Events:
    """Restart windows per traffic class, and everything that went wrong."""

    def __init__(self):
        self.lock = threading.Lock()
        self.windows = {"api": [], "php": []}
        self.counts = {}
        self.failures = []

    def restart_begins(self, cls):
        """Opens a restart window (before the backend goes away, so failures during it are excused
        as they happen); returns it for restart_ends."""
        w = [time.monotonic(), float("inf")]
        with self.lock:
            self.windows[cls].append(w)
        return w

    def restart_ends(self, cls, w):
        with self.lock:
            self.counts[f"{cls} restart ms"] = self.counts.get(f"{cls} restart ms", 0) + int(
                (time.monotonic() - w[0]) * 1000)
            w[1] = time.monotonic() + RESTART_GRACE

    def excused(self, cls, t):
        with self.lock:
            return any(a - 0.5 <= t <= b for a, b in self.windows.get(cls, []))

    def count(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def fail(self, what):
        with self.lock:
            if len(self.failures) < 50:
                self.failures.append(what)


def pick_request():
    r = random.random()
    if r < 0.35:
        return "static", random.choice(list(STATIC))
    if r < 0.6:
        return "api", f"/bytes/{random.choice((100, 1024, 16384))}"
    if r < 0.8:
        return "cached", "/cached/item"
    return "php", "/hi.php"


def expected_length(path):
    if path in STATIC:
        return STATIC[path]
    if path.startswith("/bytes/"):
        return int(path.rsplit("/", 1)[1])
    return None


def client_loop(port, stop, ev):
    conn = None
    while not stop.is_set():
        cls, path = pick_request()
        t = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path, headers={"Host": "localhost"})
            resp = conn.getresponse()
            body = resp.read()
            status = resp.status
            ok = status == 200 and (expected_length(path) in (None, len(body)))
            if status == 200 and cls == "php" and body != b"hi":
                ok = False
            if resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            status, ok = type(e).__name__, False
            if conn:
                conn.close()
            conn = None
        ev.count(f"{cls} {status}")
        if not ok and not ev.excused(cls, t):
            ev.fail(f"{time.strftime('%H:%M:%S')} {path}: {status}")
    if conn:
        conn.close()


def h2_burst(port, ev):
    """One h2load run over h2c: every request must succeed."""
    urls = [f"http://127.0.0.1:{port}/index.html", f"http://127.0.0.1:{port}/cached/item"]
    out = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "10", *urls],
                         capture_output=True, text=True, timeout=60).stdout
    line = next((l for l in out.splitlines() if l.startswith("requests:")), "")
    ev.count("h2load runs")
    # "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout"
    if "2000 succeeded" not in line:
        ev.fail(f"h2load: {line or out[-300:]}")


def sample(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def fd_kinds(pid):
    """What the gateway's descriptors are (socket, pipe, anon_inode:[eventpoll], files): a
    diagnostic for a descriptor count that did not come back."""
    kinds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        k = t.split(":")[0] if ":" in t and not t.startswith("/") else ("file" if t.startswith("/") else t)
        kinds[k] = kinds.get(k, 0) + 1
    return kinds


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", default=os.environ.get("GATEWAY_BIN", "build-asan/gateway"))
    ap.add_argument("--duration", type=float, default=120, help="seconds of traffic (default 120)")
    ap.add_argument("--clients", type=int, default=6, help="HTTP/1.1 client threads (default 6)")
    ap.add_argument("--reload-every", type=float, default=10)
    ap.add_argument("--restart-every", type=float, default=30)
    return ap.parse_args()


class Soak:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.ev = Events()
        www = work / "www"
        www.mkdir()
        (www / "index.html").write_bytes(b"x" * STATIC["/index.html"])
        (www / "big.bin").write_bytes(os.urandom(STATIC["/big.bin"]))
        (www / "hi.php").write_text('<?php echo "hi";')
        self.www = www
        self.backend = Backend("soak")
        self.origin = Origin()
        self.origin.route("/cached/item", headers=[("Cache-Control", "max-age=2")], body=b"c" * 2048)
        # every FCGI_KEEP_CONN connection a worker keeps holds a PHP-FPM child: more children than
        # the run can have connections open, as PHP-FPM with any keep-alive proxy needs
        self.fpm = PhpFpm(work / "fpm", children=16)
        self.gw = Gateway(work / "gw", binary=args.gateway)
        self.generation = 0
        self.samples = []
        self.reloads = 0
        self.restarts = 0

    def config_text(self, port):
        return config(port, self.www, self.backend.url, self.origin.url, self.fpm.url, self.generation)

    def reload(self):
        self.generation += 1
        self.gw.config_path.write_text(self.config_text(self.gw.port))
        self.gw.signal(signal.SIGHUP)
        self.reloads += 1
        print(f"{time.strftime('%H:%M:%S')} reload", file=sys.stderr)

    def restart_backend(self):
        w = self.ev.restart_begins("api")
        port = self.backend.port
        self.backend.close()
        time.sleep(0.5)
        self.backend = Backend("soak", port=port)
        self.ev.restart_ends("api", w)
        print(f"{time.strftime('%H:%M:%S')} backend restarted", file=sys.stderr)
        self.restarts += 1

    def restart_fpm(self):
        w = self.ev.restart_begins("php")
        self.fpm.stop()
        self.fpm = PhpFpm(self.work / "fpm", children=16)
        self.ev.restart_ends("php", w)
        print(f"{time.strftime('%H:%M:%S')} php-fpm restarted", file=sys.stderr)
        self.restarts += 1

    def run(self):
        self.gw.start(self.config_text(PORT_PLACEHOLDER))
        pid, port = self.gw.proc.pid, self.gw.port
        time.sleep(0.5)
        idle_rss, idle_fds = sample(pid)
        self.idle_fd_kinds = fd_kinds(pid)
        stop = threading.Event()
        clients = [threading.Thread(target=client_loop, args=(port, stop, self.ev), daemon=True)
                   for _ in range(self.args.clients)]
        for c in clients:
            c.start()
        start = time.monotonic()
        next_reload = start + self.args.reload_every
        next_restart = start + self.args.restart_every
        next_h2 = start + 5
        fpm_turn = False
        while (now := time.monotonic()) < start + self.args.duration and self.gw.alive():
            if now >= next_reload:
                self.reload()
                next_reload += self.args.reload_every
            if now >= next_restart:
                self.restart_fpm() if fpm_turn else self.restart_backend()
                fpm_turn = not fpm_turn
                next_restart += self.args.restart_every
            if now >= next_h2:
                h2_burst(port, self.ev)
                next_h2 = time.monotonic() + 15
            self.samples.append((round(now - start, 1), *sample(pid)))
            time.sleep(1)
        stop.set()
        for c in clients:
            c.join(timeout=15)
        time.sleep(4)  # idle client and backend connections time out (keepalive 5 s, pool 2 s)
        end_rss, end_fds = sample(pid) if self.gw.alive() else (0, 0)
        self.end_fd_kinds = fd_kinds(pid) if self.gw.alive() else {}
        return self.verdict(idle_rss, idle_fds, end_rss, end_fds)

    def verdict(self, idle_rss, idle_fds, end_rss, end_fds):
        alive = self.gw.alive()
        rc = self.gw.stop()
        stderr = self.gw.stderr()
        half = len(self.samples) // 2
        first_peak = max((s[1] for s in self.samples[:half]), default=0)
        second_peak = max((s[1] for s in self.samples[half:]), default=0)
        problems = list(self.ev.failures)
        if not alive:
            problems.append("the gateway died during the run")
        if rc != 0:
            problems.append(f"exit status {rc} after SIGTERM")
        problems += [f"sanitizer: {m}" for m in SANITIZER_MARKERS if m in stderr]
        # bounded growth: the second half may not outgrow the first half's peak by more than 25%
        # (plus 16 MiB of slack for allocator and cache warm-up on short runs)
        if second_peak > first_peak * 1.25 + 16 * 1024:
            problems.append(f"memory grew: first-half peak {first_peak} KiB, second-half peak {second_peak} KiB")
        # sockets, pipes and event descriptors come back to what an idle gateway has; open files may
        # stay: the open-file cache keeps the site's files (per config generation's root directory),
        # bounded by its own limit
        start_k, end_k = self.idle_fd_kinds, self.end_fd_kinds
        if any(end_k.get(k, 0) > start_k.get(k, 0) for k in end_k if k != "file"):
            problems.append(f"descriptors did not return to idle: {start_k} at start, {end_k} at the end")
        return {
            "duration_s": self.args.duration, "reloads": self.reloads, "backend_restarts": self.restarts,
            "requests": dict(sorted(self.ev.counts.items())),
            "rss_kib": {"idle": idle_rss, "first_half_peak": first_peak, "second_half_peak": second_peak,
                        "end": end_rss},
            "fds": {"idle": idle_fds, "peak": max((s[2] for s in self.samples), default=0), "end": end_fds,
                    "idle_kinds": self.idle_fd_kinds, "end_kinds": self.end_fd_kinds},
            "problems": problems,
        }

    def close(self):
        self.gw.stop()
        self.backend.close()
        self.origin.close()
        self.fpm.stop()


def main():
    args = parse_args()
    args.gateway = str(Path(args.gateway).resolve())  # the gateway runs in its own work directory
    if not Path(args.gateway).exists():
        sys.exit(f"soak: no gateway binary at {args.gateway}")
    if not find_php_fpm() or not shutil.which("h2load"):
        sys.exit("soak: php-fpm and h2load (nghttp2-client) are needed")
    # a small ASan quarantine, so that memory figures reflect the gateway and not the sanitizer
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    soak = Soak(args, work)
    try:
        summary = soak.run()
    finally:
        soak.close()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary, indent=2))
    sys.exit(1 if summary["problems"] else 0)


if __name__ == "__main__":
    main()
