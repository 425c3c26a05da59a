#!/usr/bin/python3
"""Benchmark of the gateway beside peer servers (nginx by default; h2o and HAProxy on request).

Method (see tests/bench/README.md): every server runs ONE worker pinned to CPU 0, the load
generator (and, for the proxy scenarios, the backend) is pinned to CPU 1, and for every scenario
these figures are taken per server:

  cpu_us_per_req    (utime+stime delta of the server process over a wrk or h2load round) /
                    requests, short rounds interleaved (A B, B A, A B ...), median over rounds
  syscalls_per_req  `strace -c -f -p PID` attached while a fixed number of requests is made
  instr_per_req     `valgrind --tool=callgrind` user-space instructions (Ir) of a fixed number of
                    requests, start-up cost excluded (counters zeroed after a warm-up)
  idle_kb_per_conn  (idle-10k only) RSS growth of the server process with 10,000 open keep-alive
                    connections that each made one request, per connection

Scenarios: static files over HTTP/1.1, HTTP/2 over TLS (h2load), a reverse proxy in front of a
small C backend (backend.c, compiled by this script) for HTTP/1.1 clients and for HTTP/2 over TLS
clients, idle keep-alive connections, a 64 KiB page
gzipped on the fly and from a precompressed sibling, and PHP through PHP-FPM (FastCGI).

Usage: /usr/bin/python3 tests/bench/bench.py [--gateway PATH] [--servers ...] [--scenarios ...]
Results go to stdout and, as JSON, to tests/bench/results/last.json; --report DIR also writes
the table as Markdown (DIR/table.md) and a gnuplot bar chart (DIR/chart.png).

Extending: add a ServerDef subclass to SERVERS (config writer per mode + argv), or a Scenario to
SCENARIOS. Only loopback addresses are ever used.
Needs: wrk, strace, valgrind, taskset, nginx (Debian packages); h2load and openssl for the HTTP/2
scenario, cc for the proxy scenarios, php-fpm for the FastCGI one, gnuplot for --report; h2o and
haproxy are opt-in.
"""

import argparse
import gzip
import json
import os
import re
import resource
import select
import selectors
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HOST = "127.0.0.1"
SERVER_CPU = "0"  # the server's single worker
CLIENT_CPU = "1"  # wrk and the fixed-count client
CLK_TCK = os.sysconf("SC_CLK_TCK")

GOAL_CPU_RATIO = 0.8   # gateway CPU per request / best peer
GOAL_SYSCALLS = 4.0    # syscalls per keep-alive request
GOAL_IDLE_KB = 0.35    # KB of RSS per idle keep-alive connection

# HTTP/2 over TLS: every server gets the same certificate (ECDSA P-256, made with the openssl CLI)
# and h2load is limited to one TLS 1.3 suite, so that no server is measured with a cheaper cipher.
H2_TLS13_CIPHER = "TLS_AES_128_GCM_SHA256"
H2_TLS12_CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"

# Idle backend connections each proxy keeps (nginx `keepalive`, the gateway's
# proxyKeepaliveConnections): at least the proxy scenarios' client connections, so that no proxy
# closes and reopens backend connections under load. HAProxy and h2o do not cap their idle pools.
PROXY_POOL = 64
H2_IN_FLIGHT = 16 * 10  # h2load -c16 -m10: streams in flight, each on its own HTTP/1.1 backend
IDLE_CONNS = 10000  # idle-10k

# gzip on the fly: the gateway's level (fixed in filters/compress.c); nginx gzip_comp_level and
# h2o compress: {gzip: N} are set to the same. The precompressed siblings are made at level 9
# (what `gzip -9` makes), one file served by everybody.
GZIP_LEVEL = 4
PRECOMPRESSED_LEVEL = 9

# PHP-FPM: one pool (pm = static) shared by every server in the fcgi scenario, on the client CPU.
FCGI_CHILDREN = 8


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


class ServerStartError(BenchError):
    pass


# --------------------------------------------------------------------------------------------
# Scenarios


# Modes: how the servers are configured for a scenario. Scenarios of one mode share the same
# server processes (started once per mode, in the order the modes first appear).
MODE_STATIC = "static"  # plain HTTP/1.1, files from the document root
MODE_TLS = "tls"        # HTTPS (h2 and http/1.1 by ALPN), the same files
MODE_PROXY = "proxy"    # plain HTTP/1.1, every request proxied to the C backend (backend.c)
MODE_IDLE = "idle"      # like static, with connection limits raised for 10,000 connections
MODE_GZIP = "gzip"      # like static, with gzip on: on the fly, and precompressed .gz siblings
MODE_FCGI = "fcgi"      # PHP scripts through one PHP-FPM shared by every server
MODE_CACHE = "cache"    # a response cache in front of the C backend, answering from memory
# HTTPS (h2 and http/1.1 by ALPN), every request proxied over HTTP/1.1 to the C backend
MODE_PROXY_TLS = "proxy-tls"
# h2c clients, every request proxied to one h2o serving the document root, through an
# `upstreams:` group speaking HTTP/1.1 or h2c to it (the gateway alone takes part)
MODE_H2C_TO_H1 = "h2c-to-h1"
MODE_H2C_TO_H2C = "h2c-to-h2c"
# the group's `protocol` per mode
H2O_BACKEND_PROTOCOL = {MODE_H2C_TO_H1: "http1", MODE_H2C_TO_H2C: "h2c"}


# modes whose responses come from the C backend (no file in the document root)
BACKEND_MODES = (MODE_PROXY, MODE_CACHE, MODE_PROXY_TLS)
# modes whose listener speaks TLS (the certificate made by make_certificate)
TLS_MODES = (MODE_TLS, MODE_PROXY_TLS)


class Scenario:
    """One workload. Static and TLS paths are served from the shared document root (files made
    by make_files); the backend derives its body size from the path (/f64k.txt: 64 KiB).
    `conns`: client connections (None: --connections); `h2`: h2load with `streams` streams per
    connection instead of wrk; `idle`: the idle-memory measurement instead of CPU/syscalls/
    instructions."""

    def __init__(self, name, title, path, size, close=False, syscall_goal=GOAL_SYSCALLS,
                 mode=MODE_STATIC, conns=None, h2=False, streams=1, idle=False, gzip=False,
                 precompressed=False, fixed_share=1.0, h2c=False):
        self.name = name
        self.title = title
        self.path = path
        self.size = size
        self.close = close  # a new connection per request
        self.syscall_goal = syscall_goal  # None: no syscall goal for this scenario
        self.mode = mode
        self.conns = conns
        self.h2 = h2
        self.h2c = h2c  # h2load over plain TCP with prior knowledge instead of TLS
        self.streams = streams
        self.idle = idle
        self.gzip = gzip  # sends Accept-Encoding: gzip; every server must answer gzip-encoded
        self.precompressed = precompressed  # a path.gz sibling is written beside the file
        # share of --strace-requests and --callgrind-requests made: a request that costs ~1 ms
        # (compressing 64 KiB) gives exact counts with fewer, and 2 x 2000 of them under
        # valgrind would take minutes per server
        self.fixed_share = fixed_share

    def fixed_count(self, n, floor):
        return max(floor, int(n * self.fixed_share))

    def request_headers(self):
        return ((["Connection: close"] if self.close else [])
                + (["Accept-Encoding: gzip"] if self.gzip else []))

    def wrk_args(self):
        return [a for h in self.request_headers() for a in ("-H", h)]

    def connections(self, default):
        return self.conns or default


SCENARIOS = [
    Scenario("keepalive-1k", "HTTP/1.1 keep-alive, 1 KiB static file", "/f1k.txt", 1024),
    # accept4 + read + write + close is already 4: the syscall goal is for keep-alive requests
    Scenario("close-1k", "new connection per request, 1 KiB static file", "/f1k.txt", 1024,
             close=True, syscall_goal=None),
    Scenario("keepalive-64k", "HTTP/1.1 keep-alive, 64 KiB static file", "/f64k.txt", 65536),
    # TLS records, HPACK and h2 framing: no syscall goal (a record can carry several responses)
    Scenario("h2-tls-1k", "HTTP/2 over TLS 1.3, 1 KiB static file, h2load -c16 -m10",
             "/f1k.txt", 1024, mode=MODE_TLS, h2=True, conns=16, streams=10, syscall_goal=None),
    Scenario("proxy-keepalive-1k", "reverse proxy, HTTP/1.1 keep-alive both sides, 1 KiB body",
             "/f1k.txt", 1024, mode=MODE_PROXY, conns=64),
    Scenario("proxy-close-1k", "reverse proxy, a new client connection per request, 1 KiB body",
             "/f1k.txt", 1024, mode=MODE_PROXY, conns=64, close=True, syscall_goal=None),
    Scenario("proxy-keepalive-64k", "reverse proxy, HTTP/1.1 keep-alive, 64 KiB body",
             "/f64k.txt", 65536, mode=MODE_PROXY, conns=64),
    Scenario("proxy-h2-tls-1k", "reverse proxy, HTTP/2 over TLS 1.3 clients (h2load -c16 -m10), "
             "HTTP/1.1 keep-alive to the C backend, 1 KiB body", "/f1k.txt", 1024,
             mode=MODE_PROXY_TLS, h2=True, conns=16, streams=10, syscall_goal=None),
    Scenario("idle-10k", "10,000 idle keep-alive connections after one request each: RSS",
             "/f1k.txt", 1024, mode=MODE_IDLE, idle=True, syscall_goal=None),
    # compression at level GZIP_LEVEL on every server; the same text for both variants
    Scenario("static-gzip-64k", "HTTP/1.1 keep-alive, 64 KiB HTML gzipped on the fly",
             "/g64k.html", 65536, mode=MODE_GZIP, gzip=True, fixed_share=0.1),
    Scenario("static-gzip-precompressed-64k",
             "HTTP/1.1 keep-alive, 64 KiB HTML served from its precompressed .gz sibling",
             "/g64k-pre.html", 65536, mode=MODE_GZIP, gzip=True, precompressed=True),
    # as many client connections as PHP-FPM children: a kept-alive FastCGI connection holds its
    # child, so more connections than children would queue behind idle pooled ones
    Scenario("fcgi-php-1k", "PHP-FPM (echo of 1 KiB) via FastCGI, keep-alive both sides",
             "/p1k.php", 1024, mode=MODE_FCGI, conns=FCGI_CHILDREN),
    # the backend marks paths under /cache/ fresh for an hour (Cache-Control: max-age=3600);
    # every request measured must be a hit (the backend's request count is checked)
    Scenario("cache-hit-1k", "response cache hits, HTTP/1.1 keep-alive, 1 KiB body",
             "/cache/f1k.txt", 1024, mode=MODE_CACHE),
    Scenario("cache-hit-64k", "response cache hits, HTTP/1.1 keep-alive, 64 KiB body",
             "/cache/f64k.txt", 65536, mode=MODE_CACHE),
    # the same client load against HTTP/1.1 and HTTP/2 backend connections: what multiplexing
    # towards the backend saves (CPU, syscalls) and how many backend connections each opens
    Scenario("h2-to-h1-backend-1k", "h2c client, proxied over HTTP/1.1 to h2o, 1 KiB file",
             "/f1k.txt", 1024, mode=MODE_H2C_TO_H1, h2=True, h2c=True, conns=16, streams=10,
             syscall_goal=None),
    Scenario("h2-to-h2-backend-1k", "h2c client, proxied over h2c to h2o, 1 KiB file",
             "/f1k.txt", 1024, mode=MODE_H2C_TO_H2C, h2=True, h2c=True, conns=16, streams=10,
             syscall_goal=None),
]


def html_text(size):
    """Deterministic HTML that compresses like a real page (repeated markup, varied words and
    numbers; about 7:1 with gzip at level 4), `size` bytes."""
    words = ("gateway", "request", "upstream", "header", "connection", "worker", "response",
             "compression", "timeout", "listener", "certificate", "location", "balancer")
    rows, i = [], 0
    while sum(len(r) for r in rows) < size:
        w = [words[(i * k + k) % len(words)] for k in (3, 5, 7)]
        rows.append(f'<tr class="row{i % 4}"><td>{i}</td><td><a href="/{w[0]}/{i * 37 % 1009}">'
                    f"{w[0]} {w[1]}</a></td><td>{w[2]}</td><td>{(i * 7919) % 100003}</td></tr>\n")
        i += 1
    page = ("<!DOCTYPE html>\n<html><head><title>bench</title></head><body><table>\n"
            + "".join(rows))
    return page.encode()[: size - len("</table></body></html>\n")] + b"</table></body></html>\n"


def php_script(size):
    """A PHP script that echoes `size` bytes of text (a literal: PHP does no work but echo)."""
    line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\n"
    return f'<?php echo "{(line * (size // len(line) + 1))[:size]}";\n'.encode()


def expected_body(sc):
    """What a scenario's path answers, decoded: the file, or the PHP script's output."""
    if sc.mode == MODE_FCGI:
        line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\n"
        return (line * (sc.size // len(line) + 1))[: sc.size]
    if sc.mode == MODE_GZIP:
        return html_text(sc.size)
    if sc.mode in BACKEND_MODES:  # backend.c's body: the alphabet over and over
        return bytes(97 + i % 26 for i in range(sc.size))
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$%&()*+,-./:;<=>?\n"
    return (line * (sc.size // len(line) + 1))[: sc.size]


def make_files(wwwroot):
    os.makedirs(wwwroot, exist_ok=True)
    seen = set()
    for sc in SCENARIOS:
        if sc.mode in BACKEND_MODES or sc.path in seen:
            continue
        seen.add(sc.path)
        path = os.path.join(wwwroot, sc.path.lstrip("/"))
        with open(path, "wb") as f:
            f.write(php_script(sc.size) if sc.mode == MODE_FCGI else expected_body(sc))
        if sc.precompressed:  # written after the file: a sibling is used only if not older
            with open(path + ".gz", "wb") as f:
                f.write(gzip.compress(expected_body(sc), compresslevel=PRECOMPRESSED_LEVEL,
                                      mtime=0))


# --------------------------------------------------------------------------------------------
# Server definitions. Each writes its own config into `workdir` for a mode and returns the argv
# to run. The measured process is the one started (every server runs as a single process here:
# its /proc/PID/stat includes all its threads); override measured_pid() for a master/worker
# layout.


class Ctx:
    """What a server's config needs for one mode: the document root and static paths, the
    backend's port (proxy), the certificate (tls) and the connection limit (idle)."""

    def __init__(self, mode, wwwroot, paths, max_size, backend_port=None, tls=None,
                 max_conns=None, fcgi_sockets=None):
        self.mode = mode
        self.wwwroot = wwwroot
        self.paths = paths          # every static path a scenario requests
        self.max_size = max_size    # the largest body (HAProxy's buffer is sized for it)
        self.backend_port = backend_port
        self.tls = tls              # {"cert", "key", "pem"} (pem: cert and key in one file)
        self.max_conns = max_conns  # raised for the idle scenario, else None (server default)
        self.fcgi_sockets = fcgi_sockets or {}  # server name: its PHP-FPM pool's socket

    @property
    def backend_url(self):
        return f"http://{HOST}:{self.backend_port}"

    @property
    def backend_pool(self):
        """Idle backend connections each proxy keeps: one per request the client can have in
        flight (HTTP/2 clients: every stream), so that none is closed and reopened under load."""
        return H2_IN_FLIGHT if self.mode == MODE_PROXY_TLS else PROXY_POOL


class ServerDef:
    name = "?"
    stop_signal = signal.SIGTERM
    startup_timeout = 10.0
    # the measured process is forked (without exec) by the one started: callgrind counts it
    # but cannot be controlled in it (see measure_instructions_at_exit)
    forked_worker = False

    def binary(self):
        raise NotImplementedError

    def missing_hint(self):
        return ""

    def available(self):
        b = self.binary()
        return bool(b) and os.access(b, os.X_OK)

    def prepare(self, workdir, port, ctx):
        """Writes the config for ctx.mode, listening on HOST:port; returns argv."""
        raise NotImplementedError

    # the modes this server takes part in (a scenario of another mode shows "-" for it)
    modes = (MODE_STATIC, MODE_TLS, MODE_PROXY, MODE_IDLE, MODE_GZIP, MODE_FCGI, MODE_CACHE,
             MODE_PROXY_TLS)

    def measured_pid(self, proc):
        return proc.pid

    def describe(self):
        return version_line([self.binary(), "--version"]) or self.name


class Gateway(ServerDef):
    name = "gateway"
    modes = ServerDef.modes + tuple(H2O_BACKEND_PROTOCOL)

    def __init__(self, path):
        self.path = path

    def binary(self):
        return self.path

    def missing_hint(self):
        return ("build it: cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release && "
                "cmake --build build-release -j2, or pass --gateway PATH")

    def prepare(self, workdir, port, ctx):
        cfg = os.path.join(workdir, "gateway.yaml")
        lines = ["global:", "  workers: 1"]
        if ctx.mode in TLS_MODES:
            # the plain listener is required by the config but not used
            lines += [f'  port: "{HOST}:{free_port()}"', "  secure: true",
                      f'  sport: "{HOST}:{port}"', f"  cert: {ctx.tls['cert']}",
                      f"  key: {ctx.tls['key']}"]
        else:
            lines.append(f'  port: "{HOST}:{port}"')
        if ctx.mode in (MODE_STATIC, MODE_TLS, MODE_IDLE, MODE_GZIP, MODE_FCGI):
            lines.append(f"  wwwroot: {ctx.wwwroot}")
        if ctx.mode == MODE_GZIP:  # the default; written out so the config says what is measured
            lines.append("  enableCompression: true")
        if ctx.mode == MODE_FCGI:
            lines += ["  loadModules: [fcgi]", '  fcgiScriptExtensions: [".php"]',
                      f'  fcgiTo: "unix://{ctx.fcgi_sockets[self.name]}"']
        if ctx.mode in BACKEND_MODES:
            # as many idle backend connections as client connections (nginx: keepalive N)
            modules = "[cache, rproxy]" if ctx.mode == MODE_CACHE else "[rproxy]"
            lines += [f"  loadModules: {modules}", f'  proxyTo: "{ctx.backend_url}"',
                      f"  proxyKeepaliveConnections: {ctx.backend_pool}"]
        if ctx.max_conns:
            lines.append(f"  maxConnections: {ctx.max_conns}")
        if ctx.mode in H2O_BACKEND_PROTOCOL:
            lines += ["  loadModules: [rproxy]", f"  proxyKeepaliveConnections: {H2_IN_FLIGHT}",
                      *self.h2o_backend_lines(ctx)]
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        return [self.path, "-c", cfg]

    @staticmethod
    def h2o_backend_lines(ctx):
        """The `upstreams:` group towards the h2o backend, in the mode's protocol. The idle pool
        holds every stream h2load can have in flight (16 x 10), so that the HTTP/1.1 group
        never closes and reopens connections under load."""
        return ["upstreams:", "  h2o:", f"    protocol: {H2O_BACKEND_PROTOCOL[ctx.mode]}",
                "    servers:", f"      - {ctx.backend_url}",
                "hosts:", '  - domain: "*"', "    proxyTo: http://h2o"]

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

    def prepare(self, workdir, port, ctx):
        d = os.path.join(workdir, "nginx")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "nginx.conf")
        temps = "".join(f"  {k}_temp_path {d}/{k};\n"
                        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        wc = max(4096, ctx.max_conns or 0)
        rlimit = f"worker_rlimit_nofile {wc + 1000};\n" if ctx.max_conns else ""
        listen = f"{HOST}:{port}" + (" ssl http2" if ctx.mode in TLS_MODES else "")
        tls = ""
        if ctx.mode in TLS_MODES:
            tls = (f"    ssl_certificate {ctx.tls['cert']};\n"
                   f"    ssl_certificate_key {ctx.tls['key']};\n"
                   # 1.22 still offers TLS 1.0-1.2 only by default; the others all speak 1.3
                   "    ssl_protocols TLSv1.2 TLSv1.3;\n")
        if ctx.mode == MODE_TLS:
            body = f"    root {ctx.wwwroot};\n"
        elif ctx.mode in BACKEND_MODES:
            # proxy_buffers: a 64 KiB body fits in memory (the default 8 x 4k would spill the
            # rest to a temporary file when the client is slower than the backend). The cache
            # (proxy_cache) keeps its entries as files under the work directory, with their keys
            # in a shared memory zone; the backend's Cache-Control gives the lifetime.
            cache = ("      proxy_cache bench;\n"
                     "      add_header X-Cache-Status $upstream_cache_status;\n"
                     if ctx.mode == MODE_CACHE else "")
            body = ("    location / {\n"
                    "      proxy_pass http://backend;\n"
                    "      proxy_http_version 1.1;\n"
                    '      proxy_set_header Connection "";\n'
                    "      proxy_buffer_size 16k;\n"
                    "      proxy_buffers 8 16k;\n"
                    f"{cache}"
                    "    }\n")
        elif ctx.mode == MODE_GZIP:
            # gzip_static serves file.gz when it exists, gzip compresses the others
            body = (f"    root {ctx.wwwroot};\n"
                    f"    gzip on;\n    gzip_static on;\n    gzip_comp_level {GZIP_LEVEL};\n")
        elif ctx.mode == MODE_FCGI:
            body = (f"    root {ctx.wwwroot};\n"
                    "    location ~ \\.php$ {\n"
                    "      fastcgi_pass php;\n"
                    "      fastcgi_keep_conn on;\n"
                    f"{NGINX_FASTCGI_PARAMS}"
                    "    }\n")
        else:
            body = f"    root {ctx.wwwroot};\n"
        upstream = (f"  upstream backend {{\n    server {HOST}:{ctx.backend_port};\n"
                    f"    keepalive {ctx.backend_pool};\n  }}\n"
                    if ctx.mode in BACKEND_MODES else "")
        if ctx.mode == MODE_CACHE:
            upstream += f"  proxy_cache_path {d}/cache levels=1:2 keys_zone=bench:10m;\n"
        if ctx.mode == MODE_FCGI:
            upstream = (f"  upstream php {{\n    server unix:{ctx.fcgi_sockets[self.name]};\n"
                        f"    keepalive {FCGI_CHILDREN};\n  }}\n")
        with open(conf, "w") as f:
            f.write(f"""worker_processes 1;
{rlimit}daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections {wc}; }}
http {{
  types {{ text/plain txt; text/html html; }}
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush off;
  tcp_nodelay on;
  keepalive_requests 100000;
  open_file_cache off;
{temps}{upstream}  server {{
    listen {listen};
{tls}{body}  }}
}}
""")
        return [self.binary(), "-p", d, "-e", f"{d}/error.log", "-c", conf]

    def describe(self):
        return version_line([self.binary(), "-v"]).replace("nginx version: ", "") or self.name


# Debian's /etc/nginx/fastcgi_params, written out so that the run does not depend on the file
NGINX_FASTCGI_PARAMS = "".join(
    f"      fastcgi_param {k} {v};\n" for k, v in (
        ("SCRIPT_FILENAME", "$document_root$fastcgi_script_name"),
        ("QUERY_STRING", "$query_string"), ("REQUEST_METHOD", "$request_method"),
        ("CONTENT_TYPE", "$content_type"), ("CONTENT_LENGTH", "$content_length"),
        ("SCRIPT_NAME", "$fastcgi_script_name"), ("REQUEST_URI", "$request_uri"),
        ("DOCUMENT_URI", "$document_uri"), ("DOCUMENT_ROOT", "$document_root"),
        ("SERVER_PROTOCOL", "$server_protocol"), ("REQUEST_SCHEME", "$scheme"),
        ("HTTPS", "$https if_not_empty"), ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "nginx/$nginx_version"), ("REMOTE_ADDR", "$remote_addr"),
        ("REMOTE_PORT", "$remote_port"), ("SERVER_ADDR", "$server_addr"),
        ("SERVER_PORT", "$server_port"), ("SERVER_NAME", "$server_name"),
        ("REDIRECT_STATUS", "200")))


class H2O(ServerDef):
    """h2o with one thread (not run by default: --servers gateway,nginx,h2o)."""
    name = "h2o"
    # its proxy cache is not set up: the cache scenarios compare the gateway, nginx and Varnish
    modes = (MODE_STATIC, MODE_TLS, MODE_PROXY, MODE_IDLE, MODE_GZIP, MODE_PROXY_TLS)

    def binary(self):
        return shutil.which("h2o") or "/usr/bin/h2o"

    def missing_hint(self):
        return "apt-get -o DPkg::Lock::Timeout=600 install -y h2o"

    def prepare(self, workdir, port, ctx):
        d = os.path.join(workdir, "h2o")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "h2o.conf")
        if ctx.mode in TLS_MODES:
            # no OCSP fetcher process (it would run beside the measured one)
            listen = (f"listen:\n  host: {HOST}\n  port: {port}\n  ssl:\n"
                      f"    certificate-file: {ctx.tls['cert']}\n"
                      f"    key-file: {ctx.tls['key']}\n"
                      "    ocsp-update-interval: 0\n")
        else:
            listen = f"listen:\n  host: {HOST}\n  port: {port}\n"
        if ctx.mode in (MODE_PROXY, MODE_PROXY_TLS):
            handler = f"        proxy.reverse.url: {ctx.backend_url}/\n"
        else:
            handler = f"        file.dir: {ctx.wwwroot}\n"
        if ctx.mode == MODE_GZIP:  # file.gz when it exists, gzip on the fly for the others
            handler += (f"        file.send-compressed: ON\n"
                        f"        compress:\n          gzip: {GZIP_LEVEL}\n")
        # idle: h2o accepts 1024 connections by default and closes an idle HTTP/1.1 connection
        # after 10 s (http1-request-timeout); the others keep one for 60 s or more
        limits = (f"max-connections: {ctx.max_conns}\nhttp1-request-timeout: 120\n"
                  if ctx.max_conns else "")
        with open(conf, "w") as f:
            if os.geteuid() == 0:  # h2o started as root switches to "nobody" unless told
                f.write("user: root\n")
            f.write(f"""num-threads: 1
pid-file: {d}/h2o.pid
error-log: {d}/error.log
{limits}file.mime.addtypes:
  text/plain: .txt
  text/html: .html
{listen}hosts:
  default:
    paths:
      /:
{handler}""")
        return [self.binary(), "-m", "worker", "-c", conf]


class HAProxy(ServerDef):
    """HAProxy serving the files from memory (`http-request return ... file`): HAProxy has no
    static file module, so this is its cheapest way to answer. Opt-in: --servers ...,haproxy."""
    name = "haproxy"
    stop_signal = signal.SIGUSR1  # soft stop
    # no static file module, so nothing to compress or precompress from; FastCGI (fcgi-app)
    # is not set up: the fcgi scenario compares the gateway with nginx; its small object cache
    # is not set up either (the cache scenarios compare the gateway, nginx and Varnish)
    modes = (MODE_STATIC, MODE_TLS, MODE_PROXY, MODE_IDLE, MODE_PROXY_TLS)

    def binary(self):
        return shutil.which("haproxy") or "/usr/sbin/haproxy"

    def missing_hint(self):
        return "apt-get -o DPkg::Lock::Timeout=600 install -y haproxy"

    def prepare(self, workdir, port, ctx):
        d = os.path.join(workdir, "haproxy")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "haproxy.cfg")
        bind = f"{HOST}:{port}"
        if ctx.mode in TLS_MODES:
            bind += f" ssl crt {ctx.tls['pem']} alpn h2,http/1.1"
        if ctx.mode in (MODE_PROXY, MODE_PROXY_TLS):
            rules = "  default_backend be\n"
            backend = (f"backend be\n  http-reuse always\n"
                       f"  server s1 {HOST}:{ctx.backend_port}\n")
        else:
            rules = "".join(
                f"  http-request return status 200 content-type text/plain file "
                f"{ctx.wwwroot}{p} if {{ path {p} }}\n" for p in ctx.paths)
            rules += "  http-request return status 404\n"
            backend = ""
        # a whole body must fit in one buffer (default 16 KiB): size it for the largest one
        bufsize = max(16384, ctx.max_size + 8192)
        limits = "  maxconn 8000\n"
        if ctx.max_conns:
            # HAProxy reserves two descriptors per connection (client and server side), more than
            # the hard limit here; answering from memory needs one: start with what there is
            limits = f"  maxconn {ctx.max_conns}\n  no strict-limits\n"
        with open(conf, "w") as f:
            f.write(f"""global
  nbthread 1
  tune.bufsize {bufsize}
{limits}defaults
  mode http
  timeout client 120s
  timeout connect 5s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind {bind}
{rules}{backend}""")
        return [self.binary(), "-db", "-f", conf]

    def describe(self):
        return " ".join(version_line([self.binary(), "-v"]).split()[:3]) or self.name


# Varnish runs a worker thread per active client connection and allows no fewer than 5 threads
# in a pool: one pool, at least 10 threads (the documented recommendation) and at most
# VARNISH_MAX_THREADS, more than the cache scenarios' 32 client connections, so that no request
# waits in Varnish's queue or is dropped. Every thread is pinned to the servers' CPU like the
# other servers' single worker.
VARNISH_MIN_THREADS = 10
VARNISH_MAX_THREADS = 64
VARNISH_STORAGE = "malloc,256m"


class Varnish(ServerDef):
    """Varnish Cache (Debian's varnishd) in front of the C backend, in the cache scenarios only.
    varnishd runs in the foreground (-F) with its own working directory (-n) in the temporary
    directory; it is two processes, the manager (started) and the cache child (measured)."""
    name = "varnish"
    modes = (MODE_CACHE,)
    startup_timeout = 30.0  # the VCL is compiled with cc at start
    forked_worker = True

    def binary(self):
        return shutil.which("varnishd") or "/usr/sbin/varnishd"

    def missing_hint(self):
        return "apt-get -o DPkg::Lock::Timeout=600 install -y varnish"

    def prepare(self, workdir, port, ctx):
        d = os.path.join(workdir, "varnish")
        os.makedirs(d, exist_ok=True)
        vcl = os.path.join(d, "bench.vcl")
        # the built-in VCL caches a GET without cookies by the backend's Cache-Control
        with open(vcl, "w") as f:
            f.write(f'vcl 4.1;\nbackend default {{\n  .host = "{HOST}";\n'
                    f'  .port = "{ctx.backend_port}";\n}}\n')
        return [self.binary(), "-F", "-n", os.path.join(d, "work"), "-j", "none",
                "-a", f"{HOST}:{port}", "-T", "none", "-f", vcl, "-s", VARNISH_STORAGE,
                "-p", "thread_pools=1", "-p", f"thread_pool_min={VARNISH_MIN_THREADS}",
                "-p", f"thread_pool_max={VARNISH_MAX_THREADS}"]

    def measured_pid(self, proc):
        """The cache child of the manager that was started (it answers the requests)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            kids = []
            for task in os.listdir(f"/proc/{proc.pid}/task"):
                with open(f"/proc/{proc.pid}/task/{task}/children") as f:
                    kids += [int(k) for k in f.read().split()]
            if kids:
                return kids[0]
            time.sleep(0.05)
        raise ServerStartError("varnishd started no cache child process")

    def describe(self):
        m = re.search(r"varnish-[\d.]+", version_line([self.binary(), "-V"]))
        return m.group(0) if m else self.name


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
SERVERS = {"gateway": Gateway, "nginx": Nginx, "h2o": H2O, "haproxy": HAProxy,
           "varnish": Varnish}
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


def client_tls_context(alpn=("http/1.1",)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def probe(port, path, timeout=1.0, tls=False):
    """One GET (over TLS with ALPN http/1.1 if tls); returns the status code or None."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as raw:
            s = client_tls_context().wrap_socket(raw) if tls else raw
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
    except (OSError, ssl.SSLError):
        return None


def start_server(sdef, workdir, ctx, probe_path, wrapper=(), timeout=None, tag=""):
    port = free_port()
    sub = os.path.join(workdir, f"{sdef.name}-{ctx.mode}{tag}")
    os.makedirs(sub, exist_ok=True)
    argv = sdef.prepare(sub, port, ctx)
    logpath = os.path.join(sub, "stdout-stderr.log")
    logf = open(logpath, "wb")
    cmd = ["taskset", "-c", SERVER_CPU, *wrapper, *argv]
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=sub, start_new_session=True)
    logf.close()
    run = Running(sdef, proc, port, logpath)
    STARTED.append(run)
    deadline = time.monotonic() + (timeout or sdef.startup_timeout)
    path = probe_path
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(f"{sdef.name} exited with status {proc.returncode} at start:\n"
                                   f"{run.log_tail()}")
        st = probe(port, path, tls=ctx.mode in TLS_MODES)
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


def proc_status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {field} in /proc/{pid}/status")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# --------------------------------------------------------------------------------------------
# The backend for the proxy scenarios (backend.c), and the certificate for the TLS scenario


class Backend:
    """backend.c compiled with cc -O2 into the work directory, pinned to the client CPU."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None
        self.port = None
        self.binary = os.path.join(workdir, "backend")

    def build(self):
        if os.access(self.binary, os.X_OK):
            return
        r = subprocess.run(["cc", "-O2", "-o", self.binary, os.path.join(HERE, "backend.c")],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise BenchError(f"compiling backend.c failed:\n{r.stderr}")

    def start(self):
        self.build()
        self.port = free_port()
        self.proc = subprocess.Popen(["taskset", "-c", CLIENT_CPU, self.binary, str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        STARTED.append(self)
        deadline = time.monotonic() + 5
        while probe(self.port, "/f1k.txt") != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the backend did not start on {HOST}:{self.port}")
            time.sleep(0.05)
        return self

    def requests(self):
        """How many requests the backend has answered (GET /_count, itself not counted)."""
        status, _, body = fetch(self.port, "/_count")
        if status != 200:
            raise BenchError(f"the backend answered {status} for /_count")
        return int(body)

    def stop(self, timeout=5.0):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


class H2oBackend:
    """h2o (Debian's) on plain TCP serving the document root, pinned to the client CPU: the
    backend of the h2-to-*-backend scenarios. It speaks HTTP/1.1 and h2c with prior knowledge on
    the same port. Its access log holds one connection id per request, from which the backend
    connections that carried requests during a measurement are counted."""

    def __init__(self, workdir, wwwroot):
        self.dir = os.path.join(workdir, "h2o-backend")
        self.wwwroot = wwwroot
        self.access_log = os.path.join(self.dir, "access.log")
        self.proc = None
        self.port = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        conf = os.path.join(self.dir, "h2o.conf")
        with open(conf, "w") as f:
            if os.geteuid() == 0:  # h2o started as root switches to "nobody" unless told
                f.write("user: root\n")
            f.write(f"""num-threads: 1
pid-file: {self.dir}/h2o.pid
error-log: {self.dir}/error.log
access-log:
  path: {self.access_log}
  format: "%{{connection-id}}x"
listen:
  host: {HOST}
  port: {self.port}
hosts:
  default:
    paths:
      /:
        file.dir: {self.wwwroot}
""")
        self.proc = subprocess.Popen(["taskset", "-c", CLIENT_CPU, H2O().binary(), "-m", "worker",
                                      "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        STARTED.append(self)
        deadline = time.monotonic() + 5
        while probe(self.port, "/f1k.txt") != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"h2o (the backend) did not start on {HOST}:{self.port}")
            time.sleep(0.05)
        return self

    def log_offset(self):
        return os.path.getsize(self.access_log)

    def connections_since(self, offset):
        """Distinct connections that carried a request since the access log was `offset` long."""
        with open(self.access_log, errors="replace") as f:
            f.seek(offset)
            return len({line.strip() for line in f if line.strip()})

    def stop(self, timeout=5.0):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


class OpenConnSampler:
    """Samples, every `interval` s on the client CPU, how many established TCP connections the
    backend port has (`ss -tnH state established sport = :PORT`): the peak of the gateway's
    open backend connections while the load runs."""

    def __init__(self, port, interval=0.25):
        self.port = port
        self.interval = interval
        self.peak = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def count(self):
        r = subprocess.run(["taskset", "-c", CLIENT_CPU, "ss", "-tnH", "state", "established",
                            f"( sport = :{self.port} )"], capture_output=True, text=True,
                           timeout=10)
        return sum(1 for line in r.stdout.splitlines() if line.strip())

    def loop(self):
        while not self.done.wait(self.interval):
            self.peak = max(self.peak, self.count())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(timeout=15)


def find_php_fpm():
    for name in ("php-fpm", "php-fpm8.2", "php-fpm8.3", "php-fpm8.1"):
        for d in ("/usr/sbin", "/usr/bin"):
            p = os.path.join(d, name)
            if os.access(p, os.X_OK):
                return p
    return shutil.which("php-fpm")


class PhpFpm:
    """One PHP-FPM master, pinned to the client CPU (there are only two: CPU 0 is the
    servers'), run as the current user, with one identical pool per server: FCGI_CHILDREN
    children (pm = static) on a Unix socket in the work directory. One pool per server because
    a kept-alive FastCGI connection holds its child: the idle connections one server keeps
    would otherwise hold every child while the next server is measured."""

    def __init__(self, workdir, servers):
        self.dir = os.path.join(workdir, "php-fpm")
        self.sockets = {name: os.path.join(self.dir, f"{name}.sock") for name in servers}
        self.proc = None

    def start(self):
        binary = find_php_fpm()
        if not binary:
            raise ServerStartError("php-fpm not found: apt-get -o DPkg::Lock::Timeout=600 "
                                   "install -y php-fpm")
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "fpm.conf")
        with open(conf, "w") as f:
            f.write(f"[global]\nerror_log = {self.dir}/error.log\ndaemonize = no\n")
            for name, sock in self.sockets.items():
                f.write(f"[{name}]\nlisten = {sock}\nlisten.backlog = 1024\npm = static\n"
                        f"pm.max_children = {FCGI_CHILDREN}\npm.max_requests = 0\n")
        argv = ["taskset", "-c", CLIENT_CPU, binary, "-F", "-y", conf, "-p", self.dir]
        if os.geteuid() == 0:
            argv.append("-R")  # run as root (the current user) rather than refuse
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        STARTED.append(self)
        deadline = time.monotonic() + 10
        while not all(os.path.exists(p) for p in self.sockets.values()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ServerStartError(f"php-fpm did not start: {self.log_tail()}")
            time.sleep(0.05)
        return self

    def describe(self):
        return version_line([find_php_fpm() or "php-fpm", "-v"])

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "error.log"), errors="replace") as f:
                return "".join(f.readlines()[-10:])
        except OSError:
            return ""

    def stop(self, timeout=10.0):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)  # graceful: children finish their request
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def make_certificate(workdir):
    """A self-signed ECDSA P-256 certificate for localhost/127.0.0.1, made with the openssl CLI;
    returns {"cert", "key", "pem"} (pem: both in one file, for HAProxy)."""
    d = os.path.join(workdir, "tls")
    os.makedirs(d, exist_ok=True)
    out = {"cert": os.path.join(d, "cert.pem"), "key": os.path.join(d, "key.pem"),
           "pem": os.path.join(d, "combined.pem")}
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", out["key"], "-out", out["cert"]],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise BenchError(f"openssl req failed: {r.stderr}")
    with open(out["pem"], "w") as f:
        for k in ("cert", "key"):
            with open(out[k]) as src:
                f.write(src.read())
    return out


# --------------------------------------------------------------------------------------------
# Fixed-count HTTP/1.1 client (for strace and callgrind, where an exact request count matters).
# It behaves like wrk: `conns` connections, one request in flight on each, no pipelining; with
# close=True a connection per request, closed by the client once the response is complete.


class LoadError(BenchError):
    pass


def chunked_end(buf, pos):
    """Where a chunked body in `buf` ends (after the last chunk and the trailer), or None while
    incomplete; `pos` is where the first chunk not yet complete starts. Returns (end, pos)."""
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None, pos
        try:
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        except ValueError:
            raise LoadError(f"bad chunk size {bytes(buf[pos:eol])[:40]!r}") from None
        if size == 0:
            if buf[eol + 2:eol + 4] == b"\r\n":
                return eol + 4, pos
            trailer = buf.find(b"\r\n\r\n", eol)
            return (trailer + 4 if trailer >= 0 else None), pos
        if len(buf) < eol + 2 + size + 2:
            return None, pos
        pos = eol + 2 + size + 2


def run_requests(port, path, total, conns=32, close=False, timeout=120.0, headers=()):
    """Makes `total` successful GETs (with the extra `headers` lines); returns {"done",
    "errors"}. Bodies are framed by Content-Length or chunked. A connection reset or closed
    before its response is complete counts as an error and its request is made again on a new
    connection (up to 1 % of `total`, then it gives up)."""
    req = (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
           + ("Connection: close\r\n" if close else "")
           + "".join(h + "\r\n" for h in headers) + "\r\n").encode()
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
        sel.register(s, selectors.EVENT_READ, {"buf": b"", "left": -1, "chunks": None})
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
            if st["left"] < 0 and st["chunks"] is None:  # reading the head
                st["buf"] += data
                end = st["buf"].find(b"\r\n\r\n")
                if end < 0:
                    continue
                head = st["buf"][:end].decode("latin-1")
                if not head.startswith(("HTTP/1.1 200", "HTTP/1.0 200")):
                    raise LoadError("unexpected response: " + head.split("\r\n", 1)[0])
                body = st["buf"][end + 4:]
                st["buf"] = b""
                if re.search(r"(?im)^transfer-encoding:\s*chunked", head):
                    st["chunks"], st["pos"] = bytearray(body), 0
                else:
                    m = re.search(r"(?im)^content-length:\s*(\d+)", head)
                    if not m:
                        raise LoadError("response without Content-Length or chunked body")
                    st["left"] = int(m.group(1)) - len(body)
            elif st["chunks"] is not None:
                st["chunks"] += data
            else:
                st["left"] -= len(data)
            if st["chunks"] is not None:
                end, st["pos"] = chunked_end(st["chunks"], st["pos"])
                if end is None:
                    continue
                if end != len(st["chunks"]):
                    raise LoadError("bytes after the end of a chunked body")
                st["chunks"], st["left"] = None, 0
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


def run_client(port, path, total, conns, close, timeout=120.0, headers=()):
    """Runs run_requests in a child pinned to the client CPU; returns {"done", "errors"}."""
    code = ("import sys, json; sys.path.insert(0, %r); import bench; "
            "print(json.dumps(bench.run_requests(%d, %r, %d, %d, %r, %r, %r)))"
            % (HERE, port, path, total, conns, close, timeout, list(headers)))
    r = subprocess.run(["taskset", "-c", CLIENT_CPU, sys.executable, "-B", "-c", code],
                       capture_output=True, text=True, timeout=timeout + 10)
    if r.returncode != 0:
        raise LoadError(f"client failed: {r.stderr.strip()[-500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def hold_idle(port, path, total, batch=256, timeout=120.0):
    """Opens `total` keep-alive connections, makes one GET on each (at most `batch` connecting
    at a time, so that no listen queue overflows), keeps them all open and prints one JSON line
    once every response is complete; closes them when a line arrives on stdin (or at EOF)."""
    req = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    sel = selectors.EpollSelector()
    held = []
    opened = done = errors = 0
    max_errors = max(10, total // 100)
    deadline = time.monotonic() + timeout

    def open_one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((HOST, port))
        sel.register(s, selectors.EVENT_WRITE, {"sent": False, "buf": b"", "left": -1})

    def failed(s, why):
        nonlocal errors, opened
        errors += 1
        if errors > max_errors:
            raise LoadError(f"{errors} failed connections, last: {why}")
        sel.unregister(s)
        s.close()
        opened -= 1

    while done < total:
        while opened - done - errors < batch and opened < total:
            open_one()
            opened += 1
        if time.monotonic() > deadline:
            raise LoadError(f"timeout: {done}/{total} connections")
        events = sel.select(timeout=5)
        if not events:
            raise LoadError(f"stalled: {done}/{total} connections")
        for key, _ in events:
            s, st = key.fileobj, key.data
            if not st["sent"]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    failed(s, os.strerror(err))
                    continue
                try:
                    s.send(req)
                except OSError as e:
                    failed(s, str(e))
                    continue
                st["sent"] = True
                sel.modify(s, selectors.EVENT_READ, st)
                continue
            try:
                data = s.recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError as e:
                failed(s, str(e))
                continue
            if not data:
                failed(s, "closed before the response was complete")
                continue
            if st["left"] < 0:
                st["buf"] += data
                end = st["buf"].find(b"\r\n\r\n")
                if end < 0:
                    continue
                head = st["buf"][:end].decode("latin-1")
                if not head.startswith("HTTP/1.1 200"):
                    raise LoadError("unexpected response: " + head.split("\r\n", 1)[0])
                m = re.search(r"(?im)^content-length:\s*(\d+)", head)
                if not m:
                    raise LoadError("response without Content-Length")
                st["left"] = int(m.group(1)) - (len(st["buf"]) - end - 4)
                st["buf"] = b""
            else:
                st["left"] -= len(data)
            if st["left"] == 0:
                sel.unregister(s)
                held.append(s)
                done += 1
    print(json.dumps({"held": len(held), "errors": errors}), flush=True)
    sys.stdin.readline()
    for s in held:
        s.close()


class IdleClient:
    """hold_idle in a child pinned to the client CPU (its own file descriptor table)."""

    def __init__(self, port, path, total, timeout=120.0):
        code = ("import sys; sys.path.insert(0, %r); import bench; "
                "bench.hold_idle(%d, %r, %d, timeout=%r)" % (HERE, port, path, total, timeout))
        self.proc = subprocess.Popen(["taskset", "-c", CLIENT_CPU, sys.executable, "-B", "-c",
                                      code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.timeout = timeout

    def wait_ready(self):
        r, _, _ = select.select([self.proc.stdout], [], [], self.timeout + 10)
        line = self.proc.stdout.readline() if r else ""
        if not line.strip():
            self.close()
            raise LoadError(f"idle client failed: {self.proc.stderr.read().strip()[-500:]}")
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("close\n")
                self.proc.stdin.flush()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fetch(port, path, headers=(), timeout=10.0):
    """One GET with `headers` on a connection closed by the server afterwards; returns
    (status, head lines as a lower-cased dict, body with the chunked framing removed)."""
    req = (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
           + "".join(h + "\r\n" for h in headers) + "\r\n").encode()
    data = b""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(req)
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise BenchError(f"GET {path}: no complete response head")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise BenchError(f"GET {path}: bad status line {lines[0]!r}")
    fields = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        fields[k.strip().lower()] = v.strip()
    if "chunked" in fields.get("transfer-encoding", "").lower():
        end, _ = chunked_end(body, 0)
        if end is None:
            raise BenchError(f"GET {path}: chunked body cut short")
        out, pos = b"", 0
        while True:
            eol = body.index(b"\r\n", pos)
            size = int(body[pos:eol].split(b";")[0], 16)
            if size == 0:
                break
            out += body[eol + 2:eol + 2 + size]
            pos = eol + 2 + size + 2
        body = out
    return int(m.group(1)), fields, body


def check_response(port, sc):
    """Before a gzip or FastCGI scenario is measured on a server: the response must be 200,
    gzip-encoded when the scenario asks for gzip, and decode to the expected bytes. Returns what
    the JSON keeps (encoded body size); raises BenchError saying what is wrong."""
    extra = [h for h in sc.request_headers() if not h.startswith("Connection:")]
    status, fields, body = fetch(port, sc.path, extra)
    if status != 200:
        raise BenchError(f"GET {sc.path} answered {status}")
    enc = fields.get("content-encoding", "")
    out = {"response_bytes": len(body)}
    if sc.gzip:
        if enc.lower() != "gzip":
            raise BenchError(f"GET {sc.path} with Accept-Encoding: gzip came back with "
                             f"Content-Encoding {enc or '(none)'!r}, not gzip")
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as e:
            raise BenchError(f"GET {sc.path}: the gzip body does not decode: {e}") from None
    if body != expected_body(sc):
        raise BenchError(f"GET {sc.path}: {len(body)} bytes that differ from the expected "
                         f"{sc.size} bytes")
    return out


# the response fields by which each server says where an answer came from
CACHE_STATUS_FIELDS = ("x-gateway-cache", "cache-status", "x-cache-status", "age", "x-varnish")


def check_cache_hits(port, sc, backend, n=200):
    """Before a cache scenario is measured on a server (check_response has made the first
    request, the miss that fills the cache): `n` more requests must all be answered without
    the backend seeing one. Returns what the JSON keeps (the cache status fields of a hit)."""
    before = backend.requests()
    run_client(port, sc.path, n, 8, False)
    seen = backend.requests() - before
    if seen:
        raise BenchError(f"GET {sc.path}: the backend saw {seen} of {n} requests made after "
                         "the first: not answered from the cache")
    _, fields, _ = fetch(port, sc.path)
    return {"cache_fields": {k: fields[k] for k in CACHE_STATUS_FIELDS if k in fields}}


class CacheGuard:
    """Proves that no request measured in a cache scenario reached the backend: the backend's
    request count is read before and after each measurement of each server."""

    def __init__(self, backend, sc):
        self.backend = backend if sc.mode == MODE_CACHE else None
        self.sc = sc
        self.count = None

    def start(self):
        if self.backend:
            self.count = self.backend.requests()

    def check(self, server, what):
        if not self.backend:
            return
        now = self.backend.requests()
        if now != self.count:
            raise BenchError(f"{self.sc.name}: the backend saw {now - self.count} requests "
                             f"during {server}'s {what}: not every request was a cache hit")


# --------------------------------------------------------------------------------------------
# wrk and h2load


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


H2LOAD_REQ = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                        r"(\d+) failed, (\d+) errored, (\d+) timeout")


def run_h2load(port, scenario, duration=None, total=None, timeout=None):
    """h2load over TLS (or h2c with prior knowledge: scenario.h2c): `duration` seconds (-D) or
    `total` requests (-n); scenario.conns connections with scenario.streams concurrent streams
    each. Returns the same keys as run_wrk, plus the negotiated protocol and cipher."""
    what = ["-D", str(duration)] if duration else ["-n", str(total)]
    if scenario.h2c:
        target, want = [f"http://{HOST}:{port}{scenario.path}"], "h2c"
    else:
        target, want = [f"--tls13-ciphers={H2_TLS13_CIPHER}", f"--ciphers={H2_TLS12_CIPHER}",
                        f"https://{HOST}:{port}{scenario.path}"], "h2"
    cmd = ["taskset", "-c", CLIENT_CPU, "h2load", "-t1", f"-c{scenario.conns}",
           f"-m{scenario.streams}", *what, *target]
    r = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=timeout or (duration or 0) + 60)
    m = H2LOAD_REQ.search(r.stdout)
    fin = re.search(r"finished in ([\d.]+)(us|ms|s|m),", r.stdout)
    if r.returncode != 0 or not m or not fin:
        raise BenchError(f"h2load failed ({r.returncode}): {r.stdout[-1500:]}{r.stderr[-500:]}")
    proto = re.search(r"Application protocol: (\S+)", r.stdout)
    if not proto or proto.group(1) != want:
        raise BenchError(f"h2load did not negotiate {want}: {r.stdout[-1500:]}")
    cipher = re.search(r"Cipher: (\S+)", r.stdout)
    codes = re.search(r"status codes: (\d+) 2xx", r.stdout)
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[fin.group(2)]
    ok = int(codes.group(1)) if codes else int(m.group(4))
    return {"requests": ok, "seconds": float(fin.group(1)) * unit,
            "non2xx": int(m.group(4)) - ok,
            "socket_errors": int(m.group(5)) + int(m.group(6)) + int(m.group(7)),
            "protocol": proto.group(1), "cipher": cipher.group(1) if cipher else None}


def run_load(port, scenario, duration, conns):
    if scenario.h2:
        return run_h2load(port, scenario, duration=duration)
    return run_wrk(port, scenario, duration, conns)


def run_fixed(port, scenario, total, conns):
    """Exactly `total` successful requests (strace, callgrind): {"done", "errors"}."""
    if scenario.h2:
        h = run_h2load(port, scenario, total=total, timeout=300)
        if h["requests"] != total:
            raise LoadError(f"h2load: {h['requests']}/{total} requests succeeded")
        return {"done": h["requests"], "errors": h["socket_errors"] + h["non2xx"]}
    extra = [h for h in scenario.request_headers() if not h.startswith("Connection:")]
    return run_client(port, scenario.path, total, conns, scenario.close, headers=extra)


# --------------------------------------------------------------------------------------------
# Metric 1: CPU µs per request, interleaved rounds


def measure_cpu(runs, scenario, rounds, duration, conns, guard):
    per = {r.sdef.name: [] for r in runs}
    rps = {r.sdef.name: [] for r in runs}
    errors = {r.sdef.name: 0 for r in runs}
    tls = {}
    guard.start()
    for r in runs:  # warm-up: caches, lazily built state, first connections
        run_load(r.port, scenario, 1, conns)
        guard.check(r.sdef.name, "CPU warm-up")
    for i in range(rounds):
        order = runs if i % 2 == 0 else list(reversed(runs))  # A B, B A, ... : no fixed slot
        for r in order:
            t0 = cpu_ticks(r.pid)
            w = run_load(r.port, scenario, duration, conns)
            t1 = cpu_ticks(r.pid)
            guard.check(r.sdef.name, f"CPU round {i + 1}")
            if w.get("cipher"):
                tls[r.sdef.name] = f"{w['protocol']} {w['cipher']}"
            if r.proc.poll() is not None:
                raise BenchError(f"{r.sdef.name} died during the run:\n{r.log_tail()}")
            if w["requests"] == 0:
                raise BenchError(f"{r.sdef.name}: wrk completed no request")
            per[r.sdef.name].append((t1 - t0) / CLK_TCK * 1e6 / w["requests"])
            rps[r.sdef.name].append(w["requests"] / w["seconds"])
            errors[r.sdef.name] += w["non2xx"] + w["socket_errors"]
    out = {name: {"cpu_us_per_req": statistics.median(v),
                  "cpu_us_per_req_rounds": [round(x, 3) for x in v],
                  "req_per_s": statistics.median(rps[name]),
                  "wrk_errors": errors[name]}
           for name, v in per.items()}
    for name, t in tls.items():
        out[name]["negotiated"] = t
    return out


def measure_cpu_backend_conns(runs, scenario, rounds, duration, conns, h2o):
    """measure_cpu for the h2-to-*-backend scenarios (the gateway alone), plus the backend
    connections: those that carried a request during the rounds (warm-up included; h2o's access
    log) and the most open at once (ss, sampled)."""
    offset = h2o.log_offset()
    with OpenConnSampler(h2o.port) as sampler:
        cpu = measure_cpu(runs, scenario, rounds, duration, conns, CacheGuard(None, scenario))
    cpu["gateway"].update({"backend_conns": h2o.connections_since(offset),
                           "backend_conns_open_peak": sampler.peak})
    return cpu


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


def measure_syscalls(run, scenario, nreq, conns, workdir, guard):
    guard.start()
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
        cl = run_fixed(run.port, scenario, nreq, conns)
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
    guard.check(run.sdef.name, "strace run")
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


def measure_instructions(sdef, scenarios, nreq, default_conns, workdir, ctx, verify,
                         guard_for):
    """One valgrind run of `sdef` in ctx.mode for `scenarios` (all of that mode).
    HTTP/1.1: warm-up, zero, N requests, dump (check), N more, dump: the figure.
    HTTP/2 (h2load opens its connections and does its TLS handshakes in every run): zero,
    N requests, dump A, 2N requests, dump B; (B - A) / N is the figure, without the handshakes,
    and (2A - B) / connections what one connection's set-up (TLS handshake included) costs."""
    outdir = os.path.join(workdir, f"callgrind-{sdef.name}-{ctx.mode}")
    os.makedirs(outdir, exist_ok=True)
    wrapper = ["valgrind", "--tool=callgrind", "--trace-children=no",
               f"--callgrind-out-file={outdir}/cg.out.%p"]
    run = start_server(sdef, workdir, ctx, scenarios[0].path, wrapper=wrapper, timeout=60,
                       tag="-callgrind")
    res = {}
    try:
        for sc in scenarios:
            if not verify(run, sc):
                continue
            conns = sc.connections(default_conns)
            n = sc.fixed_count(nreq, conns)
            guard = guard_for(sc)
            guard.start()
            run_fixed(run.port, sc, sc.fixed_count(max(200, nreq // 10), conns), conns)
            callgrind_cmd(run.pid, "-z", outdir, set())
            totals = []
            errors = 0
            for k in ((1, 2) if sc.h2 else (1, 1)):
                before = set(os.listdir(outdir))
                cl = run_fixed(run.port, sc, k * n, conns)
                dump = callgrind_cmd(run.pid, "-d", outdir, before)
                totals.append((callgrind_total(dump), cl["done"]))
                errors += cl["errors"]
            guard.check(sdef.name, "callgrind run")
            (ia, na), (ib, nb) = totals
            if sc.h2:
                res[sc.name] = {"instr_per_req": (ib - ia) / (nb - na),
                                "instr_per_req_check": ia / na,
                                "instr_per_connection_setup": (2 * ia - ib) / sc.conns}
            else:
                res[sc.name] = {"instr_per_req": ib / nb, "instr_per_req_check": ia / na}
            res[sc.name].update({"callgrind_requests": n, "callgrind_client_errors": errors})
    finally:
        run.stop(timeout=60)
    return res


def measure_instructions_at_exit(sdef, scenarios, nreq, default_conns, workdir, ctx, verify,
                                 guard_for):
    """For a server whose measured process is a forked child (Varnish): valgrind's gdbserver,
    which callgrind_control talks to, does not run in a child forked without exec, so its
    counters can be neither zeroed nor dumped; callgrind writes them when the child exits.
    Per scenario, two fresh runs make the same start, response check and warm-up, then N
    requests (run A) or 2N (run B) before the server is stopped: (B - A) / N per request."""
    res = {}
    for sc in scenarios:
        conns = sc.connections(default_conns)
        n = sc.fixed_count(nreq, conns)
        totals, errors = [], 0
        for k in (1, 2):
            outdir = os.path.join(workdir, f"callgrind-{sdef.name}-{sc.name}-{k}")
            os.makedirs(outdir, exist_ok=True)
            wrapper = ["valgrind", "--tool=callgrind", "--trace-children=no",
                       f"--callgrind-out-file={outdir}/cg.out.%p"]
            run = start_server(sdef, workdir, ctx, sc.path, wrapper=wrapper, timeout=90,
                               tag=f"-callgrind-{sc.name}-{k}")
            try:
                if not verify(run, sc):
                    return res
                guard = guard_for(sc)
                guard.start()
                run_fixed(run.port, sc, sc.fixed_count(max(200, nreq // 10), conns), conns)
                cl = run_fixed(run.port, sc, k * n, conns)
                guard.check(sdef.name, "callgrind run")
                errors += cl["errors"]
            finally:
                run.stop(timeout=60)
            totals.append((callgrind_total(os.path.join(outdir, f"cg.out.{run.pid}")),
                           cl["done"]))
        (ia, na), (ib, nb) = totals
        res[sc.name] = {"instr_per_req": (ib - ia) / (nb - na), "callgrind_requests": n,
                        "callgrind_client_errors": errors, "callgrind_at_exit": True}
    return res


# --------------------------------------------------------------------------------------------
# Metric 4: KB of RSS per idle keep-alive connection


def measure_idle(run, scenario, total, settle=1.0):
    """Warm-up (200 requests on 10 connections, then closed), RSS; `total` connections that
    each made one request and stay open, RSS again; (after - before) / total. The server's open
    descriptors are counted too, to prove the connections were still open when measured."""
    run_client(run.port, scenario.path, 200, 10, False)
    time.sleep(settle)
    rss0 = proc_status_kb(run.pid, "VmRSS")
    anon0 = proc_status_kb(run.pid, "RssAnon")
    fds0 = open_fds(run.pid)
    t0 = time.monotonic()
    client = IdleClient(run.port, scenario.path, total)
    try:
        st = client.wait_ready()
        opened_s = time.monotonic() - t0
        time.sleep(settle)
        rss1 = proc_status_kb(run.pid, "VmRSS")
        anon1 = proc_status_kb(run.pid, "RssAnon")
        fds1 = open_fds(run.pid)
    finally:
        client.close()
    if run.proc.poll() is not None:
        raise BenchError(f"{run.sdef.name} died during the idle scenario:\n{run.log_tail()}")
    if fds1 - fds0 < 0.99 * total:
        raise BenchError(f"{run.sdef.name}: only {fds1 - fds0} of {total} idle connections were "
                         "still open when measured")
    time.sleep(settle)
    rss2 = proc_status_kb(run.pid, "VmRSS")
    return {"idle_kb_per_conn": (rss1 - rss0) / total, "idle_connections": total,
            "idle_rss_kb_before": rss0, "idle_rss_kb_with": rss1, "idle_rss_kb_after_close": rss2,
            "idle_rss_anon_kb_before": anon0, "idle_rss_anon_kb_with": anon1,
            "idle_open_fds_before": fds0, "idle_open_fds_with": fds1,
            "idle_open_seconds": round(opened_s, 2), "idle_client_errors": st["errors"]}


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
    ("idle_kb_per_conn", "KB/idle conn", 3),
    ("req_per_s", "req/s (client, info)", 0),
    ("backend_conns", "backend conns used (CPU rounds)", 0),
    ("backend_conns_open_peak", "backend conns open (peak)", 0),
]


def ratio_label(server_names):
    peers = [n for n in server_names if n != "gateway"]
    if "gateway" not in server_names or not peers:
        return None
    return "gateway/" + (peers[0] if len(peers) == 1 else "best peer")


def table_rows(results, server_names):
    """The result table: a header row and one row per (scenario, metric), cells as strings.
    The ratio column divides the gateway's value by the lowest peer value present (a server
    that did not take part in a scenario is "-" and not a peer there)."""
    peers = [n for n in server_names if n != "gateway"]
    goals = {sc.name: sc.syscall_goal for sc in SCENARIOS}
    head = ["scenario", "metric", *server_names]
    label = ratio_label(server_names)
    if label:
        head += [label, "goal"]
    rows = []
    for scname, per in results["scenarios"].items():
        for key, name, nd in METRICS:
            vals = {n: per.get(n, {}).get(key) for n in server_names}
            if all(v is None for v in vals.values()):
                continue
            row = [scname, name] + [fmt(vals[n], nd) if nd else
                                    (f"{vals[n]:,.0f}" if vals[n] is not None else "-")
                                    for n in server_names]
            if label:
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
                elif key == "idle_kb_per_conn" and g is not None:
                    goal = f"< {GOAL_IDLE_KB} KB " + ("met" if g < GOAL_IDLE_KB else "NOT met")
                if key == "req_per_s" and ratio is not None:
                    ratio = None  # capped by the client CPU: not a comparison
                row += [fmt(ratio, 2) if ratio is not None else "-", goal]
            rows.append(row)
    return head, rows


def report_notes(results, server_names):
    """The lines under the table: failed checks, retried requests, TLS, gzip sizes, idle RSS,
    per-syscall breakdowns."""
    lines = []
    for scname, per in results["scenarios"].items():
        for n in server_names:
            v = per.get(n, {})
            if v.get("check_error"):
                lines.append(f"{scname} {n} FAILED the response check, not measured: "
                             f"{v['check_error']}")
            errs = {k: v[k] for k in ("wrk_errors", "strace_client_errors",
                                      "callgrind_client_errors", "idle_client_errors")
                    if v.get(k)}
            if errs:
                lines.append(f"{scname} {n} failed requests (reset/closed early, retried): "
                             + ", ".join(f"{k} {c}" for k, c in errs.items()))
    for scname, per in results["scenarios"].items():
        neg = {n: per.get(n, {}).get("negotiated") for n in server_names
               if per.get(n, {}).get("negotiated")}
        if neg:
            if len(set(neg.values())) == 1:
                lines.append(f"{scname}: {next(iter(neg.values()))} for every server")
            else:
                lines.append(f"{scname}: " + ", ".join(f"{n} {t}" for n, t in neg.items()))
        setup = {n: per.get(n, {}).get("instr_per_connection_setup") for n in server_names}
        if any(setup.values()):
            sc = next((x for x in SCENARIOS if x.name == scname), None)
            what = "h2c preface" if sc is not None and sc.h2c else "TLS handshake"
            lines.append(f"{scname} user instr per connection set-up ({what} included, "
                         "not in the per-request figure): "
                         + ", ".join(f"{n} {v:,.0f}" for n, v in setup.items() if v))
        sizes = {n: per.get(n, {}).get("response_bytes") for n in server_names}
        sc = next((x for x in SCENARIOS if x.name == scname), None)
        if sc is not None and sc.gzip and any(sizes.values()):
            lines.append(f"{scname} gzip body bytes (of {sc.size:,}): "
                         + ", ".join(f"{n} {v:,}" for n, v in sizes.items() if v)
                         + f"; zlib level {GZIP_LEVEL} makes "
                         f"{len(gzip.compress(expected_body(sc), GZIP_LEVEL)):,}, level "
                         f"{PRECOMPRESSED_LEVEL} {len(gzip.compress(expected_body(sc), 9)):,}")
        hits = {n: per.get(n, {}).get("cache_fields") for n in server_names
                if per.get(n, {}).get("cache_fields") is not None}
        if hits:
            lines.append(f"{scname}: no request reached the backend after each server's first "
                         "(its count checked around every measurement); a hit carried "
                         + "; ".join(f"{n} " + (", ".join(f"{k}: {v}" for k, v in f.items())
                                                or "no cache field") for n, f in hits.items()))
        at_exit = [n for n in server_names if per.get(n, {}).get("callgrind_at_exit")]
        if at_exit:
            lines.append(f"{scname} user instr/req of {', '.join(at_exit)}: the forked worker's "
                         "count at exit, two runs (N and 2N requests) by difference")
        idle = {n: per.get(n, {}) for n in server_names if "idle_rss_kb_with" in per.get(n, {})}
        for n, v in idle.items():
            lines.append(f"{scname} {n}: RSS {v['idle_rss_kb_before']:,} KB -> "
                         f"{v['idle_rss_kb_with']:,} KB with {v['idle_connections']:,} idle "
                         f"connections ({v['idle_open_fds_with'] - v['idle_open_fds_before']:,} "
                         f"more open fds), {v['idle_rss_kb_after_close']:,} KB after they closed")
    lines += backend_protocol_ratios(results)
    for scname, per in results["scenarios"].items():
        for n in server_names:
            bd = per.get(n, {}).get("syscall_breakdown_per_req")
            if bd:
                parts = ", ".join(f"{k} {v:.2f}" for k, v in bd.items() if v >= 0.005)
                lines.append(f"{scname} {n} syscalls/req: {parts}")
    return lines


# the two scenarios compared by backend_protocol_ratios: (HTTP/2 backend, HTTP/1.1 backend)
BACKEND_PROTOCOL_PAIR = ("h2-to-h2-backend-1k", "h2-to-h1-backend-1k")


def backend_protocol_ratios(results):
    """The gateway's h2-backend/h1-backend ratio for every metric both scenarios have."""
    h2, h1 = (results["scenarios"].get(n, {}).get("gateway", {}) for n in BACKEND_PROTOCOL_PAIR)
    parts = [f"{name} {h2[key] / h1[key]:.2f}" for key, name, _ in METRICS
             if h2.get(key) is not None and h1.get(key)]
    if not parts:
        return []
    return [f"gateway h2-backend/h1-backend ({BACKEND_PROTOCOL_PAIR[0]} / "
            f"{BACKEND_PROTOCOL_PAIR[1]}): " + ", ".join(parts)]


def report(results, server_names):
    head, rows = table_rows(results, server_names)
    rows = [head] + rows
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.rjust(widths[j]) if j >= 2 else c.ljust(widths[j])
                               for j, c in enumerate(r)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines + report_notes(results, server_names))


# --------------------------------------------------------------------------------------------
# --report DIR: the table as Markdown (table.md) and a bar chart (chart.png, gnuplot) of CPU µs
# per request and requests/s per scenario and server


def markdown_report(results, server_names, command):
    head, rows = table_rows(results, server_names)
    right = len(head) - (2 if ratio_label(server_names) else 0)

    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [f"Command: `{command}`", "",
           "Servers: " + "; ".join(f"{n}: {results['servers'][n]}" for n in server_names)]
    if results.get("php_fpm"):
        out.append(f"PHP-FPM: {results['php_fpm']}")
    out += ["", line(head),
            "|" + "|".join("---:" if 2 <= i < right or i == right else "---"
                           for i in range(len(head))) + "|"]
    for r in rows:
        out.append(line(r))
    notes = report_notes(results, server_names)
    if notes:
        out += ["", "```", *notes, "```"]
    return "\n".join(out) + "\n"


# (metric, panel title, log scale): CPU spans 4 µs to ~1 ms (gzip on the fly), so its panel is
# logarithmic, or every other scenario would be a sliver
CHART_METRICS = [("cpu_us_per_req",
                  "CPU µs per request (server process; lower is better; log scale)", True),
                 ("req_per_s", "requests/s (capped by the client CPU: information only)", False)]


def write_chart(results, server_names, path, workdir):
    """Two panels of clustered bars (one bar per server, one cluster per timed scenario),
    drawn by gnuplot into a PNG. A server absent from a scenario leaves a gap."""
    timed = [n for n, per in results["scenarios"].items()
             if any(per.get(s, {}).get("cpu_us_per_req") for s in server_names)]
    if not timed:
        return False
    data = os.path.join(workdir, "chart.dat")
    with open(data, "w") as f:
        for key, _, _ in CHART_METRICS:
            f.write("scenario " + " ".join(server_names) + "\n")
            for n in timed:
                vals = [results["scenarios"][n].get(s, {}).get(key) for s in server_names]
                f.write(n + " " + " ".join("-" if v is None else f"{v:.3f}" for v in vals)
                        + "\n")
            f.write("\n\n")
    cols = len(server_names)
    plots = []
    for i, (_, title, log_y) in enumerate(CHART_METRICS):
        scale = ("set logscale y\nset yrange [1:*]" if log_y
                 else "unset logscale y\nset yrange [0:*]")
        plots.append(f'set title "{title}"\n{scale}\n'
                     f"plot for [c=2:{cols + 1}] '{data}' index {i} using c:xtic(1) "
                     "title columnheader(c)")
    script = f"""set terminal pngcairo size 1400,{420 * len(CHART_METRICS)} font "sans,10"
set output '{path}'
set datafile missing "-"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left
set grid ytics
set xtics rotate by 20 right noenhanced
set multiplot layout {len(CHART_METRICS)},1
""" + "\n".join(plots) + "\nunset multiplot\n"
    sp = os.path.join(workdir, "chart.gp")
    with open(sp, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", sp], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise BenchError(f"gnuplot failed: {r.stderr.strip()[-800:]}")
    return True


def write_report_dir(results, server_names, report_dir, command):
    os.makedirs(report_dir, exist_ok=True)
    with open(os.path.join(report_dir, "table.md"), "w") as f:
        f.write(markdown_report(results, server_names, command))
    with tempfile.TemporaryDirectory(prefix="gw-bench-chart-") as tmp:
        write_chart(results, server_names, os.path.join(report_dir, "chart.png"), tmp)


# --------------------------------------------------------------------------------------------


def check_tools(need):
    hints = {"wrk": "apt-get -o DPkg::Lock::Timeout=600 install -y wrk",
             "strace": "apt-get -o DPkg::Lock::Timeout=600 install -y strace",
             "valgrind": "apt-get -o DPkg::Lock::Timeout=600 install -y valgrind",
             "callgrind_control": "apt-get -o DPkg::Lock::Timeout=600 install -y valgrind",
             "taskset": "apt-get -o DPkg::Lock::Timeout=600 install -y util-linux",
             "h2load": "apt-get -o DPkg::Lock::Timeout=600 install -y nghttp2-client",
             "openssl": "apt-get -o DPkg::Lock::Timeout=600 install -y openssl",
             "cc": "apt-get -o DPkg::Lock::Timeout=600 install -y gcc libc6-dev"}
    missing = [t for t in need if not shutil.which(t)]
    if missing:
        raise BenchError("missing tools: " + ", ".join(missing) + "\n  "
                         + "\n  ".join(sorted({hints[t] for t in missing})))


def raise_fd_limit(need):
    """Soft RLIMIT_NOFILE up to the hard limit (inherited by the servers and the clients)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < need:
        raise BenchError(f"the idle scenario needs {need} file descriptors per process; the "
                         f"limit is {soft} (raise the hard limit or pass --idle-connections)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateway", default=default_gateway(),
                    help="gateway binary (default: build-release/gateway, else build/gateway)")
    ap.add_argument("--servers", default=DEFAULT_SERVERS,
                    help=f"comma list from {','.join(SERVERS)} (default {DEFAULT_SERVERS})")
    ap.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS),
                    help="comma list (default: all): " + ", ".join(s.name for s in SCENARIOS))
    ap.add_argument("--rounds", type=int, default=4, help="interleaved CPU rounds (default 4)")
    ap.add_argument("--duration", type=int, default=3,
                    help="whole seconds per CPU round, first scenario (default 3); the other "
                         "scenarios use 2/3 of it")
    ap.add_argument("--connections", type=int, default=32,
                    help="client connections for the static HTTP/1.1 scenarios (32; the proxy "
                         "scenarios use 64, HTTP/2 16 connections x 10 streams)")
    ap.add_argument("--strace-requests", type=int, default=10000,
                    help="requests counted under strace (default 10000; half of it for the "
                         "scenarios after the first)")
    ap.add_argument("--callgrind-requests", type=int, default=2000,
                    help="N: instructions of requests N+1..2N after a warm-up (default 2000)")
    ap.add_argument("--idle-connections", type=int, default=IDLE_CONNS,
                    help=f"connections held open in idle-10k (default {IDLE_CONNS})")
    ap.add_argument("--skip", default="",
                    help="comma list of metrics to skip: cpu,syscalls,instructions,memory")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "last.json"))
    ap.add_argument("--report", metavar="DIR",
                    help="also write DIR/table.md (the table in Markdown, with the command and "
                         "server versions) and DIR/chart.png (CPU µs/req and req/s bars, gnuplot)")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.duration < 1 or args.connections < 1:
        ap.error("--rounds, --duration and --connections must be at least 1")
    if args.idle_connections < 100:
        ap.error("--idle-connections must be at least 100")
    skip = {s for s in args.skip.split(",") if s}
    names = [n for n in args.servers.split(",") if n]
    by_name = {s.name: s for s in SCENARIOS}
    try:
        scenarios = [by_name[n] for n in args.scenarios.split(",") if n]
    except KeyError as e:
        log(f"unknown scenario {e}")
        return 2
    max_conns = max([sc.connections(args.connections) for sc in scenarios if not sc.idle] or [1])
    if args.strace_requests < max_conns or args.callgrind_requests < max_conns:
        ap.error("request counts must be at least the number of connections")
    timed = [sc for sc in scenarios if not sc.idle]
    need = ["taskset"]
    if "cpu" not in skip and any(not sc.h2 for sc in timed):
        need.append("wrk")
    if "syscalls" not in skip and timed:
        need.append("strace")
    if "instructions" not in skip and timed:
        need += ["valgrind", "callgrind_control"]
    if any(sc.h2 for sc in timed):
        need += ["h2load", "openssl"]
    if any(sc.mode in BACKEND_MODES for sc in scenarios):
        need.append("cc")
    report_dir = os.path.abspath(args.report) if args.report else None
    if report_dir:
        need.append("gnuplot")
    try:
        servers = make_servers(names, os.path.abspath(args.gateway))
        check_tools(need)
        for s in servers:
            if not s.available():
                raise ServerStartError(f"{s.name} not found at {s.binary()}: {s.missing_hint()}")
        if any(sc.mode == MODE_FCGI for sc in scenarios) and not find_php_fpm():
            raise ServerStartError("php-fpm not found: apt-get -o DPkg::Lock::Timeout=600 "
                                   "install -y php-fpm")
        if any(sc.mode in H2O_BACKEND_PROTOCOL for sc in scenarios) and not H2O().available():
            raise ServerStartError(f"h2o (the backend) not found: {H2O().missing_hint()}")
        if any(sc.idle for sc in scenarios) and "memory" not in skip:
            raise_fd_limit(args.idle_connections + 1000)
    except ServerStartError as e:
        log(f"error: {e}")
        return 1
    except BenchError as e:
        log(f"error: {e}")
        return 2

    # The first scenario selected gets the full round length and strace count; the others
    # 2/3 of the round and half the requests, to keep the default run around 5 minutes.
    def round_seconds(i):
        return args.duration if i == 0 else max(1, round(args.duration * 2 / 3))

    def strace_count(i):
        return args.strace_requests if i == 0 else max(max_conns, args.strace_requests // 2)

    # a hard bound on the whole run: twice the expected time (the default run takes ~5 min)
    def expected_s(i, sc):
        if sc.idle:
            return 0 if "memory" in skip else 8 + args.idle_connections / 1000
        t = 0.0
        if "cpu" not in skip:
            t += (args.rounds + 1) * round_seconds(i) + 1
        if "syscalls" not in skip:
            t += sc.fixed_count(strace_count(i), max_conns) / 4000 + 2
        if "instructions" not in skip:
            # a scenario with a smaller share has requests that much dearer: the same time
            t += 3 * args.callgrind_requests / 1000 + 3
        return t

    expected = (sum(len(servers) * expected_s(i, sc) for i, sc in enumerate(scenarios))
                + 10 * len(servers) * len({sc.mode for sc in scenarios}))
    if "instructions" not in skip:  # two fresh valgrind starts per scenario (Varnish: ~20 s each)
        expected += sum(60 for s in servers if s.forked_worker
                        for sc in scenarios if sc.mode in s.modes and not sc.idle)
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
                          "callgrind_requests": args.callgrind_requests,
                          "idle_connections": args.idle_connections,
                          "proxy_pool": PROXY_POOL, "proxy_pool_h2_clients": H2_IN_FLIGHT,
                          "h2_ciphers": [H2_TLS13_CIPHER, H2_TLS12_CIPHER]},
               "goal": {"cpu_ratio_max": GOAL_CPU_RATIO, "syscalls_per_req_max": GOAL_SYSCALLS,
                        "idle_kb_per_conn_max": GOAL_IDLE_KB},
               "scenarios": {sc.name: {"title": sc.title,
                                       "connections": sc.connections(args.connections),
                                       "streams_per_connection": sc.streams}
                             for sc in scenarios}}
    # scenario results: results["scenarios"][sc][server] = {metric: value}
    for sc in scenarios:
        for s in servers:
            results["scenarios"][sc.name][s.name] = {}
    index = {sc.name: i for i, sc in enumerate(scenarios)}
    modes = []
    for sc in scenarios:
        if sc.mode not in modes:
            modes.append(sc.mode)
    static_paths = sorted({sc.path for sc in SCENARIOS if sc.mode not in BACKEND_MODES})
    max_size = max(sc.size for sc in SCENARIOS)
    rc = 0
    backend = fpm = None
    failed = []  # (server, scenario, why): a response check failed, the pair was not measured

    def verify(run, sc):
        """check_response for the gzip and FastCGI scenarios, check_cache_hits for the cache
        ones; a failure is recorded, logged and leaves that server out of the scenario (the run
        ends with status 1)."""
        if not (sc.gzip or sc.mode in (MODE_FCGI, MODE_CACHE)):
            return True
        entry = results["scenarios"][sc.name][run.sdef.name]
        if "check_error" in entry:
            return False
        try:
            entry.update(check_response(run.port, sc))
            if sc.mode == MODE_CACHE:
                entry.update(check_cache_hits(run.port, sc, backend))
            return True
        except (BenchError, OSError) as e:
            entry["check_error"] = str(e)
            failed.append((run.sdef.name, sc.name, str(e)))
            log(f"# {sc.name}: {run.sdef.name} FAILED the response check, not measured: {e}")
            return False

    try:
        for s in servers:
            log(f"# {s.name}: {s.describe()}")
            if isinstance(s, Gateway) and build_type_of(s.path) not in ("Release", None):
                log(f"# warning: the gateway is a {build_type_of(s.path)} build; "
                    "compare Release builds")
        tls = make_certificate(workdir) if set(TLS_MODES) & set(modes) else None
        for mode in modes:
            group = [sc for sc in scenarios if sc.mode == mode]
            members = [s for s in servers if mode in s.modes]
            left_out = [s.name for s in servers if mode not in s.modes]
            if left_out:
                log(f"# {', '.join(sc.name for sc in group)}: without {', '.join(left_out)} "
                    "(not configured for it)")
            if mode in BACKEND_MODES:
                backend = Backend(workdir).start()
                results["backend"] = f"backend.c on CPU {CLIENT_CPU}, port {backend.port}"
            if mode in H2O_BACKEND_PROTOCOL:
                backend = H2oBackend(workdir, wwwroot).start()
                results["h2o_backend"] = (f"{H2O().describe()} on CPU {CLIENT_CPU}, plain TCP "
                                          "(HTTP/1.1 and h2c), serving the document root")
            if mode == MODE_FCGI:
                fpm = PhpFpm(workdir, [s.name for s in members]).start()
                results["php_fpm"] = (f"{fpm.describe()}, one pool per server: pm = static, "
                                      f"{FCGI_CHILDREN} children, Unix socket; on CPU {CLIENT_CPU}")
            ctx = Ctx(mode, wwwroot, static_paths, max_size,
                      backend_port=backend.port if backend else None, tls=tls,
                      max_conns=args.idle_connections + 2000 if mode == MODE_IDLE else None,
                      fcgi_sockets=fpm.sockets if fpm else None)
            if mode == MODE_IDLE:
                if "memory" in skip:
                    continue
                for s in members:  # one at a time: each has the client CPU to itself
                    run = start_server(s, workdir, ctx, group[0].path)
                    for sc in group:
                        log(f"# {sc.name}: {s.name}, {args.idle_connections} idle connections")
                        results["scenarios"][sc.name][s.name].update(
                            measure_idle(run, sc, args.idle_connections))
                    run.stop()
                continue
            if not {"cpu", "syscalls"} <= skip:
                runs = [start_server(s, workdir, ctx, group[0].path) for s in members]
                for sc in group:
                    i = index[sc.name]
                    conns = sc.connections(args.connections)
                    ok = [r for r in runs if verify(r, sc)]
                    if "cpu" not in skip and ok:
                        dur = round_seconds(i)
                        log(f"# {sc.name}: CPU, {args.rounds} interleaved rounds of {dur:g}s")
                        if isinstance(backend, H2oBackend):
                            cpu = measure_cpu_backend_conns(ok, sc, args.rounds, dur, conns,
                                                            backend)
                        else:
                            cpu = measure_cpu(ok, sc, args.rounds, dur, conns,
                                              CacheGuard(backend, sc))
                        for name, v in cpu.items():
                            results["scenarios"][sc.name][name].update(v)
                    if "syscalls" not in skip and ok:
                        n = sc.fixed_count(strace_count(i), max_conns)
                        log(f"# {sc.name}: syscalls over {n} requests")
                        for r in ok:
                            results["scenarios"][sc.name][r.sdef.name].update(
                                measure_syscalls(r, sc, n, conns, workdir,
                                                 CacheGuard(backend, sc)))
                for r in runs:
                    r.stop()
            if "instructions" not in skip:
                for s in members:
                    log(f"# {s.name}: callgrind ({mode}), "
                        + ", ".join(f"{sc.name} {sc.fixed_count(args.callgrind_requests, 1)}"
                                    for sc in group) + " requests x2")
                    measure = (measure_instructions_at_exit if s.forked_worker
                               else measure_instructions)
                    per = measure(s, group, args.callgrind_requests,
                                  args.connections, workdir, ctx, verify,
                                  lambda sc: CacheGuard(backend, sc))
                    for scname, v in per.items():
                        results["scenarios"][scname][s.name].update(v)
            for helper in (backend, fpm):
                if helper:
                    helper.stop()
            backend = fpm = None
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
        names = [s.name for s in servers]
        print(report(results, names))
        print(f"(servers on CPU {SERVER_CPU}, clients, backend and PHP-FPM on CPU {CLIENT_CPU}; "
              f"{results['elapsed_s']:.0f}s)")
        try:
            os.makedirs(os.path.dirname(args.json), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
                f.write("\n")
        except OSError as e:
            log(f"could not write {args.json}: {e}")
        if report_dir:
            try:
                write_report_dir(results, names, report_dir, shown_command(argv))
            except (BenchError, OSError, subprocess.SubprocessError) as e:
                log(f"error: could not write the report to {report_dir}: {e}")
                rc = 2
        if failed and rc == 0:
            rc = 1  # a server failed a response check: its figures for that scenario are absent
    return rc


def shown_command(argv):
    """The command line as the report shows it: paths inside the repository relative to it,
    others (a build directory, say) by the name the README uses or their last component."""
    args = list(sys.argv[1:] if argv is None else argv)
    shown = ["/usr/bin/python3", "tests/bench/bench.py"]
    for i, a in enumerate(args):
        prev = args[i - 1] if i else ""
        if prev in ("--gateway", "--report", "--json") and os.path.isabs(a):
            rel = os.path.relpath(a, REPO)
            if rel.startswith(".."):
                rel = "build-release/gateway" if prev == "--gateway" else os.path.basename(a)
            a = rel
        shown.append(a)
    return " ".join(shown)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        for r in STARTED:
            r.stop(timeout=5)
        sys.exit(130)
