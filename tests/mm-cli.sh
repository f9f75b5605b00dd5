#!/usr/bin/env bash
# mm-cli.sh BUILD_DIR - images and audio through `gemma4 run` and `gemma4
# transcribe` on a random-weight model and its synthetic projector.
#
#  1. End to end against the verification interfaces: the first token `run`
#     picks greedily for a prompt with an image (or audio) must be the argmax
#     of the logits `gemma4 logits --embd` gives for the same sequence built
#     by hand: the template's ids (`render` + `tokenize`) with the
#     placeholder replaced by <|image>, the rows of `gemma4 mmembed`
#     (--embd-kind image), <image|>.  This ties run's placement, markers,
#     block mask and budget to the pieces tested on their own.
#  2. Token counts and marker placement reported by run; transcribe's pieces
#     and time ranges on a 65 s file.
#  3. Every bad input: one clear error line and the documented exit code.
set -u
B=$(cd "${1:?usage: tests/mm-cli.sh BUILD_DIR}" && pwd)
G="$B/gemma4"
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/g4-mmcli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
if ! "$PY" -c 'import PIL' 2>/dev/null; then
    echo "SKIP: /usr/bin/python3 with Pillow (Debian python3-pil) is needed to make the test images"
    exit 0
fi

M="$T/m.gguf" MM="$T/mm.gguf"
"$G" make-test-model -q -o "$M" --preset tiny --layers 4 --embd 128 --vocab 262144 --window 16 --ctx 4096 \
    --type q8_0 --seed 5 --mmproj-out "$MM" >/dev/null 2>"$T/err" || { cat "$T/err"; echo "FAIL: make-test-model"; exit 1; }
"$G" make-test-model -q --embd 128 --mmproj-out "$T/mm-audio.gguf" --mmproj-audio-only >/dev/null 2>&1 || bad "audio-only mmproj"
"$G" make-test-model -q --embd 64 --mmproj-out "$T/mm-64.gguf" >/dev/null 2>&1 || bad "64-wide mmproj"
"$G" make-test-model -q --embd 128 --mmproj-out "$T/mm-vision.gguf" --mmproj-vision-only >/dev/null 2>&1 || bad "vision-only mmproj"

"$PY" - "$T" <<'PY'
import sys, struct, wave, math
from PIL import Image
d = sys.argv[1]
img = Image.new("RGB", (200, 120))
px = img.load()
for y in range(120):
    for x in range(200):
        px[x, y] = ((x * 7 + y) % 256, (y * 5) % 256, (x * y) % 256)
img.save(d + "/a.png")
img.resize((60, 90)).save(d + "/b.jpg", quality=90)
def wav(path, n, rate=16000, f=440.0, amp=0.3):
    w = wave.open(path, "wb"); w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
    w.writeframes(b"".join(struct.pack("<h", int(amp * 32767 * math.sin(2 * math.pi * f * i / rate))) for i in range(n)))
    w.close()
wav(d + "/a.wav", 16000)          # 1 s -> 25 tokens
wav(d + "/long.wav", 65 * 16000, f=220.0)  # 65 s -> 3 pieces
wav(d + "/empty.wav", 0)
open(d + "/bad.png", "wb").write(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
PY

argmax() { "$PY" -c 'import struct,sys; d=open(sys.argv[1],"rb").read(); v=struct.unpack("<%df"%(len(d)//4),d); print(max(range(len(v)),key=lambda i:v[i]))' "$1"; }

# --- 1. run == hand-built sequence through logits --embd ------------------
check_first_token() { # kind file prompt extra-run-opts...
    local kind=$1 file=$2 prompt=$3; shift 3
    local part="image" ph=258880 open=255999 close=258882 ekind=image mmopt=(--image "$file")
    if [ "$kind" = audio ]; then part="audio" ph=258881 open=256000 close=258883 ekind=causal mmopt=(--audio "$file"); fi
    printf '[{"role":"user","content":[{"type":"%s"},{"type":"text","text":"%s"}]}]' "$part" "$prompt" >"$T/msg.json"
    "$G" render --messages "$T/msg.json" >"$T/prompt.txt" || { bad "$kind: render"; return; }
    "$G" tokenize -m "$M" "$(cat "$T/prompt.txt")" >"$T/ids" || { bad "$kind: tokenize"; return; }
    read -r -a ids <"$T/ids"
    local pre=() suf=() seen=0
    for t in "${ids[@]}"; do
        if [ "$t" = "$ph" ] && [ $seen = 0 ]; then seen=1; continue; fi
        if [ $seen = 0 ]; then pre+=("$t"); else suf+=("$t"); fi
    done
    [ $seen = 1 ] || { bad "$kind: no placeholder $ph in the rendered prompt"; return; }
    pre+=("$open"); suf=("$close" "${suf[@]}")
    "$G" mmembed --mmproj "$MM" "--$kind" "$file" "$@" -o "$T/rows.f32" >"$T/mm.txt" 2>"$T/err" || { bad "$kind: mmembed: $(cat "$T/err")"; return; }
    "$G" logits -m "$M" --embd "$T/rows.f32" --embd-kind "$ekind" --embd-prefix "$(IFS=,; echo "${pre[*]}")" \
        --embd-suffix "$(IFS=,; echo "${suf[*]}")" --kv f16 -o "$T/lg.f32" >/dev/null 2>"$T/err" || { bad "$kind: logits --embd: $(cat "$T/err")"; return; }
    local want; want=$(argmax "$T/lg.f32")
    "$G" run -m "$M" --mmproj "$MM" "${mmopt[@]}" "$@" -p "$prompt" -n 1 --temp 0 --dump-ids "$T/gen" >"$T/out" 2>"$T/err" ||
        { bad "$kind: run: $(cat "$T/err")"; return; }
    local got; got=$(tr -d ' \n' <"$T/gen")
    if [ "$got" = "$want" ]; then ok; else bad "$kind: run's first token $got, logits --embd argmax $want"; fi
    local ntok; ntok=$(sed -n 's/^tokens //p' "$T/mm.txt")
    if grep -q "$ntok soft tokens" "$T/err"; then ok; else bad "$kind: run does not report $ntok soft tokens: $(cat "$T/err")"; fi
}
check_first_token image "$T/a.png" "What is in this picture?" --image-tokens 70
check_first_token image "$T/b.jpg" "Describe it." --image-tokens 140
check_first_token audio "$T/a.wav" "Transcribe this."

# image budget: 200x120 at 70 tokens -> fit 432x240? (HF rule) -> reported grid
"$G" run -m "$M" --mmproj "$MM" --image "$T/a.png" --image-tokens 70 -p "x" -n 1 --temp 0 >/dev/null 2>"$T/err"
if grep -q "image .*a.png: 200x120 -> " "$T/err"; then ok; else bad "run: image report missing: $(cat "$T/err")"; fi
# markers: two images placed by <image> in the text vs first: different prompts
"$G" run -m "$M" --mmproj "$MM" --image "$T/a.png" --audio "$T/a.wav" --image-tokens 70 -p "see <image> and hear <audio> now" -n 1 --temp 0 >/dev/null 2>"$T/err" &&
    grep -q "prefill image 1/2" "$T/err" && grep -q "prefill audio 2/2" "$T/err" && ok || bad "markers: $(cat "$T/err")"
"$G" run -m "$M" --mmproj "$MM" --audio "$T/a.wav" --image "$T/a.png" --image-tokens 70 -p "no markers" -n 1 --temp 0 >/dev/null 2>"$T/err" &&
    grep -q "prefill audio 1/2" "$T/err" && grep -q "prefill image 2/2" "$T/err" && ok || bad "command-line order: $(cat "$T/err")"

# --- 2. transcribe ---------------------------------------------------------
"$G" transcribe -m "$M" --mmproj "$MM" "$T/long.wav" -n 4 --language English >"$T/out" 2>"$T/err" || bad "transcribe long: $(cat "$T/err")"
if [ "$(grep -c '^\[[0-9][0-9]:[0-9][0-9]\.[0-9][0-9][0-9] --> ' "$T/out")" = 3 ]; then ok; else bad "transcribe: want 3 timed lines: $(cat "$T/out")"; fi
if head -n 1 "$T/out" | grep -q '^\[00:00\.000 --> 00:[23][0-9]\.[0-9]*\]' && tail -n 1 "$T/out" | grep -q -- '--> 01:05\.000\]'; then ok; else bad "transcribe time ranges: $(cat "$T/out")"; fi
"$G" transcribe -m "$M" --mmproj "$MM" "$T/a.wav" -n 3 >"$T/out" 2>"$T/err" && [ "$(wc -l <"$T/out")" = 1 ] && ! grep -q -- '-->' "$T/out" && ok || bad "transcribe short: $(cat "$T/out" "$T/err")"

# --- 3. errors ---------------------------------------------------------------
expect_err 2 "need --mmproj" "image without mmproj" -- "$G" run -m "$M" --image "$T/a.png" -p hi
expect_err 2 "need --mmproj" "audio without mmproj" -- "$G" run -m "$M" --audio "$T/a.wav" -p hi
expect_err 2 "not one of 70, 140, 280, 560, 1120" "bad budget" -- "$G" run -m "$M" --mmproj "$MM" --image "$T/a.png" --image-tokens 100 -p hi
expect_err 2 "--raw" "media with --raw" -- "$G" run -m "$M" --mmproj "$MM" --image "$T/a.png" --raw -p hi
expect_err 1 "nope.png" "missing image" -- "$G" run -m "$M" --mmproj "$MM" --image "$T/nope.png" -p hi
expect_err 1 "bad.png" "corrupt image" -- "$G" run -m "$M" --mmproj "$MM" --image "$T/bad.png" -p hi
expect_err 1 "no samples" "empty audio" -- "$G" run -m "$M" --mmproj "$MM" --audio "$T/empty.wav" -p hi
expect_err 1 "no vision" "image with an audio-only mmproj" -- "$G" run -m "$M" --mmproj "$T/mm-audio.gguf" --image "$T/a.png" -p hi
expect_err 1 "128" "mmproj for another width" -- "$G" run -m "$M" --mmproj "$T/mm-64.gguf" --image "$T/a.png" -p hi
expect_err 1 "mmproj-missing" "missing mmproj" -- "$G" run -m "$M" --mmproj "$T/mmproj-missing.gguf" --image "$T/a.png" -p hi
expect_err 1 "clip" "text model as mmproj" -- "$G" run -m "$M" --mmproj "$M" --image "$T/a.png" -p hi
expect_err 2 "markers" "marker count" -- "$G" run -m "$M" --mmproj "$MM" --image "$T/a.png" -p "<image> <image>"
expect_err 2 "context holds" "media longer than the context" -- "$G" run -m "$M" --mmproj "$MM" --image "$T/a.png" --ctx 40 -p hi
expect_err 2 "placeholder" "placeholder typed in the text" -- "$G" run -m "$M" --mmproj "$MM" --image "$T/a.png" --image-tokens 70 -p "look <|image|>"
expect_err 2 "missing --mmproj" "transcribe without mmproj" -- "$G" transcribe -m "$M" "$T/a.wav"
expect_err 2 "missing the audio file" "transcribe without file" -- "$G" transcribe -m "$M" --mmproj "$MM"
expect_err 1 "no samples" "transcribe empty audio" -- "$G" transcribe -m "$M" --mmproj "$MM" "$T/empty.wav"
expect_err 1 "no audio part" "transcribe with a vision-only mmproj" -- "$G" transcribe -m "$M" --mmproj "$T/mm-vision.gguf" "$T/a.wav"

echo "mm-cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
