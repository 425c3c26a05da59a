#!/usr/bin/python3
"""Benchmark of the gateway beside peer servers (nginx now; h2o and HAProxy optional).

Method (see tests/bench/README.md): every server runs ONE worker pinned to CPU 0, the load
generator is pinned to CPU 1, and for every scenario three figures are taken per server:

  cpu_us_per_req    (utime+stime delta of the server process over a wrk round) / requests,
                    short rounds interleaved (A B, B A, A B ...), median over rounds
  syscalls_per_req  `strace -c -f -p PID` attached while a fixed number of requests is made
  instr_per_req     `valgrind --tool=callgrind` user-space instructions (Ir) of a fixed number of
                    requests, start-up cost excluded (counters zeroed after a warm-up)

Usage: /usr/bin/python3 tests/bench/bench.py [--gateway PATH] [--rounds N] [--duration S]
Results go to stdout and, as JSON, to tests/bench/results/last.json.

Extending: add a ServerDef subclass to SERVERS (config writer + argv), or a Scenario to
SCENARIOS (file size, keep-alive or not). Only loopback addresses are ever used.
Needs: wrk, strace, valgrind, taskset, nginx (Debian packages); h2o and haproxy are opt-in.
"""

import argparse
import json
import os
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HOST = "127.0.0.1"
SERVER_CPU = "0"  # the server's single worker
CLIENT_CPU = "1"  # wrk and the fixed-count client
CLK_TCK = os.sysconf("SC_CLK_TCK")

GOAL_CPU_RATIO = 0.8   # gateway CPU per request / best peer
GOAL_SYSCALLS = 4.0    # syscalls per request


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


class ServerStartError(BenchError):
    pass


# --------------------------------------------------------------------------------------------
# Scenarios


class Scenario:
    """One workload. `path` is served from the shared document root (files made by make_files)."""

    def __init__(self, name, title, path, size, close=False, syscall_goal=GOAL_SYSCALLS):
        self.name = name
        self.title = title
        self.path = path
        self.size = size
        self.close = close  # a new connection per request
        self.syscall_goal = syscall_goal  # None: no syscall goal for this scenario

    def wrk_args(self):
        return ["-H", "Connection: close"] if self.close else []


SCENARIOS = [
    Scenario("keepalive-1k", "HTTP/1.1 keep-alive, 1 KiB static file", "/f1k.txt", 1024),
    # accept4 + read + write + close is already 4: the syscall goal is for keep-alive requests
    Scenario("close-1k", "new connection per request, 1 KiB static file", "/f1k.txt", 1024,
             close=True, syscall_goal=None),
    Scenario("keepalive-64k", "HTTP/1.1 keep-alive, 64 KiB static file", "/f64k.txt", 65536),
]


def make_files(wwwroot):
    os.makedirs(wwwroot, exist_ok=True)
    seen = set()
    for sc in SCENARIOS:
        if sc.path in seen:
            continue
        seen.add(sc.path)
        line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$%&()*+,-./:;<=>?\n"
        data = (line * (sc.size // len(line) + 1))[: sc.size]
        with open(os.path.join(wwwroot, sc.path.lstrip("/")), "wb") as f:
            f.write(data)


# --------------------------------------------------------------------------------------------
# Server definitions. Each writes its own config into `workdir` and returns the argv to run.
# The measured process is the one started (every server runs as a single process here: its
# /proc/PID/stat includes all its threads); override measured_pid() for a master/worker layout.


class ServerDef:
    name = "?"
    stop_signal = signal.SIGTERM
    startup_timeout = 10.0

    def binary(self):
        raise NotImplementedError

    def missing_hint(self):
        return ""

    def available(self):
        b = self.binary()
        return bool(b) and os.access(b, os.X_OK)

    def prepare(self, workdir, port, wwwroot):
        """Writes the config; returns argv."""
        raise NotImplementedError

    def measured_pid(self, proc):
        return proc.pid

    def describe(self):
        return version_line([self.binary(), "--version"]) or self.name


class Gateway(ServerDef):
    name = "gateway"

    def __init__(self, path):
        self.path = path

    def binary(self):
        return self.path

    def missing_hint(self):
        return ("build it: cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release && "
                "cmake --build build-release -j2, or pass --gateway PATH")

    def prepare(self, workdir, port, wwwroot):
        cfg = os.path.join(workdir, "gateway.yaml")
        with open(cfg, "w") as f:
            f.write("global:\n"
                    f'  port: "{HOST}:{port}"\n'
                    "  workers: 1\n"
                    f"  wwwroot: {wwwroot}\n")
        return [self.path, "-c", cfg]

    def describe(self):
        bt = build_type_of(self.path)
        return (f"{version_line([self.path, '-v']) or 'gateway'} "
                f"({bt + ' build' if bt else 'build type unknown'})")


class Nginx(ServerDef):
    name = "nginx"
    stop_signal = signal.SIGQUIT  # graceful

    def binary(self):
        return shutil.which("nginx") or "/usr/sbin/nginx"

    def missing_hint(self):
        return "apt-get -o DPkg::Lock::Timeout=600 install -y nginx-light"

    def prepare(self, workdir, port, wwwroot):
        d = os.path.join(workdir, "nginx")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "nginx.conf")
        temps = "".join(f"  {k}_temp_path {d}/{k};\n"
                        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(conf, "w") as f:
            f.write(f"""worker_processes 1;
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
  types {{ text/plain txt; }}
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush off;
  tcp_nodelay on;
  keepalive_requests 100000;
  open_file_cache off;
{temps}  server {{
    listen {HOST}:{port};
    root {wwwroot};
  }}
}}
""")
        return [self.binary(), "-p", d, "-e", f"{d}/error.log", "-c", conf]

    def describe(self):
        return version_line([self.binary(), "-v"]).replace("nginx version: ", "") or self.name


class H2O(ServerDef):
    """h2o with one thread (not run by default: --servers gateway,nginx,h2o)."""
    name = "h2o"

    def binary(self):
        return shutil.which("h2o") or "/usr/bin/h2o"

    def missing_hint(self):
        return "apt-get -o DPkg::Lock::Timeout=600 install -y h2o"

    def prepare(self, workdir, port, wwwroot):
        d = os.path.join(workdir, "h2o")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "h2o.conf")
        with open(conf, "w") as f:
            if os.geteuid() == 0:  # h2o started as root switches to "nobody" unless told
                f.write("user: root\n")
            f.write(f"""num-threads: 1
pid-file: {d}/h2o.pid
error-log: {d}/error.log
file.mime.addtypes:
  text/plain: .txt
listen:
  host: {HOST}
  port: {port}
hosts:
  default:
    paths:
      /:
        file.dir: {wwwroot}
""")
        return [self.binary(), "-m", "worker", "-c", conf]


class HAProxy(ServerDef):
    """HAProxy serving the file from memory (`http-request return ... file`): HAProxy has no
    static file module, so this is its cheapest way to answer. Opt-in: --servers ...,haproxy."""
    name = "haproxy"
    stop_signal = signal.SIGUSR1  # soft stop

    def binary(self):
        return shutil.which("haproxy") or "/usr/sbin/haproxy"

    def missing_hint(self):
        return "apt-get -o DPkg::Lock::Timeout=600 install -y haproxy"

    def prepare(self, workdir, port, wwwroot):
        d = os.path.join(workdir, "haproxy")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "haproxy.cfg")
        rules = "".join(
            f"  http-request return status 200 content-type text/plain file {wwwroot}{p} "
            f"if {{ path {p} }}\n" for p in sorted({sc.path for sc in SCENARIOS}))
        # the file must fit in one buffer (default 16 KiB): size it for the largest scenario
        bufsize = max(16384, max(sc.size for sc in SCENARIOS) + 8192)
        with open(conf, "w") as f:
            f.write(f"""global
  nbthread 1
  tune.bufsize {bufsize}
  maxconn 8000
defaults
  mode http
  timeout client 30s
  timeout connect 5s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind {HOST}:{port}
{rules}  http-request return status 404
""")
        return [self.binary(), "-db", "-f", conf]

    def describe(self):
        return " ".join(version_line([self.binary(), "-v"]).split()[:3]) or self.name


def version_line(argv):
    """First line a binary prints for its version flag (stdout or stderr), or ""."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    out = (r.stdout.strip() or r.stderr.strip()).splitlines()
    return out[0].strip() if out else ""


def build_type_of(binary):
    cache = os.path.join(os.path.dirname(os.path.abspath(binary)), "CMakeCache.txt")
    try:
        with open(cache) as f:
            for line in f:
                if line.startswith("CMAKE_BUILD_TYPE:"):
                    return line.split("=", 1)[1].strip() or None
    except OSError:
        pass
    return None


def default_gateway():
    for d in ("build-release", "build"):
        p = os.path.join(REPO, d, "gateway")
        if os.access(p, os.X_OK):
            return p
    return os.path.join(REPO, "build-release", "gateway")


# Every server the harness knows, by --servers name. The gateway's factory takes its path.
SERVERS = {"gateway": Gateway, "nginx": Nginx, "h2o": H2O, "haproxy": HAProxy}
DEFAULT_SERVERS = "gateway,nginx"


def make_servers(names, gateway_path):
    out = []
    for n in names:
        if n not in SERVERS:
            raise BenchError(f"unknown server {n!r} (known: {', '.join(SERVERS)})")
        out.append(SERVERS[n](gateway_path) if n == "gateway" else SERVERS[n]())
    return out


# --------------------------------------------------------------------------------------------
# Processes


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Running:
    """A started server: its Popen, the pid to measure, port and log."""

    def __init__(self, sdef, proc, port, logpath):
        self.sdef = sdef
        self.proc = proc
        self.port = port
        self.logpath = logpath
        self.pid = proc.pid

    def log_tail(self, n=15):
        try:
            with open(self.logpath, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout=15.0):
        if self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(self.sdef.stop_signal)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass


STARTED = []  # every Running, stopped at exit


def probe(port, path, timeout=1.0):
    """One GET; returns the status code or None."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n"
                      .encode())
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
            return int(m.group(1)) if m else None
    except OSError:
        return None


def start_server(sdef, workdir, wwwroot, wrapper=(), timeout=None, tag=""):
    port = free_port()
    sub = os.path.join(workdir, f"{sdef.name}{tag}")
    os.makedirs(sub, exist_ok=True)
    argv = sdef.prepare(sub, port, wwwroot)
    logpath = os.path.join(sub, "stdout-stderr.log")
    logf = open(logpath, "wb")
    cmd = ["taskset", "-c", SERVER_CPU, *wrapper, *argv]
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=sub, start_new_session=True)
    logf.close()
    run = Running(sdef, proc, port, logpath)
    STARTED.append(run)
    deadline = time.monotonic() + (timeout or sdef.startup_timeout)
    path = SCENARIOS[0].path
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(f"{sdef.name} exited with status {proc.returncode} at start:\n"
                                   f"{run.log_tail()}")
        st = probe(port, path)
        if st == 200:
            run.pid = sdef.measured_pid(proc)
            return run
        if st is not None:
            raise ServerStartError(f"{sdef.name} answered {st} for {path}:\n{run.log_tail()}")
        time.sleep(0.1)
    run.stop()
    raise ServerStartError(f"{sdef.name} did not answer on {HOST}:{port} within "
                           f"{timeout or sdef.startup_timeout:.0f}s:\n{run.log_tail()}")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


# --------------------------------------------------------------------------------------------
# Fixed-count HTTP/1.1 client (for strace and callgrind, where an exact request count matters).
# It behaves like wrk: `conns` connections, one request in flight on each, no pipelining; with
# close=True a connection per request, closed by the client once the response is complete.


class LoadError(BenchError):
    pass


def run_requests(port, path, total, conns=32, close=False, timeout=120.0):
    """Makes `total` successful GETs; returns {"done", "errors"}. A connection reset or closed
    before its response is complete counts as an error and its request is made again on a new
    connection (up to 1 % of `total`, then it gives up)."""
    req = (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
           + ("Connection: close\r\n" if close else "") + "\r\n").encode()
    sel = selectors.EpollSelector()
    issued = 0
    done = 0
    errors = 0
    max_errors = max(10, total // 100)
    deadline = time.monotonic() + timeout

    def drop(s):
        sel.unregister(s)
        s.close()

    def open_conn():
        nonlocal issued, errors
        while True:
            try:
                s = socket.create_connection((HOST, port), timeout=5)
                break
            except OSError as e:
                errors += 1
                if errors > max_errors:
                    raise LoadError(f"connect failed {errors} times: {e}") from e
                time.sleep(0.01)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, {"buf": b"", "left": -1})
        send(s)

    def send(s):
        nonlocal issued
        issued += 1
        try:
            s.send(req)
        except OSError:
            pass  # seen as a reset or EOF by the next recv

    def failed(s, why):
        nonlocal issued, errors
        errors += 1
        if errors > max_errors:
            raise LoadError(f"{errors} failed requests, last: {why}")
        drop(s)
        issued -= 1  # make that request again
        open_conn()

    for _ in range(min(conns, total)):
        open_conn()
    while done < total:
        if time.monotonic() > deadline:
            raise LoadError(f"timeout: {done}/{total} responses")
        events = sel.select(timeout=5)
        if not events:
            raise LoadError(f"stalled: {done}/{total} responses")
        for key, _ in events:
            s, st = key.fileobj, key.data
            try:
                data = s.recv(1 << 18)
            except BlockingIOError:
                continue
            except OSError as e:
                failed(s, str(e))
                continue
            if not data:
                failed(s, "connection closed before the response was complete")
                continue
            if st["left"] < 0:
                st["buf"] += data
                end = st["buf"].find(b"\r\n\r\n")
                if end < 0:
                    continue
                head = st["buf"][:end].decode("latin-1")
                if not head.startswith(("HTTP/1.1 200", "HTTP/1.0 200")):
                    raise LoadError("unexpected response: " + head.split("\r\n", 1)[0])
                m = re.search(r"(?im)^content-length:\s*(\d+)", head)
                if not m:
                    raise LoadError("response without Content-Length")
                st["left"] = int(m.group(1)) - (len(st["buf"]) - end - 4)
                st["buf"] = b""
            else:
                st["left"] -= len(data)
            if st["left"] > 0:
                continue
            if st["left"] < 0:
                raise LoadError("more bytes than Content-Length")
            done += 1
            st["left"] = -1
            if close:
                drop(s)
                if issued < total:
                    open_conn()
            elif issued < total:
                send(s)
            else:
                drop(s)
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    return {"done": done, "errors": errors}


def run_client(port, path, total, conns, close, timeout=120.0):
    """Runs run_requests in a child pinned to the client CPU; returns {"done", "errors"}."""
    code = ("import sys, json; sys.path.insert(0, %r); import bench; "
            "print(json.dumps(bench.run_requests(%d, %r, %d, %d, %r, %r)))"
            % (HERE, port, path, total, conns, close, timeout))
    r = subprocess.run(["taskset", "-c", CLIENT_CPU, sys.executable, "-B", "-c", code],
                       capture_output=True, text=True, timeout=timeout + 10)
    if r.returncode != 0:
        raise LoadError(f"client failed: {r.stderr.strip()[-500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# wrk


WRK_REQ = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")


def run_wrk(port, scenario, duration, conns):
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{conns}", f"-d{duration}s",
           "--timeout", "5s", *scenario.wrk_args(), f"http://{HOST}:{port}{scenario.path}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
    m = WRK_REQ.search(r.stdout)
    if r.returncode != 0 or not m:
        raise BenchError(f"wrk failed ({r.returncode}): {r.stdout}{r.stderr}")
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    out = {"requests": int(m.group(1)), "seconds": float(m.group(2)) * unit}
    m2 = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    out["non2xx"] = int(m2.group(1)) if m2 else 0
    m3 = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                   r.stdout)
    out["socket_errors"] = sum(int(x) for x in m3.groups()) if m3 else 0
    return out


# --------------------------------------------------------------------------------------------
# Metric 1: CPU µs per request, interleaved rounds


def measure_cpu(runs, scenario, rounds, duration, conns):
    per = {r.sdef.name: [] for r in runs}
    rps = {r.sdef.name: [] for r in runs}
    errors = {r.sdef.name: 0 for r in runs}
    for r in runs:  # warm-up: caches, lazily built state, first connections
        run_wrk(r.port, scenario, 1, conns)
    for i in range(rounds):
        order = runs if i % 2 == 0 else list(reversed(runs))  # A B, B A, ... : no fixed slot
        for r in order:
            t0 = cpu_ticks(r.pid)
            w = run_wrk(r.port, scenario, duration, conns)
            t1 = cpu_ticks(r.pid)
            if r.proc.poll() is not None:
                raise BenchError(f"{r.sdef.name} died during the run:\n{r.log_tail()}")
            if w["requests"] == 0:
                raise BenchError(f"{r.sdef.name}: wrk completed no request")
            per[r.sdef.name].append((t1 - t0) / CLK_TCK * 1e6 / w["requests"])
            rps[r.sdef.name].append(w["requests"] / w["seconds"])
            errors[r.sdef.name] += w["non2xx"] + w["socket_errors"]
    return {name: {"cpu_us_per_req": statistics.median(v),
                   "cpu_us_per_req_rounds": [round(x, 3) for x in v],
                   "req_per_s": statistics.median(rps[name]),
                   "wrk_errors": errors[name]}
            for name, v in per.items()}


# --------------------------------------------------------------------------------------------
# Metric 2: syscalls per request (strace -c -f -p PID over a fixed number of requests)


def parse_strace_c(text):
    calls = {}
    total = None
    for line in text.splitlines():
        tok = line.split()
        if len(tok) < 5 or not re.match(r"^[\d.]+$", tok[0]):
            continue
        name = tok[-1]
        n = int(tok[3])
        if name == "total":
            total = n
        else:
            calls[name] = n
    if total is None:
        total = sum(calls.values())
    return calls, total


def measure_syscalls(run, scenario, nreq, conns, workdir):
    out = os.path.join(workdir, f"strace-{run.sdef.name}-{scenario.name}.txt")
    errp = out + ".err"
    with open(errp, "wb") as ef:
        st = subprocess.Popen(["strace", "-c", "-f", "-p", str(run.pid), "-o", out],
                              stdout=subprocess.DEVNULL, stderr=ef)
    try:
        deadline = time.monotonic() + 10
        while True:
            with open(errp, errors="replace") as f:
                if "attached" in f.read():
                    break
            if st.poll() is not None or time.monotonic() > deadline:
                with open(errp, errors="replace") as f:
                    raise BenchError(f"strace could not attach to {run.sdef.name}: {f.read()}")
            time.sleep(0.05)
        time.sleep(0.2)  # let the attach of every thread settle
        cl = run_client(run.port, scenario.path, nreq, conns, scenario.close)
        done = cl["done"]
        time.sleep(0.1)  # the server's last bookkeeping after the final response
    finally:
        if st.poll() is None:
            st.send_signal(signal.SIGINT)
            try:
                st.wait(timeout=20)
            except subprocess.TimeoutExpired:
                st.kill()
                st.wait()
    with open(out) as f:
        calls, total = parse_strace_c(f.read())
    return {"syscalls_per_req": total / done,
            "syscall_breakdown_per_req": {k: round(v / done, 3) for k, v in
                                          sorted(calls.items(), key=lambda kv: -kv[1])},
            "strace_requests": done, "strace_client_errors": cl["errors"]}


# --------------------------------------------------------------------------------------------
# Metric 3: user instructions per request (callgrind). One valgrind run per server for all
# scenarios: per scenario a warm-up, counters zeroed, N requests, dump (A), N more, dump (B).
# B/N is the figure (same as (I(2N)-I(N))/N of two separate runs); A/N is shown as a check.


def callgrind_total(path):
    totals = summary = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("totals:"):
                totals = int(line.split()[1])
            elif line.startswith("summary:"):
                summary = int(line.split()[1])
    v = totals if totals is not None else summary
    if v is None:
        raise BenchError(f"no totals in {path}")
    return v


def callgrind_cmd(pid, flag, outdir, before):
    r = subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        raise BenchError(f"callgrind_control {flag} failed: {r.stdout}{r.stderr}")
    if flag != "-d":
        return None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        new = sorted(set(os.listdir(outdir)) - before)
        new = [n for n in new if n.startswith("cg.out.") and "." in n[len("cg.out."):]]
        if new:
            time.sleep(0.2)  # the file is written before the command returns; be safe
            return os.path.join(outdir, new[-1])
        time.sleep(0.05)
    raise BenchError("callgrind dump file did not appear")


def measure_instructions(sdef, scenarios, nreq, conns, workdir, wwwroot):
    outdir = os.path.join(workdir, f"callgrind-{sdef.name}")
    os.makedirs(outdir, exist_ok=True)
    wrapper = ["valgrind", "--tool=callgrind", "--trace-children=no",
               f"--callgrind-out-file={outdir}/cg.out.%p"]
    run = start_server(sdef, workdir, wwwroot, wrapper=wrapper, timeout=60, tag="-callgrind")
    res = {}
    try:
        for sc in scenarios:
            run_client(run.port, sc.path, max(200, nreq // 10), conns, sc.close)
            callgrind_cmd(run.pid, "-z", outdir, set())
            figures = []
            errors = 0
            for _ in range(2):
                before = set(os.listdir(outdir))
                cl = run_client(run.port, sc.path, nreq, conns, sc.close)
                dump = callgrind_cmd(run.pid, "-d", outdir, before)
                figures.append(callgrind_total(dump) / cl["done"])
                errors += cl["errors"]
            res[sc.name] = {"instr_per_req": figures[1], "instr_per_req_check": figures[0],
                            "callgrind_requests": nreq, "callgrind_client_errors": errors}
    finally:
        run.stop(timeout=60)
    return res


# --------------------------------------------------------------------------------------------
# Report


def fmt(v, nd=2):
    if v is None:
        return "-"
    if isinstance(v, float) and v >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


METRICS = [
    ("cpu_us_per_req", "CPU us/req", 2),
    ("syscalls_per_req", "syscalls/req", 2),
    ("instr_per_req", "user instr/req", 0),
    ("req_per_s", "req/s (wrk, info)", 0),
]


def report(results, server_names):
    peers = [n for n in server_names if n != "gateway"]
    goals = {sc.name: sc.syscall_goal for sc in SCENARIOS}
    lines = []
    head = ["scenario", "metric", *server_names]
    if "gateway" in server_names and peers:
        head += ["gateway/" + (peers[0] if len(peers) == 1 else "best peer"), "goal"]
    rows = [head]
    for scname, per in results["scenarios"].items():
        for key, label, nd in METRICS:
            vals = {n: per.get(n, {}).get(key) for n in server_names}
            if all(v is None for v in vals.values()):
                continue
            row = [scname, label] + [fmt(vals[n], nd) if nd else
                                     (f"{vals[n]:,.0f}" if vals[n] is not None else "-")
                                     for n in server_names]
            if "gateway" in server_names and peers:
                pv = [vals[p] for p in peers if vals[p]]
                g = vals["gateway"]
                ratio = g / min(pv) if g is not None and pv else None
                goal = ""
                if key == "cpu_us_per_req" and ratio is not None:
                    goal = f"<= {GOAL_CPU_RATIO} " + ("met" if ratio <= GOAL_CPU_RATIO
                                                       else "NOT met")
                elif key == "syscalls_per_req" and g is not None and goals.get(scname):
                    goal = f"<= {goals[scname]:g}/req " + ("met" if g <= goals[scname]
                                                          else "NOT met")
                if key == "req_per_s" and ratio is not None:
                    ratio = None  # capped by the client CPU: not a comparison
                row += [fmt(ratio, 2) if ratio is not None else "-", goal]
            rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.rjust(widths[j]) if j >= 2 else c.ljust(widths[j])
                               for j, c in enumerate(r)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    for scname, per in results["scenarios"].items():
        for n in server_names:
            v = per.get(n, {})
            errs = {k: v[k] for k in ("wrk_errors", "strace_client_errors",
                                      "callgrind_client_errors") if v.get(k)}
            if errs:
                lines.append(f"{scname} {n} failed requests (reset/closed early, retried): "
                             + ", ".join(f"{k} {c}" for k, c in errs.items()))
    for scname, per in results["scenarios"].items():
        for n in server_names:
            bd = per.get(n, {}).get("syscall_breakdown_per_req")
            if bd:
                parts = ", ".join(f"{k} {v:.2f}" for k, v in bd.items() if v >= 0.005)
                lines.append(f"{scname} {n} syscalls/req: {parts}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def check_tools(need):
    hints = {"wrk": "apt-get -o DPkg::Lock::Timeout=600 install -y wrk",
             "strace": "apt-get -o DPkg::Lock::Timeout=600 install -y strace",
             "valgrind": "apt-get -o DPkg::Lock::Timeout=600 install -y valgrind",
             "callgrind_control": "apt-get -o DPkg::Lock::Timeout=600 install -y valgrind",
             "taskset": "apt-get -o DPkg::Lock::Timeout=600 install -y util-linux"}
    missing = [t for t in need if not shutil.which(t)]
    if missing:
        raise BenchError("missing tools: " + ", ".join(missing) + "\n  "
                         + "\n  ".join(sorted({hints[t] for t in missing})))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateway", default=default_gateway(),
                    help="gateway binary (default: build-release/gateway, else build/gateway)")
    ap.add_argument("--servers", default=DEFAULT_SERVERS,
                    help=f"comma list from {','.join(SERVERS)} (default {DEFAULT_SERVERS})")
    ap.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS),
                    help="comma list (default: all): " + ", ".join(s.name for s in SCENARIOS))
    ap.add_argument("--rounds", type=int, default=5, help="interleaved CPU rounds (default 5)")
    ap.add_argument("--duration", type=int, default=3,
                    help="whole seconds per CPU round, first scenario (default 3); the other "
                         "scenarios use 2/3 of it")
    ap.add_argument("--connections", type=int, default=32, help="client connections (32)")
    ap.add_argument("--strace-requests", type=int, default=20000,
                    help="requests counted under strace (default 20000; 10000 for non-primary "
                         "scenarios)")
    ap.add_argument("--callgrind-requests", type=int, default=5000,
                    help="N: instructions of requests N+1..2N after a warm-up (default 5000)")
    ap.add_argument("--skip", default="",
                    help="comma list of metrics to skip: cpu,syscalls,instructions")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "last.json"))
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.duration < 1 or args.connections < 1:
        ap.error("--rounds, --duration and --connections must be at least 1")
    if args.strace_requests < args.connections or args.callgrind_requests < args.connections:
        ap.error("request counts must be at least the number of connections")

    skip = {s for s in args.skip.split(",") if s}
    names = [n for n in args.servers.split(",") if n]
    by_name = {s.name: s for s in SCENARIOS}
    try:
        scenarios = [by_name[n] for n in args.scenarios.split(",") if n]
    except KeyError as e:
        log(f"unknown scenario {e}")
        return 2
    need = ["taskset"]
    if "cpu" not in skip:
        need.append("wrk")
    if "syscalls" not in skip:
        need.append("strace")
    if "instructions" not in skip:
        need += ["valgrind", "callgrind_control"]
    try:
        servers = make_servers(names, os.path.abspath(args.gateway))
        check_tools(need)
        for s in servers:
            if not s.available():
                raise ServerStartError(f"{s.name} not found at {s.binary()}: {s.missing_hint()}")
    except ServerStartError as e:
        log(f"error: {e}")
        return 1
    except BenchError as e:
        log(f"error: {e}")
        return 2

    # The first scenario selected gets the full round length and strace count; the others
    # 2/3 of the round and half the requests, to keep the default run under 3 minutes.
    def round_seconds(i):
        return args.duration if i == 0 else max(1, round(args.duration * 2 / 3))

    def strace_count(i):
        return args.strace_requests if i == 0 else max(args.connections,
                                                       args.strace_requests // 2)

    # a hard bound on the whole run: twice the expected time (the default run takes ~2.5 min)
    expected = sum(len(servers) * ((args.rounds + 1) * round_seconds(i) + strace_count(i) / 5000
                                   + 4 + args.callgrind_requests / 1000)
                   for i in range(len(scenarios))) + 10 * len(servers)
    limit = int(max(300, 2 * expected))

    def on_alarm(*_):
        raise BenchError(f"time limit of {limit}s reached")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    t_start = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="gw-bench-")
    wwwroot = os.path.join(workdir, "www")
    make_files(wwwroot)
    results = {"servers": {s.name: s.describe() for s in servers},
               "method": {"server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU,
                          "rounds": args.rounds, "duration_s": args.duration,
                          "connections": args.connections,
                          "strace_requests": args.strace_requests,
                          "callgrind_requests": args.callgrind_requests},
               "goal": {"cpu_ratio_max": GOAL_CPU_RATIO, "syscalls_per_req_max": GOAL_SYSCALLS},
               "scenarios": {sc.name: {"title": sc.title} for sc in scenarios}}
    # scenario results: results["scenarios"][sc][server] = {metric: value}
    for sc in scenarios:
        for s in servers:
            results["scenarios"][sc.name][s.name] = {}
    rc = 0
    try:
        for s in servers:
            log(f"# {s.name}: {s.describe()}")
            if isinstance(s, Gateway) and build_type_of(s.path) not in ("Release", None):
                log(f"# warning: the gateway is a {build_type_of(s.path)} build; "
                    "compare Release builds")
        if not {"cpu", "syscalls"} <= skip:
            runs = [start_server(s, workdir, wwwroot) for s in servers]
            for i, sc in enumerate(scenarios):
                if "cpu" not in skip:
                    dur = round_seconds(i)
                    log(f"# {sc.name}: CPU, {args.rounds} interleaved rounds of {dur:g}s")
                    cpu = measure_cpu(runs, sc, args.rounds, dur, args.connections)
                    for name, v in cpu.items():
                        results["scenarios"][sc.name][name].update(v)
                if "syscalls" not in skip:
                    n = strace_count(i)
                    log(f"# {sc.name}: syscalls over {n} requests")
                    for r in runs:
                        results["scenarios"][sc.name][r.sdef.name].update(
                            measure_syscalls(r, sc, n, args.connections, workdir))
            for r in runs:
                r.stop()
        if "instructions" not in skip:
            for s in servers:
                log(f"# {s.name}: callgrind, {args.callgrind_requests} requests x2 per scenario")
                per = measure_instructions(s, scenarios, args.callgrind_requests,
                                           args.connections, workdir, wwwroot)
                for scname, v in per.items():
                    results["scenarios"][scname][s.name].update(v)
    except ServerStartError as e:
        log(f"error: {e}")
        rc = 1
    except (BenchError, subprocess.SubprocessError, OSError) as e:
        log(f"error: {e}")
        rc = 2
    finally:
        signal.alarm(0)
        for r in STARTED:
            r.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = round(time.monotonic() - t_start, 1)
    if rc == 0:
        print(report(results, [s.name for s in servers]))
        print(f"(servers on CPU {SERVER_CPU}, clients on CPU {CLIENT_CPU}; "
              f"{results['elapsed_s']:.0f}s)")
        try:
            os.makedirs(os.path.dirname(args.json), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
                f.write("\n")
        except OSError as e:
            log(f"could not write {args.json}: {e}")
    return rc


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        for r in STARTED:
            r.stop(timeout=5)
        sys.exit(130)
