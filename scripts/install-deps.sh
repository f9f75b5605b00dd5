#!/bin/sh
# Checks the Debian packages gemma4.c needs to build and test.  As root it
# installs what is missing with apt-get; otherwise it prints the exact
# apt-get line and fails.  Quiet when everything is there.
set -eu
need=""
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd cc    || have_cmd gcc || need="$need gcc libc6-dev"
have_cmd make  || need="$need make"
have_cmd cmake || need="$need cmake"
# Debian -dev packages: checked with dpkg (headers and the .so link).
have_pkg() { dpkg -s "$1" >/dev/null 2>&1; }
have_pkg libjansson-dev || need="$need libjansson-dev"
have_pkg libedit-dev || need="$need libedit-dev"
# media decoding and the server
for p in libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev libsndfile1-dev libsoxr-dev libmicrohttpd-dev; do
    have_pkg "$p" || need="$need $p"
done
# test-only: Pillow (resize reference), numpy (independent embedder), curl (server tests)
for p in python3-pil python3-numpy curl; do
    have_pkg "$p" || need="$need $p"
done
have_pkg pkg-config || have_pkg pkgconf || need="$need pkg-config"
# test-only: the AArch64 kernels are cross-compiled and run under qemu-user
# (tests/arm/cross-neon.sh; it SKIPs visibly without them)
have_cmd aarch64-linux-gnu-gcc || need="$need gcc-aarch64-linux-gnu"
have_pkg libc6-dev-arm64-cross || need="$need libc6-dev-arm64-cross"
have_cmd qemu-aarch64 || have_cmd qemu-aarch64-static || need="$need qemu-user"
# npm fetches the llama.cpp reference (test-only); the fidelity tests SKIP
# visibly without it, but a full `make test` wants it.
have_cmd npm   || need="$need npm"
[ -z "$need" ] && exit 0
line="apt-get install -y --no-install-recommends$need"
if [ "$(id -u)" = 0 ]; then
    echo "install-deps: installing:$need" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || true
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $need >&2
else
    echo "install-deps: missing packages. Run as root:" >&2
    echo "  sudo $line" >&2
    exit 1
fi
