"""wrk, the closed-loop HTTP benchmark, for the ceilings: its figures read from its output,
and the Lua script that makes each of its requests a new order."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def wrk(url: str, *, connections: int, seconds: int, script: Path | None = None) -> dict:
    """Runs wrk; returns requests a second, p99 latency (ms) and non-2xx/3xx counts."""
    argv = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        argv += ["-s", str(script)]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "connections": connections,
        "rps": rps,
        "p99_ms": p99_ms,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


WRK_ORDER_SCRIPT = """
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  thread_id = tid
  -- Each run its own keys and addresses: a second run with the first's would be replays.
  run_id = os.time()
end
request = function()
  counter = counter + 1
  local n = thread_id * 10000000 + counter
  local body = '{"quantity": 1, "customer": {"name": "Ceiling", "email": "ceiling' .. run_id .. '-' .. n ..
    '@example.com"}, "payment": {"card_number": "4242424242424242"}}'
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "RUN-" .. run_id .. "-" .. n,
    ["X-Forwarded-For"] = "203.0." .. (n % 250) .. "." .. (math.floor(n / 250) % 250),
  }, body)
end
"""
