#!/usr/bin/env bash
# Installs the Debian 12 packages the gateway needs, only those missing.
#   scripts/deps.sh run    -> build and run dependencies
#   scripts/deps.sh test   -> plus test clients, backends, fuzzing and benchmark tools
set -euo pipefail
want=(build-essential cmake pkg-config libnghttp2-dev android-libboringssl-dev libc-ares-dev libyaml-dev
      zlib1g-dev libbrotli-dev
      libpcre2-dev libcrypt-dev libargon2-dev
      openssl ca-certificates)
if [ "${1:-run}" = test ]; then
  want+=(clang-14 libclang-rt-14-dev curl nghttp2-client python3 python3-pytest python3-pytest-xdist python3-h2 python3-grpcio strace apache2-utils whois argon2 php-fpm php-cgi chromium
        python3-yaml yamllint prometheus # docker/ file checks; prometheus ships promtool
        wrk groff-base man-db # load during drains and scrapes; the man page
        pebble) # a small ACME test CA for the automatic TLS tests
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
