#!/usr/bin/env bash
# fidelity-embd.sh BUILD_DIR - the decoder fed with soft-token rows (as for
# image and audio input) against llama.cpp fed the same rows through
# llama_batch.embd.
#
# Sequence: token ids, then R rows of random floats (used unscaled by both
# engines: llama.cpp multiplies by sqrt(n_embd) only when a batch carries
# ids), then token ids again; logits of every position compared with
# BUILD_DIR/cmp-logits.  llama.cpp decodes embedding batches causally, so this
# checks the causal case (audio; images on global layers); the image block's
# bidirectional mask is checked layer by layer in tests/test_mask.c.
# Limits as in tests/fidelity.sh: F32 weights max|d| <= 1e-3; a Q8_0 model is
# compared exactly through its F32 twin (ours with --f32-activations vs
# llama.cpp on the dequantized twin, <= 1e-3) and loosely as is (the rounding-
# noise band of fidelity.sh: max <= 0.25, mean <= 3e-2).  As there, an F32
# comparison over 1e-3 passes inside the F32 rounding-noise band (max <=
# 2.5e-3, mean <= 2.5e-4): llama.cpp's own batched vs token-by-token runs
# differ by as much.
# SKIP (exit 0) when the llama.cpp oracle cannot be installed.
set -u
BUILD="${1:?usage: tests/fidelity-embd.sh BUILD_DIR}"
BUILD=$(cd "$BUILD" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
G4="$BUILD/gemma4" REF="$BUILD/llama-ref" CMP="$BUILD/cmp-logits"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
get_log=$(mktemp) || exit 1
LIB=$(bash "$SRC/scripts/get-llama-oracle.sh" 2>"$get_log") || LIB=""
if [ -z "$LIB" ]; then
    echo "SKIP: llama.cpp oracle unavailable: $(tail -n 1 "$get_log")"
    rm -f "$get_log"
    exit 0
fi
rm -f "$get_log"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/g4-fid-embd.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
THREADS=$(nproc 2>/dev/null || echo 2)
PASSED=0 FAILED=0

rows() { # n n_embd seed out: uniform [-1, 1) float32 rows, deterministic
    "$PY" - "$@" <<'PY'
import struct, sys
n, d, seed, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
x = seed
vals = []
for _ in range(n * d):
    x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    vals.append(((x >> 40) / float(1 << 24)) * 2.0 - 1.0)
open(out, "wb").write(struct.pack("<%df" % len(vals), *vals))
PY
}

check() { # label ref ours vocab atol [noise]
    local out
    if out=$("$CMP" "$2" "$3" --vocab "$4" --atol "$5" --label "$1" 2>&1); then
        echo "ok   $out"; PASSED=$((PASSED + 1)); return
    fi
    if [ -n "${6:-}" ]; then
        local mx mn nmax=0.25 nmean=0.03
        [ "$6" = noise-f32 ] && nmax=2.5e-3 nmean=2.5e-4
        mx=$(printf '%s\n' "$out" | sed -n 's/.*max|d| \([^ ]*\) .*/\1/p' | head -n 1)
        mn=$(printf '%s\n' "$out" | sed -n 's/.*mean|d| \([^ ]*\) .*/\1/p' | head -n 1)
        if [ -n "$mx" ] && awk -v a="$mx" -v b="$mn" -v x="$nmax" -v y="$nmean" 'BEGIN { exit !(a <= x && b <= y) }'; then
            echo "ok   $out (inside the rounding-noise band)"; PASSED=$((PASSED + 1)); return
        fi
    fi
    echo "FAIL $out"; FAILED=$((FAILED + 1))
}

PRE="2,105,45,46,47,48,49,50" SUF="51,52,53,106,107,108"
# name | make-test-model options | n_embd | vocab | rows
for spec in \
    "g12-f32|--preset 12b --layers 6 --embd 256 --heads 8 --kv-heads 8 --kv-heads-global 1 --head-dim 256 --head-dim-global 512 --ff 512 --vocab 1024 --window 32 --ctx 1024 --type f32 --seed 21|256|1024|60" \
    "small-q8_0|--preset tiny --layers 7 --swa-period 3 --embd 128 --heads 4 --kv-heads 2 --kv-heads-global 1 --head-dim 64 --head-dim-global 128 --ff 384 --vocab 512 --window 16 --type q8_0 --seed 22|128|512|45"; do
    IFS='|' read -r name opts H V R <<<"$spec"
    read -r -a gen <<<"$opts"
    m="$WORK/$name.gguf"
    "$G4" make-test-model -q -o "$m" "${gen[@]}" >"$WORK/log" 2>&1 || { echo "FAIL $name: make-test-model"; cat "$WORK/log"; FAILED=$((FAILED + 1)); continue; }
    rows "$R" "$H" 77 "$WORK/$name.rows"
    "$REF" --lib "$LIB" -m "$m" --embd "$WORK/$name.rows" --embd-prefix "$PRE" --embd-suffix "$SUF" --all --kv f32 --fa off \
        --threads "$THREADS" -o "$WORK/$name.ref.f32" >"$WORK/log" 2>&1 || { echo "FAIL $name: llama-ref"; cat "$WORK/log"; FAILED=$((FAILED + 1)); continue; }
    "$G4" logits -m "$m" --embd "$WORK/$name.rows" --embd-prefix "$PRE" --embd-suffix "$SUF" --all --kv f32 -t "$THREADS" \
        -o "$WORK/$name.ours.f32" >"$WORK/log" 2>&1 || { echo "FAIL $name: gemma4 logits --embd"; cat "$WORK/log"; FAILED=$((FAILED + 1)); continue; }
    if [[ "$opts" == *"--type f32"* ]]; then
        check "$name: tokens + $R soft-token rows + tokens, ours vs llama.cpp" "$WORK/$name.ref.f32" "$WORK/$name.ours.f32" "$V" 1e-3 noise-f32
    else
        check "$name: as is, ours vs llama.cpp" "$WORK/$name.ref.f32" "$WORK/$name.ours.f32" "$V" 5e-2 noise
        "$G4" quantize "$m" "$WORK/$name.twin.gguf" f32 >"$WORK/log" 2>&1 || { echo "FAIL $name: quantize"; FAILED=$((FAILED + 1)); continue; }
        "$REF" --lib "$LIB" -m "$WORK/$name.twin.gguf" --embd "$WORK/$name.rows" --embd-prefix "$PRE" --embd-suffix "$SUF" --all \
            --kv f32 --fa off --threads "$THREADS" -o "$WORK/$name.reftwin.f32" >"$WORK/log" 2>&1 || { echo "FAIL $name: llama-ref twin"; FAILED=$((FAILED + 1)); continue; }
        "$G4" logits -m "$m" --embd "$WORK/$name.rows" --embd-prefix "$PRE" --embd-suffix "$SUF" --all --kv f32 -t "$THREADS" \
            --f32-activations -o "$WORK/$name.exact.f32" >"$WORK/log" 2>&1 || { echo "FAIL $name: gemma4 logits --f32-activations"; FAILED=$((FAILED + 1)); continue; }
        check "$name: exact (F32 twin vs --f32-activations)" "$WORK/$name.reftwin.f32" "$WORK/$name.exact.f32" "$V" 1e-3 noise-f32
    fi
done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
