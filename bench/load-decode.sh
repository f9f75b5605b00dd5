#!/bin/bash
# load-decode.sh MODEL.gguf [N_TOKENS] [THREADS] - load time, peak RSS and
# token-by-token decode speed of gemma4.c next to llama.cpp on the same file.
#
# Both engines decode the same N ids one token per forward pass from an empty
# cache (llama.cpp: f16 KV, flash attention auto, its defaults; ours: f16 KV).
# Run the engines alternately, twice, on an otherwise idle machine.  Needs a
# built tree (make) and the llama.cpp oracle (scripts/get-llama-oracle.sh).
set -euo pipefail
M=${1:?usage: bench/load-decode.sh MODEL.gguf [N_TOKENS] [THREADS]}
N=${2:-8}
T=${3:-$(nproc)}
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$SRC/build}
LIB=$(bash "$SRC/scripts/get-llama-oracle.sh")
ids=2
for ((i = 1; i < N; i++)); do ids+=",$((1000 + i * 37))"; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
row() { printf '%-10s %8s %10s %12s %12s\n' "$@"; }
row engine load_s decode_s "tok/s" "peak_RSS_MiB"
for rep in 1 2; do
    /usr/bin/time -f '%M' -o "$tmp/rss" "$B/gemma4" logits -m "$M" --tokens "$ids" --batch 1 -t "$T" -o "$tmp/o.f32" >"$tmp/out"
    load=$(sed -n 's/^load_s //p' "$tmp/out"); dec=$(sed -n 's/^decode_s //p' "$tmp/out")
    row gemma4.c "$load" "$dec" "$(awk -v n="$N" -v d="$dec" 'BEGIN{printf "%.3f", n/d}')" "$(( $(cat "$tmp/rss") / 1024 ))"
    s=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$tmp/rss" "$B/llama-ref" --lib "$LIB" -m "$M" --tokens "$ids" --step --threads "$T" -o "$tmp/r.f32" >"$tmp/out"
    e=$(date +%s.%N)
    dec=$(sed -n 's/^decode_s: //p' "$tmp/out")
    row llama.cpp "$(awk -v s="$s" -v e="$e" -v d="$dec" 'BEGIN{printf "%.3f", e-s-d}')" "$dec" \
        "$(awk -v n="$N" -v d="$dec" 'BEGIN{printf "%.3f", n/d}')" "$(( $(cat "$tmp/rss") / 1024 ))"
done
echo "(llama.cpp load_s = wall time minus decode time: loading, context creation and exit)"
