#!/usr/bin/env bash
# The one release build of the gateway: docker/Dockerfile runs it in its builder stage and the test
# suite runs it natively (tests/integration/test_docker_files.py), so the image's build cannot rot
# unseen. Configures, builds and installs into a prefix.
#
#   docker/build.sh [PREFIX]          PREFIX defaults to /usr/local
#
# Environment:
#   BORINGSSL_ROOT  prefix of a self-built BoringSSL (include/, lib/); default: Debian's
#                   android-libboringssl-dev, found by cmake/FindBoringSSL.cmake
#   BUILD_DIR       build tree (default: build-release in the source tree)
#   DESTDIR         staging root for the install (the files still expect to live under PREFIX)
#   JOBS            parallel build jobs (default: the number of CPUs)
#   RUN_TESTS=1     also run the unit tests (ctest) of the release build before installing
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:-/usr/local}
build=${BUILD_DIR:-$src/build-release}
jobs=${JOBS:-$(nproc)}

# Release flags: optimised, assertions off, the usual Debian hardening (fortify, stack protector,
# full RELRO, immediate binding; gcc builds position-independent executables by default).
cflags="-O2 -fstack-protector-strong -fstack-clash-protection -D_FORTIFY_SOURCE=2"
ldflags="-Wl,-z,relro -Wl,-z,now"
args=(-S "$src" -B "$build"
      -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_C_FLAGS_RELEASE="$cflags -DNDEBUG"
      -DCMAKE_EXE_LINKER_FLAGS="$ldflags"
      -DCMAKE_MODULE_LINKER_FLAGS="$ldflags"
      -DCMAKE_INSTALL_PREFIX="$prefix"
      -DGW_SANITIZE=OFF -DGW_TSAN=OFF -DGW_FUZZ=OFF)
if [ -n "${BORINGSSL_ROOT:-}" ]; then
  args+=(-DBORINGSSL_ROOT="$BORINGSSL_ROOT")
fi

echo "== configure (prefix $prefix${BORINGSSL_ROOT:+, BoringSSL from $BORINGSSL_ROOT})"
cmake "${args[@]}"
echo "== build"
cmake --build "$build" -j"$jobs"
if [ "${RUN_TESTS:-0}" = 1 ]; then
  echo "== unit tests"
  (cd "$build" && ctest --output-on-failure -j"$jobs")
fi
echo "== install${DESTDIR:+ into $DESTDIR}"
cmake --install "$build" --strip
"${DESTDIR:-}$prefix/bin/gateway" --version
