#!/bin/bash
# cli.sh BUILD_DIR - the command-line tool's contract: exit codes, one-line
# errors on bad input (never a crash), and the verification formats of
# `info` and `logits`.  Ends with "N passed, N failed".
set -u
B=${1:?usage: cli.sh BUILD_DIR}
G=$B/gemma4
T=$(mktemp -d /tmp/g4-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# expect CODE DESCRIPTION -- command...: exit code, stderr one line (when non-zero)
expect() {
    local code=$1 what=$2; shift 3
    "$@" >"$T/out" 2>"$T/err"; local rc=$?
    if [ "$rc" != "$code" ]; then bad "$what: exit $rc, want $code: $(head -c 300 "$T/err")"; return; fi
    if [ "$code" != 0 ]; then
        local lines; lines=$(wc -l <"$T/err")
        if [ "$lines" -lt 1 ]; then bad "$what: no error message"; return; fi
    fi
    ok
}

expect 2 "no arguments" -- "$G"
expect 0 "--help" -- "$G" --help
expect_err 2 "unknown command" "unknown command" -- "$G" frobnicate
expect_err 2 "missing -m MODEL" "serve without a model" -- "$G" serve

# a small model from our generator
expect 0 "make-test-model" -- "$G" make-test-model -o "$T/m.gguf" --layers 6 --vocab 512 --embd 64 --window 8 --seed 3
M=$T/m.gguf

# info
expect 0 "info" -- "$G" info "$M" --ctx 1024
grep -q "^architecture: *gemma4" "$T/out" && ok || bad "info: architecture line"
grep -q "^layer pattern: *SSSSSG " "$T/out" && ok || bad "info: layer pattern: $(grep pattern "$T/out")"
grep -q "^vocab: *512" "$T/out" && ok || bad "info: vocab"
grep -q "memory @ctx 1024" "$T/out" && ok || bad "info: memory estimate"

# logits: sizes of the output
expect 0 "logits last" -- "$G" logits -m "$M" --tokens 2,10,20,30 -o "$T/l1.f32" -t 2
[ "$(stat -c %s "$T/l1.f32")" = $((512 * 4)) ] && ok || bad "logits last: size $(stat -c %s "$T/l1.f32")"
printf '2 10\n20,30\n' >"$T/toks"
expect 0 "logits all" -- "$G" logits -m "$M" --tokens-file "$T/toks" -o "$T/l4.f32" --all --kv f32 --batch 3
[ "$(stat -c %s "$T/l4.f32")" = $((4 * 512 * 4)) ] && ok || bad "logits all: size"
# the last row of --all equals the last-only output (f16 vs f32 KV aside: rerun with f32)
expect 0 "logits last f32" -- "$G" logits -m "$M" --tokens 2,10,20,30 -o "$T/l1b.f32" --kv f32
cmp -s <(tail -c 2048 "$T/l4.f32") "$T/l1b.f32" && ok || bad "last row of --all differs from last-only"

# bad input: usage errors (exit 2) and model errors (exit 1), one line each
expect_err 2 "not a valid token id" "bad token" -- "$G" logits -m "$M" --tokens 2,x,3 -o "$T/o.f32"
expect_err 1 "outside the vocabulary" "token >= vocab" -- "$G" logits -m "$M" --tokens 2,512 -o "$T/o.f32"
[ ! -e "$T/o.f32" ] && ok || bad "a failed run left an output file"
expect_err 2 "exactly one of" "no tokens" -- "$G" logits -m "$M" -o "$T/o.f32"
expect_err 2 "--kv" "bad kv" -- "$G" logits -m "$M" --tokens 2 -o "$T/o.f32" --kv q8
expect_err 2 "--batch" "batch 0" -- "$G" logits -m "$M" --tokens 2 -o "$T/o.f32" --batch 0
expect_err 2 "needs a value" "missing value" -- "$G" logits -m "$M" --tokens
expect_err 1 "cannot open" "missing model" -- "$G" info "$T/none.gguf"
expect_err 1 "cannot create" "unwritable output" -- "$G" logits -m "$M" --tokens 2 -o /nonexistent/dir/o.f32

# hostile files: never a crash (exit 1 with one line)
: >"$T/empty.gguf"
expect_err 1 "" "empty file" -- "$G" info "$T/empty.gguf"
head -c 5000 /dev/urandom >"$T/random.gguf"
expect_err 1 "" "random bytes" -- "$G" info "$T/random.gguf"
sz=$(stat -c %s "$M")
for cut in 3 8 24 100 1000 5000 $((sz / 2)) $((sz - 200)); do
    head -c "$cut" "$M" >"$T/cut.gguf"
    expect_err 1 "" "truncated at $cut" -- "$G" logits -m "$T/cut.gguf" --tokens 2 -o "$T/o.f32"
done
# byte flips in the header region
for i in $(seq 1 40); do
    cp "$M" "$T/flip.gguf"
    off=$(( (i * 7919) % 4000 + 8 ))
    printf '\xff\xff\xff\x7f' | dd of="$T/flip.gguf" bs=1 seek=$off conv=notrunc status=none
    "$G" info "$T/flip.gguf" >/dev/null 2>"$T/err"; rc=$?
    if [ $rc -ge 128 ] || { [ $rc != 0 ] && [ $rc != 1 ]; }; then bad "flip at $off: exit $rc"; else ok; fi
done

echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
