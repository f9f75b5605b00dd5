#!/bin/bash
# chat-cli.sh BUILD_DIR - `gemma4 chat` driven through a pipe with a
# random-weight model: turns, commands, KV-cache reuse, /save and /load,
# errors that keep the session, context overflow, Ctrl-C.  The text is
# meaningless but deterministic (fixed seeds).  Ends with "N passed, N failed".
set -u
B=${1:?usage: chat-cli.sh BUILD_DIR}
G=$B/gemma4
T=$(mktemp -d /tmp/g4-chat-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

M=$T/m.gguf
"$G" make-test-model -o "$M" --vocab 1024 -q >/dev/null || { echo "cannot make the test model"; echo "chat_cli: 0 passed, 1 failed"; exit 1; }
# Sampling that gives varied text from random weights; deterministic.
S=(--temp 2 --top-k 0 --top-p 1 --seed 11 -t 2)

# chat INPUT ARGS... : stdin from the string, stdout -> $T/out, stderr -> $T/err, rc -> $rc
chat() {
    local in=$1; shift
    printf '%b' "$in" | "$G" chat -m "$M" "$@" >"$T/out" 2>"$T/err"; rc=$?
}
# stats line N (1-based) of $T/err
stats() { grep '^\[prompt ' "$T/err" | sed -n "${1}p"; }
# reused count of a stats line
reused() { sed -n 's/^\[prompt [0-9]* tokens: \([0-9]*\) reused.*/\1/p' <<<"$1"; }
# token count of a text file (exact bytes, trailing newline included)
ntok() {
    python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1], encoding="utf-8").read()))' "$1" >"$T/tok.jsonl"
    "$G" tokenize -m "$M" --file "$T/tok.jsonl" | wc -w
}
json() { python3 -c "import json,sys; m=json.load(open(sys.argv[1])); $2" "$1"; }

# --- usage
"$G" chat >/dev/null 2>"$T/err"; check "no model: exit 2" [ $? = 2 ]
"$G" chat --help >"$T/out" 2>&1; check "--help" grep -q '/save FILE' "$T/out"
"$G" chat -m "$M" --temp abc </dev/null >/dev/null 2>"$T/err"; check "bad --temp: exit 2" [ $? = 2 ]
check "bad --temp: one line" [ "$(grep -c . "$T/err")" = 1 ]
"$G" chat -m "$T/nope.gguf" </dev/null >/dev/null 2>"$T/err"; check "missing model: exit 1" [ $? = 1 ]

# --- two turns, KV reuse, determinism
chat 'Hello there\nHow are you today?\n' "${S[@]}" -n 12
check "two turns: exit 0" [ "$rc" = 0 ]
check "two turns: two stats lines" [ "$(grep -c '^\[prompt ' "$T/err")" = 2 ]
s1=$(stats 1) s2=$(stats 2)
check "turn 1 reuses nothing ($s1)" [ "$(reused "$s1")" = 0 ]
check "turn 2 reuses the cached prefix ($s2)" [ "$(reused "$s2")" -gt 0 ]
check "answers on stdout" [ -s "$T/out" ]
cp "$T/out" "$T/out1"
chat 'Hello there\nHow are you today?\n' "${S[@]}" -n 12
check "same seed, same answers" cmp -s "$T/out" "$T/out1"

# the prompt of turn 1 is exactly the rendered conversation
printf '[{"role":"user","content":"Hello there"}]' >"$T/c1.json"
"$G" render --messages "$T/c1.json" >"$T/c1.txt"
n1=$(ntok "$T/c1.txt")
check "turn 1 prompt = render+tokenize ($n1 tokens; $s1)" grep -q "^\[prompt $n1 tokens" <<<"$s1"

# --- /system, /think on, /save, /reset, /load round trip
chat 'Hi\n/system You are terse.\n/think on\nTell me more\n/save '"$T"'/s.json\n/reset\n/save '"$T"'/r.json\n/load '"$T"'/s.json\n/save '"$T"'/s2.json\nAgain\n/save '"$T"'/s3.json\n/quit\nnever read\n' "${S[@]}" -n 10
check "commands: exit 0" [ "$rc" = 0 ]
check "saved file is a JSON array of 5 messages" json "$T/s.json" 'assert isinstance(m, list) and len(m) == 5, m'
check "system message first" json "$T/s.json" 'assert m[0] == {"role":"system","content":"You are terse."}, m[0]'
check "roles alternate" json "$T/s.json" 'assert [x["role"] for x in m] == ["system","user","assistant","user","assistant"], m'
check "user contents kept" json "$T/s.json" 'assert m[1]["content"] == "Hi" and m[3]["content"] == "Tell me more", m'
check "assistant content is a string" json "$T/s.json" 'assert all(isinstance(x["content"], str) for x in m), m'
check "/reset keeps only the system prompt" json "$T/r.json" 'assert m == [{"role":"system","content":"You are terse."}], m'
check "/save after /load is identical" cmp -s "$T/s.json" "$T/s2.json"
check "turn after /load continues it" json "$T/s3.json" 'assert len(m) == 7 and m[5] == {"role":"user","content":"Again"}, m'
check "thinking on reported" grep -q '^thinking on' "$T/err"
check "/quit stops reading" [ "$(grep -c '^\[prompt ' "$T/err")" = 3 ]
# with thinking on, the prompt holds <|think|>: turn 2's prompt = render --think
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); json.dump(m[:4], open(sys.argv[2],"w"))' "$T/s.json" "$T/c2.json"
"$G" render --think --messages "$T/c2.json" >"$T/c2.txt"
n2=$(ntok "$T/c2.txt")
check "thinking prompt = render --think ($n2 tokens)" grep -q "^\[prompt $n2 tokens" <<<"$(stats 2)"
check "<|think|> in it" grep -q '<|think|>' "$T/c2.txt"

# thoughts (--think): shown on stderr prefixed, kept as reasoning_content.
# A 512-token vocabulary makes <|channel> likely enough: try seeds until one
# opens a thought block.
"$G" make-test-model -o "$T/m512.gguf" --vocab 512 -q >/dev/null
found=
for seed in $(seq 1 60); do
    printf 'Hi\n/save %s/th.json\n' "$T" | "$G" chat -m "$T/m512.gguf" --think --temp 3 --top-k 0 --top-p 1 --seed "$seed" -t 2 -n 100 >"$T/out" 2>"$T/err"
    if grep -q '^thought: ' "$T/err"; then found=$seed; break; fi
done
check "a thought appears with one of 60 seeds" [ -n "$found" ]
if [ -n "$found" ]; then
    check "thought kept as reasoning_content (seed $found)" json "$T/th.json" 'a = m[1]; assert a["role"] == "assistant" and a.get("reasoning_content"), m'
    check "thought not in content (seed $found)" json "$T/th.json" 'assert "<|channel>" not in m[1]["content"] and "thought" not in m[1]["content"][:8], m'
fi

# --- errors keep the session
printf '[\n  {"role": "user", "content": "x"},\n  {"role": \n' >"$T/bad.json"
printf '{"role":"user"}' >"$T/obj.json"
printf '[{"role":"robot","content":"x"}]' >"$T/role.json"
chat '/load '"$T"'/bad.json\n/load '"$T"'/obj.json\n/load '"$T"'/role.json\n/load '"$T"'/missing.json\n/frob\nbad \xff\xfe bytes\n/save '"$T"'/e.json\nStill here?\n/save '"$T"'/e2.json\n' "${S[@]}" -n 6
check "errors: exit 0" [ "$rc" = 0 ]
check "bad JSON: line and column" grep -q "bad.json: line 4, column" "$T/err"
check "not an array" grep -q "obj.json: expected a JSON array" "$T/err"
check "bad role" grep -q "role.json: message 0: role must be" "$T/err"
check "missing file" grep -q "missing.json: " "$T/err"
check "unknown command" grep -q "unknown command '/frob'" "$T/err"
check "invalid UTF-8 reported with its byte" grep -q "not valid UTF-8 (byte 5" "$T/err"
check "every error is one line" [ "$(grep '^gemma4 chat: ' "$T/err" | grep -vc 'stopped at the token limit')" = 6 ]
check "nothing was added by the errors" json "$T/e.json" 'assert m == [], m'
check "the session goes on" json "$T/e2.json" 'assert len(m) == 2 and m[0]["content"] == "Still here?", m'

# //text sends a message starting with '/'
chat '//slash\n/save '"$T"'/sl.json\n' "${S[@]}" -n 4
check "//text sends /text" json "$T/sl.json" 'assert m[0] == {"role":"user","content":"/slash"}, m'

# --- context fill: turns are dropped automatically (not a terminal)
chat 'Hello there my friend\nHow are you doing today?\nAnd then what happened?\nTell me more please\n/save '"$T"'/f.json\n' "${S[@]}" -n 8 --ctx 64
check "fill: exit 0" [ "$rc" = 0 ]
check "fill: says so with numbers" grep -q "context full: the conversation needs [0-9]* tokens + 8 for the answer; the cache holds [0-9]* / 64" "$T/err"
check "fill: drops the oldest turns" grep -q "dropped the oldest [0-9]* turns\? ([0-9]* messages\?): prompt [0-9]* -> [0-9]* tokens of n_ctx 64" "$T/err"
check "fill: every turn answered" [ "$(grep -c '^\[prompt ' "$T/err")" = 4 ]
check "fill: last user message kept" json "$T/f.json" 'assert m[-2] == {"role":"user","content":"Tell me more please"} and m[0]["role"] == "user" and m[0]["content"] != "Hello there my friend", m'
# a message that alone does not fit is withdrawn, the session goes on
long=$(printf 'word %.0s' $(seq 60))
chat "$long"'\nshort\n/save '"$T"'/w.json\n' "${S[@]}" -n 8 --ctx 64
check "too long: withdrawn" grep -q "more than n_ctx 64; message withdrawn" "$T/err"
check "too long: next one answered" json "$T/w.json" 'assert [x["content"] for x in m if x["role"] == "user"] == ["short"], m'
# an answer that runs into n_ctx is cut and reported
chat 'x\ny\n' "${S[@]}" --ctx 40
check "answer cut at n_ctx" grep -q "context full: 40 / 40 tokens used; the answer was cut" "$T/err"
check "cut: still two turns" [ "$(grep -c '^\[prompt ' "$T/err")" = 2 ]

# --- a cache that cannot be truncated (n_batch 1: the sliding ring holds the
# window only) is cleared and re-processed, and counted
# (greedy: this random model then repeats one token, so every answer has 40
# with the repetition guard off)
chat 'Hello there\nHow are you today?\nAnd now?\n' --temp 0 -t 2 -n 40 --repeat-guard off --batch 1
check "re-process counted" grep -q "full re-processes [12]" "$T/err"
check "re-process: 0 reused" grep -q "0 reused, [0-9]* new, cache not truncatable: full re-process" "$T/err"

# --- loop guards (the same options and defaults as `gemma4 run`), per answer
"$G" chat --help >"$T/out" 2>&1
check "--help: guards" grep -q -- '--max-thinking N' "$T/out"
check "--help: --repeat-guard" grep -q -- '--repeat-guard N' "$T/out"
"$G" chat -m "$M" --repeat-guard 1 </dev/null >/dev/null 2>"$T/err"; check "--repeat-guard 1: exit 2" [ $? = 2 ]
"$G" chat -m "$M" --max-thinking x </dev/null >/dev/null 2>"$T/err"; check "bad --max-thinking: exit 2" [ $? = 2 ]
# greedy: this random model repeats one token forever; on by default
chat 'Hello there\nAgain\n/save '"$T"'/rg.json\n' --temp 0 -t 2
check "repetition guard: exit 0" [ "$rc" = 0 ]
check "repetition guard: reported for each answer" [ "$(grep -c "^gemma4 chat: stopped by the repetition guard: the last [0-9]* tokens repeat a unit of [0-9]* tokens (--repeat-guard 4; 'off' disables it)$" "$T/err")" = 2 ]
check "repetition guard: stop reason" [ "$(grep -c '^\[prompt .* tokens (repetition guard) |' "$T/err")" = 2 ]
check "repetition guard: answers kept" json "$T/rg.json" 'assert [x["role"] for x in m] == ["user","assistant","user","assistant"], m'
chat 'Hello there\n' --temp 0 -t 2 --repeat-guard 3
check "--repeat-guard 3: fires earlier" grep -q "the last 24 tokens repeat a unit of 1 tokens (--repeat-guard 3;" "$T/err"
chat 'Hello there\n' --temp 0 -t 2 -n 50 --repeat-guard off
check "--repeat-guard off: no report" bash -c '! grep -q "repetition guard" "$1"' _ "$T/err"
check "--repeat-guard off: the limit fires" grep -q "^\[prompt .* | answer 50 tokens (-n limit) |" "$T/err"
# -n: the limit, reported once per answer, after the answer's text (whole line)
printf 'Hi\nMore\n' | "$G" chat -m "$M" "${S[@]}" -n 5 >"$T/mix" 2>&1
check "-n: reported for each answer" [ "$(grep -c '^gemma4 chat: stopped at the token limit (-n 5)$' "$T/mix")" = 2 ]
check "-n: stop reason" [ "$(grep -c '^\[prompt .* | answer 5 tokens (-n limit) |' "$T/mix")" = 2 ]
check "-n: the report follows the answer's line" python3 -c '
import sys
L = open(sys.argv[1], "rb").read().split(b"\n")
i = [k for k, l in enumerate(L) if l.startswith(b"gemma4 chat: stopped at the token limit")]
assert len(i) == 2 and all(L[k + 1].startswith(b"[prompt ") for k in i), L' "$T/mix"
# thinking budget: the seed of the thought test above, a budget of 2 tokens
if [ -n "$found" ]; then
    printf 'Hi\n/save %s/tb.json\n' "$T" | "$G" chat -m "$T/m512.gguf" --think --temp 3 --top-k 0 --top-p 1 --seed "$found" -t 2 -n 100 --max-thinking 2 >"$T/out" 2>"$T/err"
    check "thinking budget: reported" grep -q '^gemma4 chat: thinking budget reached (--max-thinking 2): closing the thought$' "$T/err"
    check "thinking budget: the answer goes on" grep -q '^\[prompt .* | answer [0-9]* tokens' "$T/err"
    check "thinking budget: stored as parsed" json "$T/tb.json" 'a = m[1]; assert a["role"] == "assistant" and "<channel|>" not in a["content"] and "<|channel>" not in a["content"] and "<channel|>" not in a.get("reasoning_content", ""), m'
    printf 'Hi\n' | "$G" chat -m "$T/m512.gguf" --think --temp 3 --top-k 0 --top-p 1 --seed "$found" -t 2 -n 100 --max-thinking -1 >"$T/out" 2>"$T/err"
    check "--max-thinking -1: no budget" bash -c '! grep -q "thinking budget" "$1"' _ "$T/err"
fi

# --- Ctrl-C stops the answer and keeps the session
mkfifo "$T/fifo"
# (greedy: this random model never ends its answer before n_ctx; guards off)
"$G" chat -m "$M" --temp 0 -t 2 --ctx 4096 -n -1 --repeat-guard off <"$T/fifo" >"$T/out" 2>"$T/err" &
pid=$!
exec 3>"$T/fifo"
printf 'Tell me a long story\n' >&3
sleep 1.5
kill -INT "$pid" 2>/dev/null
sleep 0.3
printf '/save %s/i.json\n' "$T" >&3
exec 3>&-
wait "$pid"; rc=$?
check "Ctrl-C: exit 0 (rc $rc)" [ "$rc" = 0 ]
check "Ctrl-C: interrupted" grep -q '^\[interrupted' "$T/err"
check "Ctrl-C: session kept, /save works" [ -s "$T/i.json" ]

echo "chat_cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
