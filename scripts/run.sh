#!/usr/bin/env bash
# Builds the gateway (release) and runs it in the foreground on the bundled gateway.yaml:
# the demo site on http://127.0.0.1:8080/. Extra arguments go to the gateway (e.g. -c FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGW_SANITIZE=OFF -DGW_FUZZ=OFF >/dev/null
cmake --build build -j"$(nproc)"
if [ $# -eq 0 ]; then set -- -c gateway.yaml; fi
exec build/gateway "$@"
