#!/bin/bash
# concurrency.sh BUILD_DIR - 50 requests (20 under ASan) over --parallel 4
# with random client disconnects on loopback: every surviving answer
# complete and well-formed, greedy answers identical to solo runs, no slot or
# queue place leaked (/metrics), cancellations counted; then the cancel
# latency of a streaming and a non-streaming request on a slower model
# (printed); finally SIGTERM with a stream in flight (the stream ends with a
# finish_reason or error event and [DONE], the server exits 0).  Needs node
# (no npm package).
set -u
B=${1:?usage: concurrency.sh BUILD_DIR}
T=$(mktemp -d /tmp/g4-srvconc.XXXXXX)
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/server/lib-server.sh
. "$(dirname "$0")/lib-server.sh"
trap 'srv_stop_all; rm -rf "$T"' EXIT
command -v node >/dev/null 2>&1 || { echo "SKIP: node not found (apt-get install nodejs)"; exit 0; }

N=50
[ "$G4_SERVER_TESTS_SCALE" = small ] && N=20
make_model "$T/m.gguf" || { echo "cannot make the test model"; exit 1; }
"$G" make-test-model -q -o "$T/slow.gguf" --layers 4 --embd 256 --ff 1024 --vocab 512 --seed 3 >/dev/null || { echo "cannot make the slow model"; exit 1; }
srv_start par -m "$T/m.gguf" --ctx 1024 --parallel 4 --threads 2 || exit 1
srv_start slow -m "$T/slow.gguf" --ctx 4096 --parallel 1 --threads 1 || exit 1
G4_URL=$(srv_url par) G4_SLOW_URL=$(srv_url slow) G4_REQUESTS=$N G4_BIN=$G G4_MODEL=$T/m.gguf \
    node "$SRV_DIR/concurrency.mjs" && ok || bad "concurrency.mjs"
srv_stop par
# SIGTERM with a stream in flight: the stream ends properly (a last chunk
# with finish_reason or an error event, then [DONE]) and the server exits 0
S=$(srv_url slow)
curl -s -N -X POST "$S/v1/completions" -H 'Content-Type: application/json' \
    -d '{"prompt":"Once","max_tokens":3000,"stream":true,"temperature":1,"seed":2}' >"$T/term.sse" 2>/dev/null &
cpid=$!
for ((i = 0; i < 400; i++)); do [ "$(grep -c '^data: {' "$T/term.sse" 2>/dev/null)" -ge 5 ] && break; sleep 0.02; done
srv_stop slow
wait "$cpid"
n=$(grep -c '^data: {' "$T/term.sse")
[ "$n" -ge 5 ] && ok || bad "SIGTERM test: the stream never started ($n chunks)"
[ "$(grep -v '^$' "$T/term.sse" | tail -n 1)" = "data: [DONE]" ] && ok || bad "SIGTERM: the stream did not end with [DONE]: $(tail -c 300 "$T/term.sse")"
grep -v '^$' "$T/term.sse" | tail -n 2 | head -n 1 | grep -qE '"finish_reason":"(stop|length)"|"error"' && ok \
    || bad "SIGTERM: no finish_reason or error event before [DONE]: $(tail -c 300 "$T/term.sse")"
echo "concurrency: $pass passed, $fail failed"
[ "$fail" = 0 ]
