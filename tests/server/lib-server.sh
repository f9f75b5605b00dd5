# shellcheck shell=bash
# lib-server.sh - what the server tests share (sourced, not run): tiny
# synthetic models, `gemma4 serve` started on a free loopback port and
# stopped cleanly, and the pinned official `openai` npm client.
#
# The sourcing script sets B (the build folder) and T (its scratch folder,
# removed by the script's own EXIT trap after srv_stop_all) and sources
# tests/lib.sh for ok/bad.  Every server started here is stopped by
# srv_stop_all (call it from the EXIT trap); a server that crashed, did not
# exit cleanly on SIGTERM or logged a sanitizer report is a failure.
#
# Environment:
#   G4_SERVER_TESTS_SCALE  "small" runs reduced suites (default: "small" when
#                          the binary is sanitized, else "full")
#   G4_SERVER_START_TIMEOUT seconds to wait for /health 200 (default 60)
#   G4_NPM_OPENAI_DIR      where the openai npm package is installed
#                          (default ~/.cache/gemma4/npm-openai)
#   G4_NPM_OFFLINE=1       never download the npm package

G=$B/gemma4
SRV_NAMES=()
SRV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The ASan build links libasan: reduce the heavy suites there.
srv_sanitized() { nm -D "$G" 2>/dev/null | grep -q __asan_init || nm "$G" 2>/dev/null | grep -q __asan_init; }
if [ -z "${G4_SERVER_TESTS_SCALE:-}" ]; then
    if srv_sanitized; then G4_SERVER_TESTS_SCALE=small; else G4_SERVER_TESTS_SCALE=full; fi
fi
export G4_SERVER_TESTS_SCALE

# make_model FILE [make-test-model options]: a small random-weight model
# (2 layers, embd 64, window 16: prompts of a few dozen tokens already wrap
# the sliding-window ring).
make_model() {
    local f=$1; shift
    "$G" make-test-model -q -o "$f" --layers 2 --swa-period 2 --vocab 512 --embd 64 --heads 2 --kv-heads 1 \
        --kv-heads-global 1 --head-dim 32 --head-dim-global 64 --ff 128 --window 16 --seed 7 "$@" >/dev/null
}

# has_mmproj: make-test-model can write a matching mmproj (--mmproj-out)
has_mmproj() { "$G" make-test-model --help 2>&1 | grep -q -- '--mmproj-out'; }

# srv_start NAME ARGS...: start `gemma4 serve ARGS --host 127.0.0.1 --port 0`,
# wait for its readiness line (the bound port) and /health 200.  Log in
# $T/NAME.log; port in $T/NAME.port; URL: srv_url NAME.  Returns 1 (after a
# FAIL line) when it does not come up.
srv_start() {
    local name=$1; shift
    local log=$T/$name.log timeout=${G4_SERVER_START_TIMEOUT:-60}
    "$G" serve --host 127.0.0.1 --port 0 "$@" >"$log" 2>&1 &
    local pid=$!
    echo "$pid" >"$T/$name.pid"
    SRV_NAMES+=("$name")
    local port="" t0=$SECONDS
    while [ $((SECONDS - t0)) -lt "$timeout" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            bad "server $name exited during start-up: $(tail -n 5 "$log")"
            return 1
        fi
        # the readiness line names the bound address, e.g. http://127.0.0.1:41234
        port=$(grep -m 1 -o 'http://127\.0\.0\.1:[0-9]\+' "$log" | sed 's/.*://')
        [ -n "$port" ] && break
        sleep 0.05
    done
    if [ -z "$port" ]; then bad "server $name printed no address within ${timeout}s: $(tail -n 5 "$log")"; return 1; fi
    echo "$port" >"$T/$name.port"
    # while the model loads /health is 503 {"status":"loading"}; nothing else
    local code
    while [ $((SECONDS - t0)) -lt "$timeout" ]; do
        code=$(curl -s -o "$T/$name.health" -w '%{http_code}' "http://127.0.0.1:$port/health")
        [ "$code" = 200 ] && return 0
        if [ "$code" = 503 ] && ! grep -q '"status" *: *"loading"' "$T/$name.health"; then
            bad "server $name: /health 503 without {\"status\":\"loading\"}: $(head -c 200 "$T/$name.health")"; return 1
        fi
        if [ "$code" != 503 ] && [ "$code" != 000 ]; then bad "server $name: /health answered $code while starting"; return 1; fi
        kill -0 "$pid" 2>/dev/null || { bad "server $name died before /health 200: $(tail -n 5 "$log")"; return 1; }
        sleep 0.05
    done
    bad "server $name: /health not 200 within ${timeout}s"
    return 1
}

srv_url()  { echo "http://127.0.0.1:$(cat "$T/$1.port")"; }
srv_pid()  { cat "$T/$1.pid"; }
srv_alive() { kill -0 "$(srv_pid "$1")" 2>/dev/null; }

# srv_sanitizer_clean NAME: no sanitizer report in the log so far
srv_sanitizer_clean() {
    ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' "$T/$1.log"
}

# srv_stop NAME: SIGTERM, wait up to 20 s for a clean exit (status 0), check
# the log for sanitizer reports.  Idempotent.
srv_stop() {
    local name=$1 pid
    [ -f "$T/$name.pid" ] || return 0
    pid=$(cat "$T/$name.pid"); rm -f "$T/$name.pid"
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null; local st=$?
        bad "server $name was not running at the end (exit status $st): $(tail -n 5 "$T/$name.log")"
        return
    fi
    kill -TERM "$pid"
    local i
    for ((i = 0; i < 400; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
        bad "server $name did not exit within 20 s of SIGTERM"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null; local st=$?
    [ "$st" = 0 ] && ok || bad "server $name: exit status $st after SIGTERM: $(tail -n 5 "$T/$name.log")"
    srv_sanitizer_clean "$name" && ok || { bad "server $name: sanitizer report:"; grep -A 30 -m 1 -E 'ERROR: |runtime error:' "$T/$name.log" >&2; }
}

srv_stop_all() { local n; for n in ${SRV_NAMES[@]+"${SRV_NAMES[@]}"}; do srv_stop "$n"; done; }

# metric URL NAME: the value of an unlabelled Prometheus sample (empty if absent)
metric() { curl -s "$1/metrics" | awk -v n="$2" '$1 == n { print $2; exit }'; }

# npm_openai: install the pinned openai package (tests/server/package.json +
# package-lock.json) into the cache once; prints its folder.  Exit 1 with a
# one-line reason on stderr when npm or the registry cannot be reached.
npm_openai() {
    local dir=${G4_NPM_OPENAI_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gemma4/npm-openai}
    local want have
    want=$(sed -n 's/.*"openai": *"\([^"]*\)".*/\1/p' "$SRV_DIR/package.json" | head -n 1)
    have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$dir/node_modules/openai/package.json" 2>/dev/null | head -n 1)
    if [ -n "$want" ] && [ "$have" = "$want" ] && cmp -s "$SRV_DIR/package-lock.json" "$dir/package-lock.json"; then
        echo "$dir"; return 0
    fi
    [ "${G4_NPM_OFFLINE:-0}" = 1 ] && { echo "openai@$want is not installed in $dir and G4_NPM_OFFLINE=1" >&2; return 1; }
    command -v npm >/dev/null 2>&1 || { echo "npm not found (apt-get install npm)" >&2; return 1; }
    command -v node >/dev/null 2>&1 || { echo "node not found (apt-get install nodejs)" >&2; return 1; }
    mkdir -p "$dir" || { echo "cannot create $dir" >&2; return 1; }
    (
        cd "$dir" || exit 1
        if command -v flock >/dev/null 2>&1; then exec 9>"$dir/.install.lock"; flock 9; fi
        cp "$SRV_DIR/package.json" "$SRV_DIR/package-lock.json" . || exit 1
        # npm ci installs exactly the locked tree; short timeouts so that an
        # offline machine fails in seconds
        timeout 300 npm ci --no-audit --no-fund --fetch-timeout=30000 --fetch-retries=1 >npm-install.log 2>&1
    ) || { echo "npm could not install openai@$want (registry unreachable?), log: $dir/npm-install.log" >&2; return 1; }
    echo "$dir"
}
