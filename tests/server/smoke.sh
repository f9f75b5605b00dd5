#!/bin/bash
# smoke.sh BUILD_DIR - `gemma4 serve` starts on a free loopback port, answers
# the basic routes with the right shapes and statuses, cancels a request whose
# client left (slot freed), and exits 0 on SIGTERM with an in-flight stream
# ending in [DONE].  The full suites are the other tests in tests/server/.
set -u
B=${1:?usage: smoke.sh BUILD_DIR}
G=$B/gemma4
T=$(mktemp -d /tmp/g4-smoke.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
PY=/usr/bin/python3

"$G" make-test-model -q -o "$T/m.gguf" --layers 2 --vocab 512 --embd 64 --heads 2 --kv-heads 1 --kv-heads-global 1 \
    --head-dim 32 --head-dim-global 64 --ff 128 --window 16 --seed 3 >/dev/null || { echo "cannot make the test model"; exit 1; }

"$G" serve -m "$T/m.gguf" --host 127.0.0.1 --port 0 --parallel 2 --ctx 4096 -t 1 >"$T/log" 2>&1 &
PID=$!
port=""
for _ in $(seq 1 600); do
    port=$(grep -m 1 -o 'listening on http://127\.0\.0\.1:[0-9]\+' "$T/log" | sed 's/.*://')
    [ -n "$port" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
done
[ -n "$port" ] || { echo "FAIL: no readiness line: $(cat "$T/log")"; exit 1; }
U=http://127.0.0.1:$port
for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")" = 200 ] && break
    sleep 0.05
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")" = 200 ] && ok || bad "/health is not 200"
grep -q '^gemma4 serve: ready: ' "$T/log" && ok || bad "no ready line"

# req EXPECTED_STATUS DESCRIPTION curl-args...: body in $T/body
req() {
    local want=$1 what=$2; shift 2
    local got
    got=$(curl -s -o "$T/body" -w '%{http_code}' "$@")
    [ "$got" = "$want" ] && ok || bad "$what: status $got, want $want: $(head -c 300 "$T/body")"
}
# jq_py EXPR: evaluates EXPR with d = the JSON body; prints the value
jq_py() { "$PY" -c "import json,sys; d=json.load(open('$T/body')); print($1)" 2>/dev/null; }

req 200 "models" "$U/v1/models"
[ "$(jq_py 'd["data"][0]["id"]')" = m ] && ok || bad "model id: $(cat "$T/body")"

req 200 "chat" "$U/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"temperature":0}'
[ "$(jq_py 'd["object"] == "chat.completion" and d["choices"][0]["finish_reason"] in ("length", "stop") and 1 <= d["usage"]["completion_tokens"] <= 5')" = True ] \
    && ok || bad "chat shape: $(cat "$T/body")"
# the same request again: the prompt comes from the slot's cache
req 200 "chat again" "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"temperature":0}'
c=$(jq_py 'd["usage"]["prompt_tokens_details"]["cached_tokens"]')
p=$(jq_py 'd["usage"]["prompt_tokens"]')
[ -n "$c" ] && [ "$c" -ge 1 ] && [ "$c" -lt "$p" ] && ok || bad "cached_tokens $c of $p"

# streaming: chunks, then [DONE]
curl -s -N "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"stream":true,"stream_options":{"include_usage":true}}' >"$T/sse"
[ "$(tail -n 2 "$T/sse" | head -n 1)" = "data: [DONE]" ] && ok || bad "stream does not end with [DONE]: $(tail -c 300 "$T/sse")"
grep -q '"finish_reason":"length"' "$T/sse" && grep -q '"usage":{' "$T/sse" && ok || bad "stream lacks finish_reason/usage"
"$PY" - "$T/sse" <<'EOF' && ok || bad "stream chunks are not JSON"
import json, sys
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("data: ") and line != "data: [DONE]":
        json.loads(line[6:])
EOF

req 200 "completions" "$U/v1/completions" -d '{"prompt":"Hello","max_tokens":3}'
[ "$(jq_py 'd["object"]')" = text_completion ] && ok || bad "completions shape"
req 200 "tokenize" "$U/tokenize" -d '{"content":"Hello"}'
req 200 "detokenize" "$U/detokenize" -d '{"tokens":[2]}'

# errors: the OpenAI error object with the right status
req 400 "malformed JSON" "$U/v1/chat/completions" -d '{"messages":'
[ "$(jq_py 'd["error"]["code"]')" = invalid_json ] && ok || bad "invalid_json code"
jq_py 'd["error"]["message"]' | grep -q 'line 1 column' && ok || bad "no JSON error position"
req 400 "empty messages" "$U/v1/chat/completions" -d '{"messages":[]}'
req 400 "max_tokens -1" "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":-1}'
[ "$(jq_py 'd["error"]["param"]')" = max_tokens ] && ok || bad "param of max_tokens"
req 404 "unknown route" "$U/v1/nothing"
req 405 "wrong method" -X DELETE "$U/v1/chat/completions"
req 200 "metrics" "$U/metrics"
grep -q '^gemma4_slots_total 2$' "$T/body" && ok || bad "metrics: slots_total"

# cancel: a long non-streamed request whose client leaves frees its slot
timeout 0.3 curl -s "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4000,"temperature":1,"logit_bias":{"1":-100,"106":-100,"50":-100}}' >/dev/null
timeout 0.3 curl -s -N "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4000,"stream":true,"logit_bias":{"1":-100,"106":-100,"50":-100}}' >/dev/null
busy=1
for _ in $(seq 1 40); do
    busy=$(curl -s "$U/metrics" | awk '$1 == "gemma4_slots_busy" { print $2 }')
    [ "$busy" = 0 ] && break
    sleep 0.05
done
[ "$busy" = 0 ] && ok || bad "slots still busy after the clients left: $busy"
curl -s "$U/metrics" | awk '$1 == "gemma4_requests_cancelled_total" { exit !($2 >= 1) }' && ok || bad "no cancel counted"

# SIGTERM with a stream in flight: the stream ends with [DONE], exit 0
curl -s -N "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4000,"stream":true,"logit_bias":{"1":-100,"106":-100,"50":-100}}' >"$T/sse2" &
CPID=$!
sleep 0.3
kill -TERM "$PID"
wait "$PID"
rc=$?
PID=""
wait "$CPID"
[ "$rc" = 0 ] && ok || bad "exit status $rc after SIGTERM: $(tail -n 3 "$T/log")"
[ "$(tail -n 2 "$T/sse2" | head -n 1)" = "data: [DONE]" ] && ok || bad "in-flight stream not ended with [DONE]: $(tail -c 300 "$T/sse2")"
if grep -q 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' "$T/log"; then bad "sanitizer report: $(grep -m 3 'ERROR\|runtime error' "$T/log")"; else ok; fi

echo "server smoke: $pass passed, $fail failed"
[ "$fail" = 0 ]
