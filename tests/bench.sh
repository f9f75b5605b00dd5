#!/bin/bash
# bench.sh BUILD_DIR - `gemma4 bench` on a tiny generated model: it runs, the
# table has pp and tg lines with positive speeds, --json is one valid JSON
# object with the documented fields, and bad options are one-line errors with
# exit status 2 (model errors: 1).  No timing assertions.  Also: membw runs.
# Ends with "N passed, N failed".
set -u
B=${1:?usage: bench.sh BUILD_DIR}
G=$B/gemma4
T=$(mktemp -d /tmp/g4-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"


"$G" make-test-model -q -o "$T/m.gguf" --layers 3 --vocab 512 --embd 64 --window 8 --seed 5 >/dev/null || { echo "cannot make the test model"; exit 1; }
M=$T/m.gguf

# --- the table -----------------------------------------------------------------
"$G" bench -m "$M" -p 16 -n 8 -r 1 -t 2 --batch 5 >"$T/t.out" 2>"$T/t.err" && ok || bad "bench: exit $?: $(cat "$T/t.err")"
grep -Eq '^pp16 +[0-9]+\.[0-9]+ ' "$T/t.out" && awk '$1 == "pp16" { exit !($2 > 0) }' "$T/t.out" && ok || bad "no positive pp16 line: $(cat "$T/t.out")"
grep -Eq '^tg8 +[0-9]+\.[0-9]+ ' "$T/t.out" && awk '$1 == "tg8" { exit !($2 > 0) }' "$T/t.out" && ok || bad "no positive tg8 line: $(cat "$T/t.out")"
grep -q '^load: ' "$T/t.out" && grep -q '^peak RSS: ' "$T/t.out" && grep -q 'threads 2, batch 5, kv f16' "$T/t.out" && ok || bad "load/RSS/setup lines: $(cat "$T/t.out")"
[ ! -s "$T/t.err" ] && ok || bad "bench wrote to stderr: $(cat "$T/t.err")"

# --- --json ------------------------------------------------------------------------
"$G" bench -m "$M" -p 16 -n 8 -r 2 -t 1 --kv f32 --json >"$T/j.out" 2>"$T/j.err" && ok || bad "bench --json: exit $?: $(cat "$T/j.err")"
python3 -c 'import json,sys; json.load(sys.stdin)' <"$T/j.out" && ok || bad "--json is not JSON: $(cat "$T/j.out")"
python3 - "$T/j.out" <<'EOF' && ok || bad "--json fields: $(cat "$T/j.out")"
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("model", "path", "file_bytes", "n_params", "weight_bytes", "n_layer", "threads", "batch", "kv", "reps", "load_s", "pp", "tg", "peak_rss_bytes"):
    assert k in d, k
assert d["kv"] == "f32" and d["threads"] == 1 and d["reps"] == 2 and d["n_layer"] == 3
for t, n in (("pp", 16), ("tg", 8)):
    assert d[t]["n_tokens"] == n and d[t]["tps_mean"] > 0 and len(d[t]["tps"]) == 2 and d[t]["tps_sd"] >= 0
assert d["peak_rss_bytes"] > 0 and d["file_bytes"] > 0 and d["weight_bytes"] > 0
EOF
# -n 0 skips tg: no tg line, "tg": null
"$G" bench -m "$M" -p 8 -n 0 -r 1 --json >"$T/p.out" 2>/dev/null && python3 -c 'import json,sys; d = json.load(sys.stdin); assert d["tg"] is None and d["pp"]["n_tokens"] == 8' <"$T/p.out" && ok || bad "-n 0: $(cat "$T/p.out")"
"$G" bench "$M" -p 0 -n 4 -r 1 >"$T/g.out" 2>/dev/null && ! grep -q '^pp' "$T/g.out" && grep -q '^tg4 ' "$T/g.out" && ok || bad "-p 0 / positional model: $(cat "$T/g.out")"

# --- errors --------------------------------------------------------------------------
expect_err 2 "no model" "no model" -- "$G" bench -p 4
expect_err 2 "\-p: 'x' is not an integer" "-p x" -- "$G" bench -m "$M" -p x
expect_err 2 "\-n: -1 is out of range" "-n -1" -- "$G" bench -m "$M" -n -1
expect_err 2 "\-r: 0 is out of range" "-r 0" -- "$G" bench -m "$M" -r 0
expect_err 2 "\-t: '2x' is not an integer" "-t 2x" -- "$G" bench -m "$M" -t 2x
expect_err 2 "\-\-batch: 0 is out of range" "--batch 0" -- "$G" bench -m "$M" --batch 0
expect_err 2 "\-\-kv: expected f16 or f32, got 'q8'" "--kv q8" -- "$G" bench -m "$M" --kv q8
expect_err 2 "needs a value" "-p without value" -- "$G" bench -m "$M" -p
expect_err 2 "unknown option '--bogus'" "unknown option" -- "$G" bench -m "$M" --bogus
expect_err 2 "nothing to measure" "-p 0 -n 0" -- "$G" bench -m "$M" -p 0 -n 0
expect_err 1 "cannot open" "missing model" -- "$G" bench -m "$T/nope.gguf"
printf 'not a gguf file at all' >"$T/bad.gguf"
expect_err 1 "gemma4 bench: " "not a GGUF" -- "$G" bench -m "$T/bad.gguf"
"$G" bench --help | grep -q '^usage: gemma4 bench' && ok || bad "--help"

# --- membw ----------------------------------------------------------------------------
if [ -x "$B/membw" ]; then
    "$B/membw" -s 8 -t 2 -k 2 --json | python3 -c 'import json,sys; d = json.load(sys.stdin); assert d["best_gbps"] > 0' && ok || bad "membw --json"
    expect_err 2 "membw: -s" "membw -s 0" -- "$B/membw" -s 0
else
    bad "$B/membw missing"
fi

# --- gemm-bench: one matrix kernel on one thread ---------------------------------
GB=$B/gemm-bench
if [ -x "$GB" ]; then
    # a CPU level without a matrix kernel for q4_0 (avx2, scalar) says so
    if "$GB" q4_0 64 256 8 -r 2 >"$T/gb.out" 2>"$T/gb.err"; then
        grep -Eq 'best [0-9.]+ GMAC/s' "$T/gb.out" && awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "GMAC/s,") exit !($i > 0) }' "$T/gb.out" \
            && ok || bad "gemm-bench output: $(cat "$T/gb.out")"
    else
        grep -q 'no matrix kernel' "$T/gb.err" && ok || bad "gemm-bench q4_0: $(cat "$T/gb.err")"
    fi
    expect_err 2 "unknown type 'q9_9'" "gemm-bench bad type" -- "$GB" q9_9 64 256 8
    expect_err 2 "block size 32" "gemm-bench ragged COLS" -- "$GB" q4_0 64 250 8
    expect_err 2 "ROWS must be" "gemm-bench ROWS 0" -- "$GB" q4_0 0 256 8
    expect_err 2 "unknown level" "gemm-bench bad level" -- "$GB" q4_0 64 256 8 --level avx9
    expect_err 2 "usage" "gemm-bench missing args" -- "$GB" q4_0 64
else
    bad "$GB missing"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
