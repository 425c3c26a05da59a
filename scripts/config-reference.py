#!/usr/bin/env python3
"""Writes docs/CONFIGURATION.md from the property registry, as `gateway --help` prints it.

    scripts/config-reference.py [path/to/gateway]   (default: build/gateway)

tests/integration/test_docs.py checks that the committed file lists every property the binary
knows, with its scope, so the reference cannot fall behind the code.
"""
import re
import subprocess
import sys
from pathlib import Path

SCOPES = {"G": "global", "A": "global, host, location", "H": "host", "L": "location", "E": "errorConfig entry"}
LINE = re.compile(r"^  (\S+)\s+([GAHLE])  (.*)$")


def properties(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    props, started = [], False
    for line in out.splitlines():
        if line.startswith("configuration properties"):
            started = True
            continue
        m = LINE.match(line) if started else None
        if m:
            props.append(m.groups())
    return props


def render(props):
    rows = ["# Configuration reference", "",
            "Generated from the property registry (`gateway --help`) by `scripts/config-reference.py`.",
            "The file format is Ferron 1.x's `ferron.yaml`: a `global` map, a `hosts` list (each with",
            "`domain` and/or `ip`, optional `locations` with `path`, optional `errorConfig`), an optional",
            "`upstreams` map of named backend groups and an optional `include` list of globs. Properties",
            "set at a wider scope are inherited: lists concatenate, maps merge key by key, scalars are",
            "overridden. Every error is reported as `file:line:column: property: what is wrong`; an",
            "unknown property is a warning with a \"did you mean\" suggestion.", "",
            "| property | where | meaning (default) |", "| --- | --- | --- |"]
    for name, scope, text in props:
        rows.append(f"| `{name}` | {SCOPES[scope]} | {text.replace('|', '/')} |")
    rows += ["", "## Named upstream groups", "",
             "A top-level `upstreams:` map names groups of backends; `proxyTo: http://NAME` uses one.",
             "", "```yaml", "upstreams:", "  api:",
             "    balance: roundRobin        # random, roundRobin (default), leastConnections, twoRandomChoices, hash",
             "    hashKey: header:X-User     # with hash: ip (default), header:NAME or cookie:NAME",
             "    servers:", "      - http://10.0.0.1:8080", "      - url: https://10.0.0.2:8443",
             "        weight: 3                # 1 to 1000", "        tlsVerify: false         # skip certificate checks for this one",
             "global:", "  loadModules: [rproxy]", "  proxyTo: http://api", "```"]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    binary = sys.argv[1] if len(sys.argv) > 1 else "build/gateway"
    out = Path(__file__).resolve().parents[1] / "docs" / "CONFIGURATION.md"
    out.write_text(render(properties(binary)))
    print(f"wrote {out.name}: {len(properties(binary))} properties")
