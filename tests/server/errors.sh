#!/bin/bash
# errors.sh BUILD_DIR - hostile and malformed requests against `gemma4 serve`:
# every one must get the right status and the OpenAI error object
# {"error":{"message","type","param","code"}} with a one-line message that
# names the problem; afterwards the server is still healthy, exits cleanly on
# SIGTERM and logged no sanitizer report.  Also: API key, CORS, routes and
# methods, body limit, queue full (429 + Retry-After), queue deadline, and
# the command line's own usage errors.  Ends with "errors: N passed, N failed".
set -u
B=${1:?usage: errors.sh BUILD_DIR}
T=$(mktemp -d /tmp/g4-srverr.XXXXXX)
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/server/lib-server.sh
. "$(dirname "$0")/lib-server.sh"
trap 'srv_stop_all; rm -rf "$T"' EXIT

make_model "$T/m.gguf" || { echo "cannot make the test model"; exit 1; }
mkdir -p "$T/media" "$T/outside"
printf 'not an image' >"$T/outside/secret.png"
printf 'not an image' >"$T/media/inside.png"

srv_start main -m "$T/m.gguf" --ctx 256 --parallel 1 --max-body 1 --media-dir "$T/media" \
    --cors-origin http://allowed.example --threads 1 || exit 1
U=$(srv_url main)
NV=$("$G" info "$T/m.gguf" | awk '/^vocab:/ { print $2 }')

CASES=0
# req WHAT STATUS CODE MSG_ERE PARAM -- curl args...
#   CODE: an ERE the error's code must match fully; MSG_ERE: what the message
#   must contain (case-insensitive); PARAM: "-" unchecked, "null", or exact.
req() {
    local what=$1 st=$2 code=$3 pat=$4 param=$5; shift 6
    CASES=$((CASES + 1))
    local got
    got=$(curl -s -o "$T/body" -D "$T/hdr" -w '%{http_code}' --max-time 30 "$@")
    if [ "$got" != "$st" ]; then bad "$what: status $got, want $st: $(head -c 300 "$T/body")"; return 1; fi
    if ! grep -qi '^content-type: application/json' "$T/hdr"; then bad "$what: Content-Type is not application/json: $(grep -i '^content-type' "$T/hdr")"; return 1; fi
    # the exact OpenAI shape: four keys, the right types, a one-line message
    # (one jq run per case: jq is slow to start)
    local line
    line=$(jq -r 'if (type == "object") and (keys == ["error"]) and (.error | type == "object")
            and (.error | keys == ["code", "message", "param", "type"])
            and (.error.message | type == "string" and length > 0 and (contains("\n") | not))
            and (.error.type | type == "string" and length > 0)
            and (.error.param | type == "string" or type == "null")
            and (.error.code | type == "string" or type == "null")
          then [.error.code // "null", .error.param // "null", .error.type, .error.message] | @tsv
          else "BADSHAPE" end' "$T/body" 2>/dev/null)
    if [ -z "$line" ] || [ "$line" = BADSHAPE ]; then bad "$what: not an OpenAI error object: $(head -c 300 "$T/body")"; return 1; fi
    local c p ty m
    IFS=$'\t' read -r c p ty m <<<"$line"
    if ! [[ "$c" =~ ^($code)$ ]]; then bad "$what: code '$c', want '$code': $m"; return 1; fi
    if ! grep -qiE -- "$pat" <<<"$m"; then bad "$what: message lacks /$pat/: $m"; return 1; fi
    if [ "$param" != - ] && [ "$p" != "$param" ]; then bad "$what: param '$p', want '$param': $m"; return 1; fi
    local want_ty=invalid_request_error
    [ "$st" = 429 ] && want_ty=rate_limit_error
    [ "${st:0:1}" = 5 ] && want_ty=server_error
    if [ "$ty" != "$want_ty" ]; then bad "$what: type '$ty', want '$want_ty'"; return 1; fi
    ok
}
# post WHAT STATUS CODE MSG PARAM PATH JSON: a JSON POST to the main server
post() { local a=("$1" "$2" "$3" "$4" "$5"); local path=$6 body=$7; req "${a[@]}" -- -X POST "$U$path" -H 'Content-Type: application/json' --data-binary "$body"; }
# chat WHAT STATUS CODE MSG PARAM EXTRA: a valid chat request (one user
# message, max_tokens 4) with the fields of the JSON object EXTRA replacing
# or adding to it; cmpl: the same for completions
merge() {   # merge BASE_FIELD... -- EXTRA_OBJECT: the base fields EXTRA does not name, then EXTRA's
    local out='{"model":"m"' f x
    for ((;;)); do f=$1; shift; [ "$f" = -- ] && break; [[ "$*" == *"\"${f%%\"*}\""* ]] || out+=",\"$f"; done
    x=${1#\{}; x=${x%\}}
    [ -n "$x" ] && out+=",$x"
    printf '%s}' "$out"
}
chat() { post "$1" "$2" "$3" "$4" "$5" /v1/chat/completions "$(merge 'messages":[{"role":"user","content":"hi"}]' 'max_tokens":4' -- "$6")"; }
cmpl() { post "$1" "$2" "$3" "$4" "$5" /v1/completions "$(merge 'prompt":"hi"' 'max_tokens":4' -- "$6")"; }

# --- malformed JSON: the message gives the position --------------------------
post "truncated JSON" 400 invalid_json 'line 1.*column [0-9]+' null /v1/chat/completions '{"model":"m","messages":['
post "trailing comma" 400 invalid_json 'line 1.*column [0-9]+' null /v1/chat/completions '{"messages":[{"role":"user","content":"hi"}],}'
post "error on line 3" 400 invalid_json 'line 3.*column [0-9]+' null /v1/chat/completions $'{\n"messages":\n[}'
post "empty body" 400 'invalid_json|missing_required_parameter' 'json|body|empty|messages' - /v1/chat/completions ''
post "bare word" 400 invalid_json 'line 1.*column' null /v1/chat/completions 'hello'
post "invalid UTF-8 in JSON" 400 invalid_json 'utf-?8|invalid|line' null /v1/chat/completions $'{"messages":[{"role":"user","content":"\xff\xfe"}]}'
post "NUL escape in a string" 400 'invalid_json|invalid_value' 'nul|\\u0000|null|zero' - /v1/chat/completions '{"messages":[{"role":"user","content":"a\u0000b"}]}'
post "body is an array" 400 invalid_type 'object' - /v1/chat/completions '[{"role":"user","content":"hi"}]'
# (a bare string or number is JSON, but not a request: either code will do)
post "body is a string" 400 'invalid_type|invalid_json' 'object|\{' - /v1/chat/completions '"hi"'
post "completions body is a number" 400 'invalid_type|invalid_json' 'object|\{' - /v1/completions '42'

# --- missing required fields ---------------------------------------------------
post "no messages" 400 missing_required_parameter 'messages' messages /v1/chat/completions '{"model":"m"}'
post "no prompt" 400 missing_required_parameter 'prompt' prompt /v1/completions '{"model":"m"}'
post "tokenize without content" 400 'missing_required_parameter|invalid_type' 'content' content /tokenize '{}'
post "detokenize without tokens" 400 'missing_required_parameter|invalid_type' 'tokens' tokens /detokenize '{}'

# --- wrong JSON types ---------------------------------------------------------------
post "messages is a string" 400 invalid_type 'messages' messages /v1/chat/completions '{"messages":"hi"}'
post "message is a number" 400 invalid_type 'messages\[0\]' 'messages[0]' /v1/chat/completions '{"messages":[1]}'
post "content is a number" 400 invalid_type 'content' 'messages[0].content' /v1/chat/completions '{"messages":[{"role":"user","content":5}]}'
post "role is a number" 400 invalid_type 'role' 'messages[0].role' /v1/chat/completions '{"messages":[{"role":5,"content":"hi"}]}'
post "text part without string text" 400 invalid_type 'text' - /v1/chat/completions '{"messages":[{"role":"user","content":[{"type":"text","text":5}]}]}'
chat "max_tokens string" 400 invalid_type 'max_tokens' max_tokens '{"max_tokens":"5"}'
chat "max_tokens fractional" 400 'invalid_type|invalid_value' 'max_tokens' max_tokens '{"max_tokens":1.5}'
chat "temperature string" 400 invalid_type 'temperature' temperature '{"temperature":"hot"}'
chat "top_p boolean" 400 invalid_type 'top_p' top_p '{"top_p":true}'
chat "top_k string" 400 invalid_type 'top_k' top_k '{"top_k":"40"}'
chat "stream string" 400 invalid_type 'stream' stream '{"stream":"yes"}'
chat "stop number" 400 invalid_type 'stop' stop '{"stop":5}'
chat "seed string" 400 invalid_type 'seed' seed '{"seed":"x"}'
chat "logit_bias array" 400 invalid_type 'logit_bias' logit_bias '{"logit_bias":[1,2]}'
chat "logit_bias value string" 400 invalid_type 'logit_bias' 'logit_bias.5' '{"logit_bias":{"5":"x"}}'
chat "tools object" 400 invalid_type 'tools' tools '{"tools":{}}'
chat "tool_choice number" 400 invalid_type 'tool_choice' tool_choice '{"tool_choice":5}'
chat "n string" 400 invalid_type '(^|[^a-z_])n([^a-z_]|$)' n '{"n":"2"}'
chat "logprobs string" 400 invalid_type 'logprobs' logprobs '{"logprobs":"yes"}'
chat "stream_options string" 400 invalid_type 'stream_options' stream_options '{"stream":true,"stream_options":"x"}'
chat "presence_penalty string" 400 invalid_type 'presence_penalty' presence_penalty '{"presence_penalty":"x"}'
cmpl "prompt number" 400 invalid_type 'prompt' prompt '{"prompt":5}'
post "detokenize tokens string" 400 invalid_type 'tokens' tokens /detokenize '{"tokens":"1 2"}'

# --- out-of-range numbers ---------------------------------------------------------
chat "max_tokens negative" 400 invalid_value 'max_tokens' max_tokens '{"max_tokens":-1}'
chat "max_tokens zero" 400 invalid_value 'max_tokens' max_tokens '{"max_tokens":0}'
chat "max_tokens huge" 400 invalid_value 'max_tokens' max_tokens '{"max_tokens":1000000000000}'
post "max_tokens beyond 2^64" 400 'invalid_json|invalid_value|invalid_type' 'max_tokens|integer|big|line' - /v1/chat/completions '{"messages":[{"role":"user","content":"hi"}],"max_tokens":99999999999999999999999}'
chat "max_completion_tokens negative" 400 invalid_value 'max_completion_tokens' max_completion_tokens '{"max_completion_tokens":-5}'
chat "top_k negative" 400 invalid_value 'top_k' top_k '{"top_k":-1}'
chat "top_k huge" 400 invalid_value 'top_k' top_k '{"top_k":2000000}'
chat "n = 2" 400 'unsupported_parameter|invalid_value' '(^|[^a-z_])n([^a-z_]|$)' n '{"n":2}'
chat "n = 0" 400 invalid_value '(^|[^a-z_])n([^a-z_]|$)' n '{"n":0}'
chat "temperature negative" 400 invalid_value 'temperature' temperature '{"temperature":-0.5}'
chat "temperature 2.5" 400 invalid_value 'temperature' temperature '{"temperature":2.5}'
chat "top_p 1.5" 400 invalid_value 'top_p' top_p '{"top_p":1.5}'
chat "min_p 2" 400 invalid_value 'min_p' min_p '{"min_p":2}'
chat "presence_penalty 3" 400 invalid_value 'presence_penalty' presence_penalty '{"presence_penalty":3}'
chat "frequency_penalty -3" 400 invalid_value 'frequency_penalty' frequency_penalty '{"frequency_penalty":-3}'
chat "top_logprobs 21" 400 invalid_value 'top_logprobs' top_logprobs '{"logprobs":true,"top_logprobs":21}'
chat "top_logprobs without logprobs" 400 invalid_value 'logprobs' - '{"top_logprobs":3}'
chat "logit_bias token beyond the vocabulary" 400 invalid_value "99999|vocab" 'logit_bias.99999' '{"logit_bias":{"99999":5}}'
chat "logit_bias token = n_vocab" 400 invalid_value "$NV|vocab" "logit_bias.$NV" "{\"logit_bias\":{\"$NV\":5}}"
chat "logit_bias negative token" 400 invalid_value 'logit_bias|-1' 'logit_bias.-1' '{"logit_bias":{"-1":5}}'
chat "logit_bias non-numeric key" 400 invalid_value 'logit_bias|abc' 'logit_bias.abc' '{"logit_bias":{"abc":5}}'
chat "logit_bias value 500" 400 invalid_value 'logit_bias' 'logit_bias.5' '{"logit_bias":{"5":500}}'
chat "five stop strings" 400 invalid_value 'stop' stop '{"stop":["a","b","c","d","e"]}'
chat "empty stop string" 400 invalid_value 'stop' - '{"stop":[""]}'
post "detokenize id beyond the vocabulary" 400 invalid_value "999999|vocab" - /detokenize '{"tokens":[1,999999]}'
post "detokenize negative id" 400 invalid_value 'vocab|-1|range' - /detokenize '{"tokens":[-1]}'
cmpl "prompt token id beyond the vocabulary" 400 invalid_value "99999|vocab" - '{"prompt":[2,99999]}'
cmpl "prompt token id negative" 400 invalid_value 'vocab|-5|range' - '{"prompt":[-5]}'
cmpl "max_tokens beyond the context" 400 'invalid_value|context_length_exceeded' 'max_tokens|context' - '{"max_tokens":100000}'

# --- messages: roles, emptiness, tools ------------------------------------------------
post "empty messages" 400 invalid_value 'messages|empty' messages /v1/chat/completions '{"messages":[]}'
post "unknown role" 400 invalid_value "bot" 'messages[0].role' /v1/chat/completions '{"messages":[{"role":"bot","content":"hi"}]}'
post "unknown role after a valid one" 400 invalid_value "wizard" 'messages[1].role' /v1/chat/completions '{"messages":[{"role":"user","content":"hi"},{"role":"wizard","content":"x"}]}'
post "message without role" 400 'invalid_value|missing_required_parameter|invalid_type' 'role' - /v1/chat/completions '{"messages":[{"content":"hi"}]}'
post "unknown content part type" 400 'invalid_value|unsupported_media' 'bogus|type' - /v1/chat/completions '{"messages":[{"role":"user","content":[{"type":"bogus","x":1}]}]}'
post "video_url part" 400 'invalid_value|unsupported_media' 'video_url' - /v1/chat/completions '{"messages":[{"role":"user","content":[{"type":"video_url","video_url":{"url":"data:video/mp4;base64,AAAA"}}]}]}'
post "video part" 400 unsupported_media 'video' - /v1/chat/completions '{"messages":[{"role":"user","content":[{"type":"video","video":{"url":"data:video/mp4;base64,AAAA"}}]}]}'
chat "tool_choice names an undeclared tool" 400 invalid_value 'nosuch' - '{"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}],"tool_choice":{"type":"function","function":{"name":"nosuch"}}}'
chat "tool_choice unknown word" 400 invalid_value 'tool_choice|sometimes' tool_choice '{"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}'
chat "tool without function" 400 'invalid_value|invalid_type|missing_required_parameter' 'function|tools' - '{"tools":[{"type":"function"}]}'
chat "tool_choice required without tools" 400 invalid_value 'tool' - '{"tool_choice":"required"}'
chat "response_format json_schema" 400 'unsupported_parameter|invalid_value' 'response_format|json_schema' - '{"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}}'
cmpl "echo" 400 unsupported_parameter 'echo' echo '{"echo":true}'
cmpl "best_of 2" 400 unsupported_parameter 'best_of' best_of '{"best_of":2}'
cmpl "suffix" 400 unsupported_parameter 'suffix' suffix '{"suffix":"x"}'
post "tool message arguments not JSON" 400 'invalid_value|invalid_json|invalid_type' 'arguments' - /v1/chat/completions \
    '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}'

# --- context and size limits -----------------------------------------------------------
LONG=$(printf 'v%.0s' $(seq 1 400))
chat "prompt longer than the context" 400 context_length_exceeded '[0-9]+ tokens.*256|256.*[0-9]+ tokens' - "{\"messages\":[{\"role\":\"user\",\"content\":\"$LONG\"}]}"
cmpl "raw prompt longer than the context" 400 context_length_exceeded '[0-9]+ tokens.*256|256.*[0-9]+ tokens' - "{\"prompt\":\"$LONG\"}"
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' | sed 's/^/{"messages":[{"role":"user","content":"/; s/$/"}]}/' >"$T/big.json"
req "body over --max-body" 413 request_too_large 'body|large|limit|MB|bytes' - -- -X POST "$U/v1/chat/completions" -H 'Content-Type: application/json' --data-binary @"$T/big.json"
req "chunked body over --max-body (no Content-Length)" 413 request_too_large 'body|large|limit|MB|bytes' - -- -X POST "$U/v1/chat/completions" -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.json"
head -c 200000 /dev/zero | tr '\0' '[' >"$T/deep.json"
req "JSON nested 200000 deep" 400 'invalid_json|invalid_type' 'depth|nest|line|deep|object' - -- -X POST "$U/v1/chat/completions" -H 'Content-Type: application/json' --data-binary @"$T/deep.json"
req "Content-Type text/plain" 415 unsupported_media_type 'content-type|json' - -- -X POST "$U/v1/chat/completions" -H 'Content-Type: text/plain' --data-binary '{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}'

# --- media without --mmproj: never silently dropped ---------------------------------------
PNG1='iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC'
post "image without --mmproj" 400 unsupported_media 'mmproj' - /v1/chat/completions \
    "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what is it\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,$PNG1\"}}]}]}"
post "audio without --mmproj" 400 unsupported_media 'mmproj' - /v1/chat/completions \
    '{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"UklGRiQAAABXQVZF","format":"wav"}}]}]}'
F="file=@$T/outside/secret.png;type=audio/wav"
req "transcription without --mmproj" 400 unsupported_media 'mmproj' - -- -X POST "$U/v1/audio/transcriptions" -F "$F" -F model=m
req "transcription without file" 400 missing_required_parameter 'file' file -- -X POST "$U/v1/audio/transcriptions" -F model=m
req "transcription as JSON" 400 'invalid_value|unsupported_media_type|missing_required_parameter|invalid_type' 'multipart|file|form' - -- -X POST "$U/v1/audio/transcriptions" -H 'Content-Type: application/json' --data-binary '{"file":"x"}'

# --- routes and methods ------------------------------------------------------------------
req "unknown route" 404 not_found '/v1/foo' - -- "$U/v1/foo"
req "unknown POST route" 404 not_found '/v1/engines' - -- -X POST "$U/v1/engines" -H 'Content-Type: application/json' -d '{}'
req "unknown model" 404 'model_not_found|not_found' 'nosuch' - -- "$U/v1/models/nosuch"
req "DELETE on chat" 405 method_not_allowed 'DELETE' - -- -X DELETE "$U/v1/chat/completions"
grep -qi '^allow: .*POST' "$T/hdr" && ok || bad "405 without an Allow header naming POST: $(cat "$T/hdr")"
req "GET on chat" 405 method_not_allowed 'GET' - -- "$U/v1/chat/completions"
req "POST on /v1/models" 405 method_not_allowed 'POST' - -- -X POST "$U/v1/models" -H 'Content-Type: application/json' -d '{}'
req "PUT on completions" 405 method_not_allowed 'PUT' - -- -X PUT "$U/v1/completions" -H 'Content-Type: application/json' -d '{}'

# --- CORS: exact origins only, never reflected --------------------------------------------
acao() { curl -s -o /dev/null -D - "$@" | tr -d '\r' | awk -F': ' 'tolower($1) == "access-control-allow-origin" { print $2 }'; }
[ -z "$(acao -H 'Origin: http://evil.example' "$U/v1/models")" ] && ok || bad "CORS: an unlisted origin got Access-Control-Allow-Origin"
[ -z "$(acao -H 'Origin: http://allowed.example.evil' "$U/v1/models")" ] && ok || bad "CORS: a prefix match was allowed"
[ -z "$(acao -H 'Origin: http://ALLOWED.example' "$U/v1/models")" ] && ok || bad "CORS: the match is not exact (case)"
[ "$(acao -H 'Origin: http://allowed.example' "$U/v1/models")" = "http://allowed.example" ] && ok || bad "CORS: the listed origin got no Access-Control-Allow-Origin"
[ -z "$(acao -H 'Origin: null' "$U/v1/models")" ] && ok || bad "CORS: origin 'null' allowed"
st=$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: http://allowed.example' -H 'Access-Control-Request-Method: POST' "$U/v1/chat/completions")
[ "$st" = 204 ] || [ "$st" = 200 ] && ok || bad "CORS preflight from the listed origin: status $st"
[ -z "$(acao -X OPTIONS -H 'Origin: http://evil.example' -H 'Access-Control-Request-Method: POST' "$U/v1/chat/completions")" ] && ok || bad "CORS preflight from another origin allowed"

# --- the requests above left the server healthy --------------------------------------------
[ "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")" = 200 ] && ok || bad "/health not 200 after the bad requests"
srv_alive main && ok || bad "the server died during the bad requests"
# and it still answers a good request
r=$(curl -s -X POST "$U/v1/chat/completions" -H 'Content-Type: application/json' -d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":3}')
[ "$(jq -r '.object' <<<"$r")" = chat.completion ] && ok || bad "good request after the bad ones: $r"
# the 4xx answers are counted by status
curl -s "$U/metrics" | grep -qE '^gemma4_requests_total\{.*status="400".*\} [1-9]' && ok || bad "/metrics counts no 400 answers"
srv_stop main

# --- API key ---------------------------------------------------------------------------
printf 'sekrit-key-123\n' >"$T/key"
srv_start auth -m "$T/m.gguf" --ctx 128 --parallel 1 --api-key-file "$T/key" --threads 1 || exit 1
A=$(srv_url auth)
req "no Authorization" 401 invalid_api_key 'key|auth' - -- "$A/v1/models"
req "wrong key" 401 invalid_api_key 'key|auth' - -- -H 'Authorization: Bearer wrong' "$A/v1/models"
req "key prefix" 401 invalid_api_key 'key|auth' - -- -H 'Authorization: Bearer sekrit-key-12' "$A/v1/models"
req "key with a suffix" 401 invalid_api_key 'key|auth' - -- -H 'Authorization: Bearer sekrit-key-1234' "$A/v1/models"
req "key without Bearer" 401 invalid_api_key 'key|auth|bearer' - -- -H 'Authorization: sekrit-key-123' "$A/v1/models"
req "key on chat, wrong" 401 invalid_api_key 'key|auth' - -- -X POST -H 'Authorization: Bearer nope' -H 'Content-Type: application/json' \
    -d '{"messages":[{"role":"user","content":"hi"}]}' "$A/v1/chat/completions"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer sekrit-key-123' "$A/v1/models")" = 200 ] && ok || bad "the right key (from --api-key-file, newline stripped) refused"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$A/health")" = 200 ] && ok || bad "/health needs no key"
req "metrics without the key" 401 invalid_api_key 'key|auth' - -- "$A/metrics"
st=$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: http://x.example' "$A/v1/chat/completions")
[ "$st" = 204 ] && ok || bad "OPTIONS without a key: status $st, want 204 (preflights carry no credentials)"
srv_stop auth

# --- queue full (429 + Retry-After) and the per-request deadline --------------------------------
# A slower model (~10 ms a token) keeps the one slot busy: 1 slot, 1 queue
# place.  Two long streams (slot + queue), then a third request must get 429
# at once.  --timeout 3 ends the first stream (finish_reason length); the
# queued one then either runs or times out: either way a well-formed stream.
"$G" make-test-model -q -o "$T/slow.gguf" --layers 4 --embd 512 --ff 2048 --vocab 512 --seed 3 >/dev/null || bad "slow model"
srv_start queue -m "$T/slow.gguf" --ctx 4096 --parallel 1 --queue 1 --timeout 3 --threads 1 || exit 1
Q=$(srv_url queue)
long='{"prompt":"hi","max_tokens":4000,"stream":true,"temperature":1,"seed":1}'
t0=$SECONDS
curl -s -N -X POST "$Q/v1/completions" -H 'Content-Type: application/json' -d "$long" >"$T/long1" 2>/dev/null &
c1=$!
for ((i = 0; i < 200; i++)); do [ "$(metric "$Q" gemma4_slots_busy)" = 1 ] && break; sleep 0.02; done
curl -s -N -X POST "$Q/v1/completions" -H 'Content-Type: application/json' -d "$long" >"$T/long2" 2>/dev/null &
c2=$!
for ((i = 0; i < 200; i++)); do [ "$(metric "$Q" gemma4_queue_depth)" = 1 ] && break; sleep 0.02; done
req "queue full" 429 queue_full 'queue|busy|full' - -- -X POST "$Q/v1/completions" -H 'Content-Type: application/json' -d '{"prompt":"hi","max_tokens":1}'
grep -qiE '^retry-after: *[0-9]+' "$T/hdr" && ok || bad "429 without Retry-After: $(cat "$T/hdr")"
wait $c1
[ $((SECONDS - t0)) -le 8 ] && ok || bad "--timeout 3: the first stream ran $((SECONDS - t0)) s"
tail -n 2 "$T/long1" | head -n 1 | grep -qx 'data: \[DONE\]' && grep -q '"finish_reason":"length"' "$T/long1" && ok \
    || bad "stream ended by the deadline: no finish_reason length + [DONE]: $(tail -c 300 "$T/long1")"
wait $c2
# (a stream refused before it got a slot is a plain JSON error, not SSE)
if tail -n 2 "$T/long2" | head -n 1 | grep -qx 'data: \[DONE\]'; then
    { grep -q '"finish_reason":"length"' "$T/long2" || grep -q '"code":"timeout"' "$T/long2"; } && ok \
        || bad "queued stream: neither a deadline finish nor a timeout error: $(head -c 300 "$T/long2")"
else
    jq -e '.error.code == "timeout"' "$T/long2" >/dev/null 2>&1 && ok || bad "queued stream: not SSE and not a timeout error: $(head -c 300 "$T/long2")"
fi
for ((i = 0; i < 250; i++)); do [ "$(metric "$Q" gemma4_slots_busy)" = 0 ] && [ "$(metric "$Q" gemma4_queue_depth)" = 0 ] && break; sleep 0.02; done
[ "$(metric "$Q" gemma4_slots_busy)" = 0 ] && [ "$(metric "$Q" gemma4_queue_depth)" = 0 ] && ok || bad "slot or queue still busy after the clients left"
srv_stop queue

# --- media with an mmproj: bad base64, bad data, file:// --------------------------------------
if has_mmproj; then
    make_model "$T/mm.gguf" --vocab 262144 --embd-type f16 --mmproj-out "$T/mmproj.gguf" || bad "make-test-model --mmproj-out"
    srv_start media -m "$T/mm.gguf" --mmproj "$T/mmproj.gguf" --ctx 2048 --parallel 1 --media-dir "$T/media" --threads 1 || exit 1
    M=$(srv_url media)
    U=$M
    img() { post "$1" 400 "$2" "$3" - /v1/chat/completions "{\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"$4\"}}]}]}"; }
    aud() { post "$1" 400 "$2" "$3" - /v1/chat/completions "{\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"$4\",\"format\":\"$5\"}}]}]}"; }
    img "bad base64 image" invalid_media 'base64' 'data:image/png;base64,@@@not base64@@@'
    img "base64 of garbage" invalid_media 'image|decode|format' "data:image/png;base64,$(printf 'hello world, not a png' | base64 -w0)"
    img "data URL without comma" invalid_media 'data' 'data:image/png;base64'
    TIFF=$(/usr/bin/python3 -c 'import base64, io; from PIL import Image; b = io.BytesIO(); Image.new("RGB", (8, 8)).save(b, "TIFF"); print(base64.b64encode(b.getvalue()).decode())')
    img "TIFF image" 'unsupported_media|invalid_media' 'tiff|type|format|decode' "data:image/tiff;base64,$TIFF"
    img "TIFF bytes labelled PNG" 'unsupported_media|invalid_media' 'tiff|type|format|decode|png' "data:image/png;base64,$TIFF"
    img "http URL" 'unsupported_media|invalid_media|invalid_value' 'http|url' 'http://example.com/a.png'
    img "file:// outside --media-dir" invalid_media 'media-dir|outside|not allowed|refused' "file://$T/outside/secret.png"
    img "file:// path traversal" invalid_media 'media-dir|outside|not allowed|refused|\.\.' "file://$T/media/../outside/secret.png"
    img "file:// missing file" invalid_media 'media-dir|no such|cannot|not found|refused' "file://$T/media/none.png"
    img "file:// inside, not an image" invalid_media 'image|decode|format' "file://$T/media/inside.png"
    ln -s "$T/outside/secret.png" "$T/media/link.png"
    img "file:// symlink leading outside" invalid_media 'media-dir|outside|not allowed|refused' "file://$T/media/link.png"
    /usr/bin/python3 -c 'import sys; from PIL import Image; Image.new("RGB", (64, 48), (200, 30, 30)).save(sys.argv[1])' "$T/media/ok.png"
    st=$(curl -s -o "$T/body" -w '%{http_code}' -X POST "$M/v1/chat/completions" -H 'Content-Type: application/json' \
        -d "{\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"file://$T/media/ok.png\"}}]}]}")
    [ "$st" = 200 ] && ok || bad "file:// PNG inside --media-dir: status $st: $(head -c 300 "$T/body")"
    aud "bad base64 audio" invalid_media 'base64' '!!!!' wav
    aud "audio format aiff" 'unsupported_media|invalid_value' 'aiff|format' 'UklGRiQAAABXQVZF' aiff
    aud "truncated wav" invalid_media 'audio|decode|wav' 'UklGRiQAAABXQVZF' wav
    req "transcription of garbage" 400 invalid_media 'audio|decode' - -- -X POST "$M/v1/audio/transcriptions" -F "file=@$T/outside/secret.png;filename=a.wav" -F model=m
    req "transcription response_format xml" 400 invalid_value 'response_format|xml' response_format -- -X POST "$M/v1/audio/transcriptions" -F "file=@$T/outside/secret.png;filename=a.wav" -F model=m -F response_format=xml
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$M/health")" = 200 ] && srv_alive media && ok || bad "media server unhealthy after the bad media"
    srv_stop media
else
    echo "  SKIP: bad-media cases (base64, formats, file://, traversal): make-test-model has no --mmproj-out yet"
fi

# --- safe default: loopback only when --host is not given ------------------------------------
"$G" serve -m "$T/m.gguf" --port 0 --threads 1 >"$T/def.log" 2>&1 &
dpid=$!
for ((i = 0; i < 400; i++)); do grep -q 'listening on' "$T/def.log" && break; sleep 0.02; done
grep -q 'listening on http://127\.0\.0\.1:[0-9]' "$T/def.log" && ok || bad "default listen address is not 127.0.0.1: $(head -n 2 "$T/def.log")"
kill -TERM "$dpid" 2>/dev/null; wait "$dpid"; st=$?
[ "$st" = 0 ] && ok || bad "default server: exit status $st after SIGTERM"

# --- command-line usage errors (exit 2, one line) ---------------------------------------------
expect_err 2 "" "serve without -m" -- "$G" serve --port 0
expect_err 2 "port" "serve --port 70000" -- "$G" serve -m "$T/m.gguf" --port 70000
expect_err 2 "parallel" "serve --parallel 0" -- "$G" serve -m "$T/m.gguf" --port 0 --parallel 0
expect_err 2 "cors" "serve --cors-origin '*'" -- "$G" serve -m "$T/m.gguf" --port 0 --cors-origin '*'
expect_err 2 "max-body" "serve --max-body -1" -- "$G" serve -m "$T/m.gguf" --port 0 --max-body -1
expect_err 2 "unknown option" "serve --bogus" -- "$G" serve -m "$T/m.gguf" --bogus
expect_err 1 "cannot open" "serve with a missing model" -- "$G" serve -m "$T/none.gguf" --port 0

echo "errors: $CASES error requests"
echo "errors: $pass passed, $fail failed"
[ "$fail" = 0 ]
