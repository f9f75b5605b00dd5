#!/usr/bin/env bash
# fidelity.sh BUILD_DIR - gemma4.c's logits against llama.cpp's, on random-weight
# Gemma 4 models of several shapes and weight types.
#
# Run by ctest (`make test`).  For every model below it:
#   1. writes the model with `BUILD_DIR/gemma4 make-test-model` (deterministic),
#   2. makes a deterministic random sequence of >= 300 token ids (< vocab; the
#      first is 2 = <bos>), longer than the model's sliding window,
#   3. runs llama.cpp through BUILD_DIR/llama-ref (f32 KV cache, flash
#      attention off, logits of every position) batched, and token by token
#      (the latter only to show llama.cpp's own batch-vs-step noise),
#   4. runs `gemma4 logits --all --kv f32` batched (--batch N) and token by
#      token (--batch 1),
#   5. compares with BUILD_DIR/cmp-logits:
#        ours batched vs llama.cpp, ours token-by-token vs llama.cpp:
#            max|d| <= 1e-3 for F32 weights, <= 5e-2 for F16/BF16/Q8_0/Q4_0/
#            Q4_K_M/Q6_K weights (llama.cpp rounds the activations to the
#            weight's dot-product type there);
#        ours batched vs ours token-by-token: max|d| <= 1e-4.
# and prints a table of the figures and "N passed, N failed"; exit status 1 on
# any failure.
#
# The llama.cpp library comes from scripts/get-llama-oracle.sh (an npm package,
# installed once into a cache folder).  When it cannot be had (no npm, no
# network, other platform) the test prints "SKIP: llama.cpp oracle
# unavailable: <reason>" and exits 0; it never passes silently.
#
# Environment: G4_FIDELITY_TOL_F32, G4_FIDELITY_TOL_QUANT, G4_FIDELITY_TOL_SELF
# override the three limits; G4_FIDELITY_THREADS the thread count (default:
# all CPUs); G4_FIDELITY_KEEP=1 keeps the work folder (models, logits, logs).
set -u

BUILD="${1:-}"
if [ -z "$BUILD" ] || [ ! -d "$BUILD" ]; then
    echo "usage: tests/fidelity.sh BUILD_DIR" >&2
    exit 2
fi
BUILD=$(cd "$BUILD" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
G4="$BUILD/gemma4"
REF="$BUILD/llama-ref"
CMP="$BUILD/cmp-logits"
for exe in "$G4" "$REF" "$CMP"; do
    [ -x "$exe" ] || { echo "fidelity: $exe is missing (build first)" >&2; exit 1; }
done

TOL_F32="${G4_FIDELITY_TOL_F32:-1e-3}"
TOL_QUANT="${G4_FIDELITY_TOL_QUANT:-5e-2}"
TOL_SELF="${G4_FIDELITY_TOL_SELF:-1e-4}"
THREADS="${G4_FIDELITY_THREADS:-$(nproc 2>/dev/null || echo 2)}"

# --- the oracle -------------------------------------------------------------
get_log=$(mktemp "${TMPDIR:-/tmp}/g4-oracle.XXXXXX") || exit 1
LIB=$(bash "$SRC/scripts/get-llama-oracle.sh" 2>"$get_log")
rc=$?
if [ $rc -ne 0 ] || [ -z "$LIB" ]; then
    reason=$(grep -v '^get-llama-oracle: installing' "$get_log" | tail -n 1 | sed 's/^get-llama-oracle: //')
    rm -f "$get_log"
    echo "SKIP: llama.cpp oracle unavailable: ${reason:-get-llama-oracle.sh failed (status $rc)}"
    exit 0
fi
rm -f "$get_log"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/g4-fidelity.XXXXXX") || exit 1
if [ "${G4_FIDELITY_KEEP:-0}" = 1 ]; then
    echo "fidelity: work folder kept: $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi

echo "fidelity: llama.cpp from $LIB"
echo "fidelity: threads $THREADS; limits: F32 $TOL_F32, other weight types $TOL_QUANT, ours batched vs token-by-token $TOL_SELF"

# --- the models -------------------------------------------------------------
# name | make-test-model options | tokens | our --batch | llama-ref --batch
MODELS=(
    # 12B-like: 5 sliding + 1 global layers, head dims 256/512, KV heads 8/1, V = K on the global layer
    "g12-f32|--preset 12b --layers 6 --embd 256 --heads 8 --kv-heads 8 --kv-heads-global 1 --head-dim 256 --head-dim-global 512 --ff 512 --vocab 1024 --window 32 --ctx 1024 --type f32 --seed 11|320|128|512"
    "small-f32|--preset tiny --layers 7 --swa-period 3 --embd 128 --heads 4 --kv-heads 2 --kv-heads-global 1 --head-dim 64 --head-dim-global 128 --ff 384 --vocab 512 --window 16 --type f32 --seed 12|300|512|512"
    "g31-q8_0|--preset 31b --layers 6 --embd 512 --heads 4 --kv-heads 4 --kv-heads-global 2 --head-dim 128 --head-dim-global 256 --ff 1024 --vocab 2048 --window 64 --ctx 1024 --type q8_0 --seed 13|310|100|512"
    "tiny-q4_0|--preset tiny --type q4_0 --seed 14|300|64|128"
    "g12-q4_k_m|--preset 12b --layers 6 --embd 256 --heads 2 --kv-heads 2 --kv-heads-global 1 --head-dim 256 --head-dim-global 512 --ff 768 --vocab 768 --window 40 --ctx 1024 --type q4_k_m --seed 15|305|512|64"
    "wide-q6_k|--preset tiny --layers 8 --swa-period 4 --embd 384 --heads 3 --kv-heads 1 --kv-heads-global 1 --head-dim 128 --head-dim-global 256 --ff 768 --vocab 1536 --window 24 --type q6_k --seed 16|300|200|512"
    "attnv-f16|--preset tiny --embd 256 --heads 4 --kv-heads 2 --kv-heads-global 2 --head-dim 64 --head-dim-global 128 --ff 512 --vocab 1024 --window 20 --no-k-eq-v --type f16 --seed 17|300|512|512"
    "nocap-bf16|--preset tiny --embd 192 --heads 3 --kv-heads 3 --kv-heads-global 1 --head-dim 64 --head-dim-global 128 --ff 384 --vocab 640 --window 32 --softcap 0 --type bf16 --seed 18|300|96|512"
)

# n ids < vocab, the first 2 (<bos>), then a Park-Miller sequence (exact in
# 64-bit shell arithmetic, so the same everywhere)
make_tokens() {
    local n=$1 vocab=$2 x=$3 i out="2"
    for ((i = 1; i < n; i++)); do
        x=$(((x * 16807) % 2147483647))
        out+=",$((x % vocab))"
    done
    printf '%s\n' "$out"
}

# the figure and verdict of one cmp-logits run; sets CMP_MAX and CMP_OK
compare() { # label ref mine vocab atol
    local out rc
    out=$("$CMP" "$2" "$3" --vocab "$4" --atol "$5" --label "$1" 2>&1)
    rc=$?
    printf '  %s\n' "$out" >>"$WORK/details.txt"
    CMP_MAX=$(printf '%s\n' "$out" | sed -n 's/.*max|d| \([^ ]*\) .*/\1/p' | head -n 1)
    [ -n "$CMP_MAX" ] || CMP_MAX="error"
    [ $rc -eq 0 ] && CMP_OK=1 || CMP_OK=0
}

# a model whose run broke: its three checks fail (uses $name and $log)
fail_row() { # why
    echo "fidelity: $name: $1; its log:" >&2
    sed 's/^/    /' "$log" >&2
    FAILED=$((FAILED + 3))
    ROWS+=("$(printf '%-11s %s' "$name" "FAIL: $1")")
}

PASSED=0
FAILED=0
ROWS=()
t_start=$(date +%s)

for spec in "${MODELS[@]}"; do
    IFS='|' read -r name gen_opts n_tok our_batch ref_batch <<<"$spec"
    read -r -a gen <<<"$gen_opts"
    vocab=$(printf '%s\n' "$gen_opts" | sed -n 's/.*--vocab \([0-9]*\).*/\1/p')
    [ -n "$vocab" ] || vocab=1024 # the tiny preset's
    case "$gen_opts" in
        *"--type f32"*) tol="$TOL_F32" ;;
        *) tol="$TOL_QUANT" ;;
    esac
    model="$WORK/$name.gguf"
    toks="$WORK/$name.tokens"
    log="$WORK/$name.log"
    echo "$name:" >>"$WORK/details.txt"

    if ! "$G4" make-test-model -q -o "$model" "${gen[@]}" >"$log" 2>&1; then
        fail_row "make-test-model failed"
        continue
    fi
    make_tokens "$n_tok" "$vocab" "$((1000 + ${#name} * 7919 + n_tok))" >"$toks"

    if ! "$REF" --lib "$LIB" -m "$model" --tokens-file "$toks" --all --kv f32 --fa off \
        --batch "$ref_batch" --threads "$THREADS" -o "$WORK/$name.ref.f32" >>"$log" 2>&1; then
        fail_row "llama-ref failed"
        continue
    fi
    "$REF" --lib "$LIB" -m "$model" --tokens-file "$toks" --all --kv f32 --fa off --step \
        --threads "$THREADS" -o "$WORK/$name.refstep.f32" >>"$log" 2>&1
    ref_step_rc=$?
    if ! "$G4" logits -m "$model" --tokens-file "$toks" -o "$WORK/$name.ours.f32" --all --kv f32 \
        --batch "$our_batch" -t "$THREADS" >>"$log" 2>&1; then
        fail_row "gemma4 logits (--batch $our_batch) failed"
        continue
    fi
    if ! "$G4" logits -m "$model" --tokens-file "$toks" -o "$WORK/$name.ourstep.f32" --all --kv f32 \
        --batch 1 -t "$THREADS" >>"$log" 2>&1; then
        fail_row "gemma4 logits (--batch 1) failed"
        continue
    fi

    verdict="ok"
    compare "ours(batch $our_batch) vs llama" "$WORK/$name.ref.f32" "$WORK/$name.ours.f32" "$vocab" "$tol"
    d_batch=$CMP_MAX
    if [ $CMP_OK = 1 ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); verdict="FAIL"; fi
    compare "ours(token by token) vs llama" "$WORK/$name.ref.f32" "$WORK/$name.ourstep.f32" "$vocab" "$tol"
    d_step=$CMP_MAX
    if [ $CMP_OK = 1 ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); verdict="FAIL"; fi
    compare "ours batch vs ours token by token" "$WORK/$name.ours.f32" "$WORK/$name.ourstep.f32" "$vocab" "$TOL_SELF"
    d_self=$CMP_MAX
    if [ $CMP_OK = 1 ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); verdict="FAIL"; fi
    d_llama="n/a"
    if [ $ref_step_rc -eq 0 ]; then # informational: llama.cpp's own noise
        compare "llama batch vs llama token by token (info)" "$WORK/$name.ref.f32" "$WORK/$name.refstep.f32" "$vocab" 1e30
        d_llama=$CMP_MAX
    fi
    type=${gen_opts##*--type }
    type=${type%% *}
    ROWS+=("$(printf '%-11s %-6s %5s %9s %10s %10s %9s %10s %10s  %s' "$name" "$type" "$vocab" "$n_tok" \
        "$d_batch" "$d_step" "$tol" "$d_self" "$d_llama" "$verdict")")
done

t_end=$(date +%s)
echo
cat "$WORK/details.txt"
echo
echo "max|d| of the logits over all positions ($((t_end - t_start)) s):"
printf '%-11s %-6s %5s %9s %10s %10s %9s %10s %10s  %s\n' "model" "type" "vocab" "tokens" \
    "batch/llm" "step/llm" "limit" "batch/step" "llm b/s" "result"
for row in "${ROWS[@]}"; do
    printf '%s\n' "$row"
done
echo "(batch/llm, step/llm: ours batched and token-by-token vs llama.cpp; batch/step: ours"
echo " batched vs ours token-by-token, limit $TOL_SELF; llm b/s: llama.cpp batched vs its own"
echo " token-by-token, for scale only)"
echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
