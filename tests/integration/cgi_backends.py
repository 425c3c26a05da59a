"""
Application servers for the CGI-family tests: a PHP-FPM master with its own pool listening on a
Unix socket, and a small threaded SCGI server (Python's standard library only) whose application
answers with the SCGI variables it was sent, or with what the request path asks for.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path


def find_php_fpm():
    for name in ("php-fpm", "php-fpm8.2", "php-fpm8.3", "php-fpm8.1"):
        for d in ("/usr/sbin", "/usr/bin"):
            p = Path(d) / name
            if p.exists():
                return str(p)
    return shutil.which("php-fpm")


class PhpFpm:
    def __init__(self, workdir, children=4):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sock = self.dir / "fpm.sock"
        self.log = self.dir / "fpm.log"
        conf = self.dir / "fpm.conf"
        conf.write_text(
            "[global]\n"
            f"error_log = {self.log}\n"
            "daemonize = no\n"
            "[app]\n"
            f"listen = {self.sock}\n"
            "pm = static\n"
            f"pm.max_children = {children}\n"
            "php_admin_value[upload_max_filesize] = 64M\n"
            "php_admin_value[post_max_size] = 64M\n"
            "php_admin_value[memory_limit] = 256M\n"
            "php_admin_flag[log_errors] = on\n"
            "php_admin_flag[display_errors] = off\n")
        binary = find_php_fpm()
        if not binary:
            raise RuntimeError("php-fpm not installed")
        args = [binary, "-F", "-y", str(conf), "-p", str(self.dir)]
        if os.geteuid() == 0:
            args.append("-R")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.sock.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("php-fpm did not start: " + self.log.read_text(errors="replace"))
            time.sleep(0.05)

    @property
    def url(self):
        return f"unix://{self.sock}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ScgiServer:
    """SCGI on 127.0.0.1 (or a Unix socket). Paths (after the prefix):
    .../env            JSON of the variables (in the order sent) and the body's length
    .../bytes/N        N bytes of pattern i % 251
    .../status         Status: 404 with a body
    .../redirect       a Location without Status (must become 302)
    .../garbage        not a CGI response at all
    """

    def __init__(self, unix_path=None):
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(str(unix_path))
            self.url = f"unix://{unix_path}"
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", 0))
            self.url = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.sock.listen(64)
        self.requests = []
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read_exact(f, n):
        data = b""
        while len(data) < n:
            chunk = f.read(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _serve(self, c):
        f = c.makefile("rb")
        try:
            ln = b""
            while not ln.endswith(b":"):
                b = f.read(1)
                if not b:
                    return
                ln += b
            head = self._read_exact(f, int(ln[:-1]))
            assert f.read(1) == b","
            parts = head.split(b"\0")[:-1]
            env = [(parts[i].decode("latin-1"), parts[i + 1].decode("latin-1")) for i in range(0, len(parts), 2)]
            d = dict(env)
            body = self._read_exact(f, int(d["CONTENT_LENGTH"]))
            self.requests.append(env)
            c.sendall(self._answer(d.get("PATH_INFO", ""), env, body))
        except (EOFError, OSError, AssertionError):
            pass
        finally:
            c.close()

    @staticmethod
    def _answer(path, env, body):
        if path.endswith("/env"):
            doc = json.dumps({"env": env, "body_len": len(body)}).encode()
            return b"Content-Type: application/json\r\n\r\n" + doc
        if "/bytes/" in path:
            n = int(path.rsplit("/", 1)[1])
            return b"Content-Type: application/octet-stream\r\n\r\n" + bytes(i % 251 for i in range(n))
        if path.endswith("/status"):
            return b"Status: 404 Not Here\r\nContent-Type: text/plain\r\nX-App: scgi\r\n\r\nnot here\n"
        if path.endswith("/redirect"):
            return b"Location: http://example.test/elsewhere\r\n\r\n"
        if path.endswith("/garbage"):
            return b"this is not a CGI response\r\n\r\n"
        return b"Content-Type: text/plain\n\nhello from scgi\n"
