"""Brute-force lockout shared by all workers (exactly 10 failures, over connections landing on either
worker, kept across a reload; concurrent attempts), its table size property, and unknown user names
costing what a wrong password costs."""
import base64
import concurrent.futures
import signal
import statistics
import subprocess
import time

from conftest import make_config

# made with `htpasswd -nbB -C 10 slow slow-secret`: bcrypt at cost 10, tens of milliseconds per check
SLOW_HASH = "$2y$10$YWzY71K28YJs1eVzd2QIC.guZsTaGhF3PVdZ93GKv/Z5uhvFcRMFm"


def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def auth_config(wwwroot, workers, brute=True):
    return make_config(wwwroot, workers=workers) + f"""\
  trustedProxies: ["127.0.0.1"]
  users:
    - name: slow
      pass: "{SLOW_HASH}"
  nonStandardCodes:
    - scode: 401
      url: /hello.txt
      disableBruteProtection: {"false" if brute else "true"}
"""


def attempt(gw, ip, pw):
    """One attempt on a new connection: the kernel spreads those over the workers' listeners."""
    return gw.get("/hello.txt", headers={"X-Forwarded-For": ip, "Authorization": basic("slow", pw)})


def reload(gw):
    before = gw.stderr().count("is in use")
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while gw.stderr().count("is in use") == before:
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.02)


def test_ten_failures_over_both_workers_lock_out(start_gateway, wwwroot):
    # With per-worker counters, 10 failures spread over 2 workers would leave both below 10 (unless
    # all 10 connections landed on one worker: 1 chance in 512), and the 11th attempt would get 401.
    gw = start_gateway(auth_config(wwwroot, workers=2))
    ip = "198.51.100.10"
    for i in range(10):
        assert attempt(gw, ip, f"wrong{i}").status == 401, i
    for _ in range(6):  # every later connection, whichever worker takes it
        r = attempt(gw, ip, "slow-secret")
        assert r.status == 429
        assert 295 <= int(r.header("retry-after")) <= 300
    assert attempt(gw, "198.51.100.11", "slow-secret").status == 200  # others are not affected
    # the counters live outside the configuration: a reload keeps the lockout
    reload(gw)
    for _ in range(4):
        assert attempt(gw, ip, "slow-secret").status == 429
    # and a client with fewer than 10 failures keeps its count across the reload too
    ip2 = "198.51.100.12"
    for i in range(9):
        assert attempt(gw, ip2, f"wrong{i}").status == 401
    reload(gw)
    assert attempt(gw, ip2, "wrong9").status == 401
    assert attempt(gw, ip2, "slow-secret").status == 429


def test_unknown_user_costs_a_wrong_password(start_gateway, wwwroot):
    gw = start_gateway(auth_config(wwwroot, workers=1, brute=False))

    def timed(conn, authz):
        conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nAuthorization: " + authz.encode() + b"\r\n\r\n")
        t = time.perf_counter()
        assert conn.read_response().status == 401
        return time.perf_counter() - t

    unknown, wrong, no_hash = [], [], []
    with gw.connect(timeout=10) as c:
        # interleaved on one connection, so that load from elsewhere on the machine hits all alike
        for i in range(20):
            unknown.append(timed(c, basic(f"nobody{i}", f"pw{i}")))
            wrong.append(timed(c, basic("slow", f"pw{i}")))
            no_hash.append(timed(c, "Basic " + base64.b64encode(b"no-colon").decode()))
    u, w, n = statistics.median(unknown), statistics.median(wrong), statistics.median(no_hash)
    print(f"median: unknown user {u * 1000:.1f} ms, wrong password {w * 1000:.1f} ms, "
          f"no hash {n * 1000:.2f} ms")
    assert abs(u - w) <= 0.3 * max(u, w), (u, w)
    assert min(u, w) > 10 * n, (u, w, n)


def test_table_size_property(gateway_bin, tmp_path, start_gateway, wwwroot):
    bad = tmp_path / "bad.yaml"
    bad.write_text("global:\n  port: 0\n  bruteForceMaxClients: 10\n")
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(bad)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert f"{bad}:3:25: bruteForceMaxClients: 10 is out of range (64 to 16777216)" in out.stderr
    # a valid size works, and changing it by a reload is reported as needing a restart
    text = auth_config(wwwroot, workers=1)
    gw = start_gateway(text.replace("global:\n", "global:\n  bruteForceMaxClients: 128\n", 1))
    ip = "198.51.100.20"
    for i in range(10):
        assert attempt(gw, ip, f"wrong{i}").status == 401
    assert attempt(gw, ip, "slow-secret").status == 429
    gw.config_path.write_text(gw.config_path.read_text().replace("bruteForceMaxClients: 128",
                                                                 "bruteForceMaxClients: 256"))
    reload(gw)
    assert "bruteForceMaxClients takes effect after a restart" in gw.stderr()
    assert attempt(gw, ip, "slow-secret").status == 429


def test_concurrent_attempts_bounded_by_workers(start_gateway, wwwroot):
    # A worker checks, verifies and counts an attempt in one go, so with 2 workers at most one more
    # attempt than 10 can be between its check and its count when the 10th failure lands.
    gw = start_gateway(auth_config(wwwroot, workers=2))
    ip = "198.51.100.30"
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda i: attempt(gw, ip, f"wrong{i}").status, range(40)))
    assert sorted(set(statuses)) == [401, 429], statuses
    assert 10 <= statuses.count(401) <= 11, statuses
    assert attempt(gw, ip, "slow-secret").status == 429
