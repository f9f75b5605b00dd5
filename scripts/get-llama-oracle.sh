#!/usr/bin/env bash
# get-llama-oracle.sh - install the prebuilt llama.cpp used as the reference
# ("oracle") by gemma4.c's fidelity tests, and print its library folder.
#
#   scripts/get-llama-oracle.sh            # prints .../bins/linux-x64 on stdout
#   LIB=$(scripts/get-llama-oracle.sh) && build/llama-ref --lib "$LIB" ...
#
# What it installs: the npm package @node-llama-cpp/linux-x64 at exactly
# version 3.22.1 (llama.cpp "v0.5.0", CPU-only libllama/libggml, ~30 MB), into
#   ${G4_ORACLE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gemma4/oracle}
# with `npm init -y` and `npm i -E`.  Nothing is built and nothing else is
# downloaded (npm warns that the package's postinstall script was not run;
# the libraries are inside the package).  tests/oracle/llama_ref.c is written
# for exactly this build and refuses any other ("ABI mismatch").
#
# Idempotent: when the library is already there, nothing is downloaded.
# Only the folder goes to stdout; progress and errors go to stderr.
# Exit status: 0 ok; 1 with a one-line reason ("get-llama-oracle: ...") on
# stderr when it cannot be had (no npm, registry unreachable, not Linux x86-64).
#
# Environment:
#   G4_ORACLE_DIR        install folder (see above)
#   G4_LLAMA_LIB         use this library folder instead (must hold libllama*.so)
#   G4_ORACLE_OFFLINE=1  never download; fail if it is not installed yet
#   G4_ORACLE_TIMEOUT    seconds allowed for the npm install (default 300)
set -u

PKG="@node-llama-cpp/linux-x64"
VERSION="3.22.1"

fail() {
    echo "get-llama-oracle: $*" >&2
    exit 1
}

# holds libllama (libllama.so or libllama.<something>.so, not libllama-common)?
has_libllama() {
    local f
    [ -d "$1" ] || return 1
    for f in "$1"/libllama.so "$1"/libllama.*.so; do
        [ -f "$f" ] && return 0
    done
    return 1
}

if [ -n "${G4_LLAMA_LIB:-}" ]; then
    has_libllama "$G4_LLAMA_LIB" || fail "G4_LLAMA_LIB=$G4_LLAMA_LIB holds no libllama*.so"
    printf '%s\n' "$G4_LLAMA_LIB"
    exit 0
fi

case "$(uname -s)/$(uname -m)" in
    Linux/x86_64 | Linux/amd64) ;;
    *) fail "no prebuilt llama.cpp oracle for $(uname -s)/$(uname -m) (only Linux x86-64: $PKG)" ;;
esac

if [ -n "${G4_ORACLE_DIR:-}" ]; then
    DIR="$G4_ORACLE_DIR"
else
    [ -n "${XDG_CACHE_HOME:-}" ] || [ -n "${HOME:-}" ] || fail "neither G4_ORACLE_DIR, XDG_CACHE_HOME nor HOME is set"
    DIR="${XDG_CACHE_HOME:-$HOME/.cache}/gemma4/oracle"
fi
PKGDIR="$DIR/node_modules/$PKG"
LIB="$PKGDIR/bins/linux-x64"

installed_version() {
    # "version": "3.22.1" from the installed package.json
    sed -n 's/^[[:space:]]*"version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' \
        "$PKGDIR/package.json" 2>/dev/null | head -n 1
}

if has_libllama "$LIB" && [ "$(installed_version)" = "$VERSION" ]; then
    printf '%s\n' "$LIB"
    exit 0
fi

[ "${G4_ORACLE_OFFLINE:-0}" = 1 ] && fail "$PKG@$VERSION is not installed in $DIR and G4_ORACLE_OFFLINE=1"
command -v npm >/dev/null 2>&1 || fail "npm not found (install Node.js/npm, e.g. apt-get install npm), needed once to fetch $PKG@$VERSION"

mkdir -p "$DIR" || fail "cannot create $DIR"
cd "$DIR" || fail "cannot enter $DIR"

# one installer at a time (parallel test runs share the cache)
if command -v flock >/dev/null 2>&1; then
    exec 9>"$DIR/.install.lock" || fail "cannot create $DIR/.install.lock"
    flock 9 || fail "cannot lock $DIR/.install.lock"
    if has_libllama "$LIB" && [ "$(installed_version)" = "$VERSION" ]; then
        printf '%s\n' "$LIB"
        exit 0
    fi
fi

echo "get-llama-oracle: installing $PKG@$VERSION into $DIR (about 30 MB, once)" >&2
if [ ! -f package.json ]; then
    npm init -y >/dev/null 2>"$DIR/npm-init.log" || fail "'npm init -y' failed in $DIR (see $DIR/npm-init.log)"
fi

TIMEOUT="${G4_ORACLE_TIMEOUT:-300}"
RUN=()
command -v timeout >/dev/null 2>&1 && RUN=(timeout "$TIMEOUT")
# short network timeouts so that an offline machine fails in seconds, not minutes
${RUN[@]+"${RUN[@]}"} npm i -E --no-audit --no-fund --fetch-timeout=30000 --fetch-retries=1 \
    "$PKG@$VERSION" >"$DIR/npm-install.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
    why=$(grep -m 1 -E 'npm (ERR!|error) (code|network|errno|request|404)' "$DIR/npm-install.log" | sed 's/^npm \(ERR!\|error\) //')
    [ $rc -eq 124 ] && why="timed out after ${TIMEOUT}s"
    fail "npm could not install $PKG@$VERSION (registry unreachable?): ${why:-exit status $rc} (log: $DIR/npm-install.log)"
fi
has_libllama "$LIB" || fail "$PKG@$VERSION installed but $LIB holds no libllama*.so (log: $DIR/npm-install.log)"
[ "$(installed_version)" = "$VERSION" ] || fail "npm installed $PKG $(installed_version), not $VERSION"
printf '%s\n' "$LIB"
