"""rateLimit accuracy under load: one worker, one client address hammering a limit of N requests per
second with burst B for D seconds gets N x D + B answers 200 (within 5 %), and 429 with Retry-After
for every other request. Driven by wrk when it is installed, else by a Python loop."""
import re
import shutil
import subprocess
import time

import pytest

from conftest import RawConn, make_config

RATE = 200  # requests per second
BURST = 50
DURATION = 4.0  # seconds
TOLERANCE = 0.05

WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; limited = 0; missing = 0; other = 0 end
function response(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 429 then
    limited = limited + 1
    if headers["retry-after"] == nil and headers["Retry-After"] == nil then missing = missing + 1 end
  else other = other + 1 end
end
function done(summary, latency, requests)
  local t = {ok = 0, limited = 0, missing = 0, other = 0}
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + th:get(k) end
  end
  io.write(string.format("COUNTS ok=%d limited=%d missing=%d other=%d\\n",
                         t.ok, t.limited, t.missing, t.other))
end
"""


def run_wrk(port, tmp_path):
    script = tmp_path / "count.lua"
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{DURATION:g}s", "-s", str(script),
                          f"http://127.0.0.1:{port}/hello.txt"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    counts = dict(re.findall(r"(\w+)=(\d+)", re.search(r"COUNTS (.*)", out.stdout).group(1)))
    m = re.search(r"requests in ([\d.]+)(m?s)", out.stdout)
    elapsed = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    return {k: int(v) for k, v in counts.items()}, elapsed


def run_loop(port):
    counts = {"ok": 0, "limited": 0, "missing": 0, "other": 0}
    start = time.monotonic()
    with RawConn(port) as c:
        while time.monotonic() - start < DURATION:
            c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            key = {200: "ok", 429: "limited"}.get(r.status, "other")
            counts[key] += 1
            counts["missing"] += r.status == 429 and not r.header("retry-after")
    return counts, time.monotonic() - start


@pytest.mark.one_worker  # the buckets are per worker: the bound holds for one
def test_limit_holds_under_load(start_gateway, wwwroot, tmp_path):
    gw = start_gateway(make_config(wwwroot) + f"  rateLimit: {{requests: {RATE}, per: 1s, burst: {BURST}}}\n")
    counts, elapsed = run_wrk(gw.port, tmp_path) if shutil.which("wrk") else run_loop(gw.port)
    expected = RATE * elapsed + BURST
    print(f"{counts} in {elapsed:.2f} s: expected {expected:.0f} admitted")
    assert counts["limited"] > counts["ok"], counts  # the load really exceeded the limit
    assert abs(counts["ok"] - expected) <= TOLERANCE * expected, (counts, expected)
    assert counts["missing"] == 0 and counts["other"] == 0, counts
