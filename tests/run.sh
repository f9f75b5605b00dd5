#!/bin/bash
# run.sh BUILD_DIR - `gemma4 run` on a generated random-weight model (its
# text is meaningless but deterministic): reproducibility, greedy decoding
# against an argmax chain computed independently with `gemma4 logits`, the
# stats line, stdin, --raw, the loop guards and one-line errors.
# Ends with "N passed, N failed".
set -u
B=${1:?usage: run.sh BUILD_DIR}
G=$B/gemma4
T=$(mktemp -d /tmp/g4-run.XXXXXX)
trap 'rm -rf "$T"' EXIT
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# argmax FILE.f32: index of the largest float
argmax() { od -An -v -t f4 -w4 "$1" | awk 'NR == 1 || $1 + 0 > m { m = $1 + 0; i = NR - 1 } END { print i }'; }

"$G" make-test-model -q -o "$T/m.gguf" --layers 4 --vocab 512 --embd 64 --window 16 --seed 7 >/dev/null || { echo "cannot make the test model"; exit 1; }
M=$T/m.gguf
R=("$G" run -m "$M" -t 2)

# --- reproducibility ---------------------------------------------------------
"${R[@]}" -p "Hello there" -n 40 --seed 11 --repeat-guard off --dump-ids "$T/a.ids" >"$T/a.out" 2>"$T/a.err" && ok || bad "run: exit $?: $(cat "$T/a.err")"
"${R[@]}" -p "Hello there" -n 40 --seed 11 --repeat-guard off --dump-ids "$T/b.ids" >"$T/b.out" 2>"$T/b.err" && ok || bad "run 2"
cmp -s "$T/a.out" "$T/b.out" && cmp -s "$T/a.ids" "$T/b.ids" && ok || bad "same seed, different output"
[ "$(wc -w <"$T/a.ids")" = 40 ] && ok || bad "-n 40 generated $(wc -w <"$T/a.ids") tokens"
"${R[@]}" -p "Hello there" -n 40 --seed 12 --repeat-guard off --dump-ids "$T/c.ids" >"$T/c.out" 2>/dev/null
cmp -s "$T/a.ids" "$T/c.ids" && bad "seeds 11 and 12 gave the same tokens" || ok

# --- the stats line: the last stderr line -------------------------------------
last=$(tail -n 1 "$T/a.err")
[[ "$last" =~ ^gemma4\ run:\ prompt\ [0-9]+\ tokens,\ [0-9]+\.[0-9]+\ tok/s\;\ generated\ 40\ tokens,\ [0-9]+\.[0-9]+\ tok/s\;\ load\ [0-9]+\.[0-9]+\ s\;\ stop:\ token\ limit$ ]] \
    && ok || bad "stats line: '$last'"
grep -q "stopped at the token limit (-n 40)" "$T/a.err" && ok || bad "token limit not reported: $(cat "$T/a.err")"

# --- prompt ids: render + tokenize; exactly one BOS -----------------------------
printf '[{"role":"user","content":"Hello there"}]' >"$T/msg.json"
"$G" render --messages "$T/msg.json" >"$T/prompt.txt" || bad "render"
P=$("$G" tokenize -m "$M" "$(cat "$T/prompt.txt")") || bad "tokenize"
BOS=$("$G" tokenize -m "$M" --add-bos "" | tr -d ' \n')
n_prompt=$(echo "$P" | wc -w)
[ "$(echo "$P" | tr ' ' '\n' | grep -cx "$BOS")" = 1 ] && [ "$(echo "$P" | cut -d' ' -f1)" = "$BOS" ] && ok || bad "prompt ids do not start with exactly one BOS: $P"
grep -q "^gemma4 run: prompt $n_prompt tokens" "$T/a.err" && ok || bad "run's prompt count differs from render+tokenize ($n_prompt): $(tail -n 1 "$T/a.err")"

# --- greedy = the argmax chain of `gemma4 logits` -------------------------------
"${R[@]}" -p "Hello there" -n 4 --temp 0 --dump-ids "$T/g.ids" >/dev/null 2>"$T/g.err" && ok || bad "greedy run: $(cat "$T/g.err")"
read -r -a gen <"$T/g.ids"
[ "${#gen[@]}" -ge 1 ] && ok || bad "greedy run generated nothing"
ctx=$(echo "$P" | tr ' ' ',')
for k in "${!gen[@]}"; do
    "$G" logits -m "$M" --tokens "$ctx" -o "$T/l.f32" -t 2 >/dev/null 2>&1 || { bad "logits step $k"; break; }
    want=$(argmax "$T/l.f32")
    [ "$want" = "${gen[$k]}" ] && ok || bad "greedy token $k: run ${gen[$k]}, argmax of logits $want"
    ctx="$ctx,${gen[$k]}"
done
# random tiny models fall into a fixed point under greedy decoding (the same
# token again and again); a large presence penalty over the whole history
# gives a varied chain: the argmax over the tokens not seen yet (prompt
# included: the prompt is accepted into the history)
"${R[@]}" -p "Hello there" -n 5 --temp 0 --presence-penalty 1000 --repeat-last-n 1048576 --dump-ids "$T/gp.ids" >/dev/null 2>&1
read -r -a gen <"$T/gp.ids"
[ "${#gen[@]}" = 5 ] && [ "$(printf '%s\n' "${gen[@]}" | sort -u | wc -l)" = 5 ] && ok || bad "penalized greedy chain: ${gen[*]}"
ctx=$(echo "$P" | tr ' ' ',')
for k in "${!gen[@]}"; do
    "$G" logits -m "$M" --tokens "$ctx" -o "$T/l.f32" -t 2 >/dev/null 2>&1 || { bad "logits step $k"; break; }
    want=$(od -An -v -t f4 -w4 "$T/l.f32" | awk -v seen="$ctx" 'BEGIN { n = split(seen, s, ","); for (i = 1; i <= n; i++) x[s[i]] = 1 }
        { id = NR - 1; if (id in x) next; if (!f || $1 + 0 > m) { m = $1 + 0; i = id; f = 1 } } END { print i }')
    [ "$want" = "${gen[$k]}" ] && ok || bad "penalized greedy token $k: run ${gen[$k]}, argmax over unseen tokens $want"
    ctx="$ctx,${gen[$k]}"
done
# greedy ignores the seed
"${R[@]}" -p "Hello there" -n 4 --temp 0 --seed 99 --dump-ids "$T/g2.ids" >/dev/null 2>&1
cmp -s "$T/g.ids" "$T/g2.ids" && ok || bad "greedy depends on the seed"

# --- -p - and -f --------------------------------------------------------------
printf 'Hello there' | "${R[@]}" -p - -n 20 --seed 5 --dump-ids "$T/s.ids" >"$T/s.out" 2>/dev/null && ok || bad "-p -"
"${R[@]}" -p "Hello there" -n 20 --seed 5 --dump-ids "$T/p.ids" >"$T/p.out" 2>/dev/null
cmp -s "$T/s.ids" "$T/p.ids" && cmp -s "$T/s.out" "$T/p.out" && ok || bad "-p - differs from -p TEXT"
printf 'Hello there' >"$T/prompt.in"
"${R[@]}" -f "$T/prompt.in" -n 20 --seed 5 --dump-ids "$T/f.ids" >/dev/null 2>&1
cmp -s "$T/f.ids" "$T/p.ids" && ok || bad "-f differs from -p TEXT"

# --- --raw: tokenized as is with BOS, continued ---------------------------------
RP=$("$G" tokenize -m "$M" --add-bos "Once upon a time")
"${R[@]}" --raw -p "Once upon a time" -n 3 --temp 0 --dump-ids "$T/r.ids" >"$T/r.out" 2>"$T/r.err" && ok || bad "--raw: $(cat "$T/r.err")"
grep -q "^gemma4 run: prompt $(echo "$RP" | wc -w) tokens" "$T/r.err" && ok || bad "--raw prompt count: $(tail -n 1 "$T/r.err") vs $RP"
"$G" logits -m "$M" --tokens "$(echo "$RP" | tr ' ' ',')" -o "$T/l.f32" >/dev/null 2>&1
[ "$(argmax "$T/l.f32")" = "$(cut -d' ' -f1 "$T/r.ids")" ] && ok || bad "--raw greedy first token"
# a raw text that already starts with <bos> gets no second one
"${R[@]}" --raw -p "<bos>Once upon a time" -n 1 >/dev/null 2>"$T/r2.err"
grep -q "^gemma4 run: prompt $(echo "$RP" | wc -w) tokens" "$T/r2.err" && ok || bad "--raw with <bos>: $(tail -n 1 "$T/r2.err")"

# --- loop guards ---------------------------------------------------------------
# greedy decoding of a random model falls into a loop: the guard stops it
"${R[@]}" -p "Hello there" -n 500 --temp 0 >/dev/null 2>"$T/rg.err" && ok || bad "guard run exit"
grep -q "stopped by the repetition guard" "$T/rg.err" && grep -q "stop: repetition guard$" "$T/rg.err" && ok \
    || bad "repetition guard did not fire: $(cat "$T/rg.err")"
"${R[@]}" -p "Hello there" -n 100 --temp 0 --repeat-guard off >/dev/null 2>"$T/rg2.err"
! grep -q "repetition guard" "$T/rg2.err" && grep -q "stop: token limit$" "$T/rg2.err" && ok || bad "--repeat-guard off: $(cat "$T/rg2.err")"
# thinking budget: a raw prompt that ends inside a thought
CLOSE=$("$G" tokenize -m "$M" "<channel|>" | tr -d ' \n')
"${R[@]}" --raw -p $'<|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n' -n 12 --max-thinking 5 --repeat-guard off \
    --seed 3 --dump-ids "$T/t.ids" >/dev/null 2>"$T/t.err"
grep -q "thinking budget reached (--max-thinking 5)" "$T/t.err" && ok || bad "thinking budget not reported: $(cat "$T/t.err")"
read -r -a th <"$T/t.ids"
# the budget closes the thought right after the 5th thought token (unless the model closed it first)
if ! printf '%s\n' "${th[@]:0:5}" | grep -qx "$CLOSE"; then
    [ "${th[5]:-}" = "$CLOSE" ] && ok || bad "forced <channel|> ($CLOSE) not at position 5: ${th[*]}"
else ok; fi
# chat mode with --think runs (the model may or may not think)
"${R[@]}" -p "Hello there" --think -n 20 --seed 4 >/dev/null 2>"$T/k.err" && ok || bad "--think: $(cat "$T/k.err")"
# -n 0 and the context end
"${R[@]}" -p "Hello there" -n 0 >"$T/z.out" 2>"$T/z.err" && [ ! -s "$T/z.out" ] && grep -q "generated 0 tokens" "$T/z.err" && ok || bad "-n 0: $(cat "$T/z.err")"
# ctx = prompt + 5: five tokens are decoded, a sixth comes from the last logits
"${R[@]}" -p "Hello there" -n -1 --ctx $((n_prompt + 5)) --repeat-guard off --seed 2 --dump-ids "$T/x.ids" >/dev/null 2>"$T/x.err"
grep -q "the context is full ($((n_prompt + 5)) positions" "$T/x.err" && [ "$(wc -w <"$T/x.ids")" = 6 ] && ok || bad "context end: $(cat "$T/x.err")"

# --- bad input: one line, exit 1 (data) / 2 (usage) ------------------------------
printf '\xff' >"$T/bad.txt"
expect_err 1 "invalid UTF-8 at byte offset 0" "invalid UTF-8 on stdin" -- bash -c "printf '\\xff' | \"\$@\"" _ "${R[@]}" -p -
printf 'abc\xc3(' >"$T/bad2.txt"
expect_err 1 "invalid UTF-8 at byte offset 3" "invalid UTF-8 in a file" -- "${R[@]}" -f "$T/bad2.txt"
expect_err 1 "byte offset 2" "invalid UTF-8 in --system" -- "${R[@]}" -p hi --system $'ab\xed\xa0\x80'
expect_err 2 "the prompt is [0-9]* tokens but the context holds 8" "prompt longer than --ctx" -- "${R[@]}" -p "Hello there, a long prompt" --ctx 8
expect_err 2 "unknown option '--bogus'" "unknown option" -- "${R[@]}" -p hi --bogus
expect_err 2 "--temp" "NaN temperature" -- "${R[@]}" -p hi --temp nan
expect_err 2 "--temp" "negative temperature" -- "${R[@]}" -p hi --temp -1
expect_err 2 "--top-p" "top-p 2" -- "${R[@]}" -p hi --top-p 2
expect_err 2 "--top-p" "negative top-p" -- "${R[@]}" -p hi --top-p -0.5
expect_err 2 "--min-p" "min-p x" -- "${R[@]}" -p hi --min-p x
expect_err 2 "--top-k" "top-k -3" -- "${R[@]}" -p hi --top-k -3
expect_err 2 "--repeat-penalty" "repeat-penalty 0" -- "${R[@]}" -p hi --repeat-penalty 0
expect_err 2 "-n" "-n abc" -- "${R[@]}" -p hi -n abc
expect_err 2 "--seed" "negative seed" -- "${R[@]}" -p hi --seed -3
expect_err 2 "--repeat-guard" "repeat-guard 1" -- "${R[@]}" -p hi --repeat-guard 1
expect_err 2 "needs a value" "missing value" -- "${R[@]}" -p
expect_err 2 "exactly one of" "no prompt" -- "${R[@]}"
expect_err 2 "missing -m" "no model" -- "$G" run -p hi
expect_err 2 "--raw" "--raw with --think" -- "${R[@]}" -p hi --raw --think
expect_err 1 "cannot open" "missing model file" -- "$G" run -m "$T/none.gguf" -p hi
expect_err 1 "cannot open" "missing prompt file" -- "${R[@]}" -f "$T/none.txt"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
