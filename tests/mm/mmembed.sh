#!/bin/bash
# mmembed.sh BUILD_DIR - `gemma4 mmembed` against an independent float64
# reference (tests/mm/ref_embed.py: its own GGUF reader, HF patch order,
# Pillow decode + resize) on generated projectors of every weight type,
# images of many sizes / aspect ratios / budgets / pixel formats, and WAV
# audio; then the command's error contract.  Prints the measured errors.
# Ends with "mmembed: N passed, N failed".  When a decoder is not built yet
# its part is skipped and the test says so on a line starting "SKIP:".
# G4_MMEMBED_12B=1 adds the real 12B shapes (a 100 MB projector, minutes).
set -u
B=${1:?usage: mmembed.sh BUILD_DIR}
G=$B/gemma4
D=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
T=$(mktemp -d /tmp/g4-mm.XXXXXX)
trap 'rm -rf "$T"' EXIT
# shellcheck source=tests/lib.sh
. "$D/../lib.sh"
skipped=""

if ! "$PY" -c 'import numpy, PIL' 2>/dev/null; then
    echo "SKIP: $PY lacks numpy or Pillow (python3-numpy, python3-pil)"
    exit 0
fi

E=64   # n_embd of every projector below
mk() { # NAME OPTIONS...: a projector from make-test-model
    local f=$T/$1; shift
    "$G" make-test-model --mmproj-out "$f" --embd $E -q "$@" >"$T/mk.out" 2>&1 ||
        bad "make-test-model --mmproj-out $*: $(cat "$T/mk.out")"
}
mk f32.gguf  --mmproj-width 96 --mmproj-image-mean 0.48,0.46,0.41 --mmproj-image-std 0.27,0.26,0.28 --seed 11
mk q8.gguf   --mmproj-width 64 --mmproj-type q8_0 --mmproj-norm-type f16 --seed 12
mk f16.gguf  --mmproj-width 80 --mmproj-type f16 --mmproj-image-mean 0.5,0.5,0.5 --mmproj-image-std 0.5,0.5,0.5 --seed 13
mk bf16.gguf --mmproj-width 64 --mmproj-type bf16 --seed 14
mk pos8.gguf --mmproj-width 32 --mmproj-pos 8 --mmproj-vision-only --seed 15
mk aud.gguf  --mmproj-audio-only --mmproj-type q8_0 --seed 16

# the generator: same options, same bytes; -o and --mmproj-out together
"$G" make-test-model --mmproj-out "$T/again.gguf" --embd $E -q --mmproj-width 96 \
    --mmproj-image-mean 0.48,0.46,0.41 --mmproj-image-std 0.27,0.26,0.28 --seed 11 >/dev/null
cmp -s "$T/f32.gguf" "$T/again.gguf" && ok || bad "make-test-model --mmproj-out is not deterministic"
"$G" make-test-model -o "$T/text.gguf" --mmproj-out "$T/both.gguf" --embd $E --layers 2 --vocab 512 >"$T/mk.out" 2>&1 &&
    [ -s "$T/text.gguf" ] && [ -s "$T/both.gguf" ] && ok || bad "-o with --mmproj-out: $(cat "$T/mk.out")"
expect_err 2 "--mmproj-type" "bad --mmproj-type" -- "$G" make-test-model --mmproj-out "$T/x.gguf" --mmproj-type q4_0
expect_err 2 "exclude each other" "vision-only + audio-only" -- "$G" make-test-model --mmproj-out "$T/x.gguf" \
    --mmproj-vision-only --mmproj-audio-only
expect_err 2 "need --mmproj-out" "--mmproj-width alone" -- "$G" make-test-model -o "$T/x.gguf" --mmproj-width 64
expect_err 2 "--mmproj-image-std" "std 0" -- "$G" make-test-model --mmproj-out "$T/x.gguf" --mmproj-image-std 1,0,1
[ ! -e "$T/x.gguf" ] && ok || bad "a refused make-test-model wrote a file"

worst_img=0 worst_aud=0
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
# compare NAME TOL: $T/c.* (gemma4) against $T/r.* (reference)
compare() {
    local name=$1 tol=$2 stats rel
    if ! cmp -s "$T/c.txt" "$T/r.txt"; then
        bad "$name: gemma4 printed '$(tr '\n' ' ' <"$T/c.txt")', the reference '$(tr '\n' ' ' <"$T/r.txt")'"
        return
    fi
    ok
    stats=$("$PY" "$D/ref_embed.py" compare "$T/c.f32" "$T/r.f32" $E)
    rel=$(sed -n 's/^rel \([^ ]*\) .*/\1/p' <<<"$stats")
    echo "  $name: $(tr '\n' ' ' <"$T/c.txt")| $stats"
    if [ -z "$rel" ]; then bad "$name: $stats"; return; fi
    le "$rel" "$tol" && ok || bad "$name: relative error $rel > $tol"
    if [ "$3" = image ]; then le "$rel" "$worst_img" || worst_img=$rel; else le "$rel" "$worst_aud" || worst_aud=$rel; fi
}

# ---- images ----
# image MMPROJ FILE BUDGET TOL: run both sides and compare
image() {
    local name
    name="$1 $(basename "$2") @$3"
    if ! "$G" mmembed --mmproj "$T/$1" --image "$2" --image-tokens "$3" -o "$T/c.f32" -t 2 >"$T/c.txt" 2>"$T/err"; then
        bad "$name: mmembed failed: $(head -c 300 "$T/err")"; return
    fi
    if ! "$PY" "$D/ref_embed.py" image "$T/$1" "$2" "$3" "$T/r.f32" >"$T/r.txt" 2>"$T/err"; then
        bad "$name: reference failed: $(head -c 300 "$T/err")"; return
    fi
    compare "$name" "$4" image
}
gen() { "$PY" "$D/gen_media.py" "$@" || bad "gen_media.py $*"; }
gen image "$T/768.png" 768 768 rgb 1
"$G" mmembed --mmproj "$T/f32.gguf" --image "$T/768.png" -o "$T/c.f32" >"$T/c.txt" 2>"$T/err"
if grep -q "not implemented" "$T/err"; then
    skipped="$skipped images"
    echo "skipped: image parts: $(cat "$T/err")"
else
    gen image "$T/960x672.png" 960 672 rgb 2
    gen image "$T/224.png" 224 224 rgb 3
    gen image "$T/640x480.jpg" 640 480 jpeg 4
    gen image "$T/1920x1080.png" 1920 1080 rgb 5
    gen image "$T/900x3.png" 900 3 rgb 6
    gen image "$T/333x517-gray.png" 333 517 gray 7
    gen image "$T/500x400-rgba.png" 500 400 rgba 8
    gen image "$T/257x130-palette.png" 257 130 palette 9
    gen image "$T/96-flat.png" 96 96 flat 10
    gen image "$T/50x1000.png" 50 1000 rgb 11
    # already at the fitted size: no resize, the embedder alone
    image f32.gguf  "$T/768.png" 280 1e-4
    image q8.gguf   "$T/960x672.png" 280 1e-4
    # resized (Pillow's bicubic on the reference side)
    image f32.gguf  "$T/224.png" 280 2e-2
    image f16.gguf  "$T/640x480.jpg" 70 2e-2
    image q8.gguf   "$T/1920x1080.png" 1120 2e-2
    image bf16.gguf "$T/900x3.png" 280 2e-2
    image f32.gguf  "$T/333x517-gray.png" 140 2e-2
    image f16.gguf  "$T/500x400-rgba.png" 560 2e-2
    image q8.gguf   "$T/257x130-palette.png" 70 2e-2
    image bf16.gguf "$T/96-flat.png" 70 2e-2
    image f32.gguf  "$T/50x1000.png" 1120 2e-2
    echo "  worst image relative error: $worst_img"

    # a grid wider than the position table (280 x 1 patches, 8 rows per axis)
    expect_err 1 "position table" "grid beyond n_pos" -- "$G" mmembed --mmproj "$T/pos8.gguf" --image "$T/900x3.png" -o "$T/o.f32"
    [ ! -e "$T/o.f32" ] && ok || bad "a failed mmembed left an output file"
    head -c 100 /dev/urandom >"$T/junk.png"
    expect_err 1 "" "garbage image" -- "$G" mmembed --mmproj "$T/f32.gguf" --image "$T/junk.png" -o "$T/o.f32"
    expect_err 1 "" "missing image" -- "$G" mmembed --mmproj "$T/f32.gguf" --image "$T/none.png" -o "$T/o.f32"
    expect_err 1 "no vision projector" "image with an audio-only mmproj" -- "$G" mmembed --mmproj "$T/aud.gguf" --image "$T/768.png" -o "$T/o.f32"
    expect_err 1 "cannot create" "unwritable output" -- "$G" mmembed --mmproj "$T/f32.gguf" --image "$T/768.png" -o /nonexistent/o.f32
fi

# ---- audio ----
audio() { # MMPROJ FILE
    local name
    name="$1 $(basename "$2")"
    if ! "$G" mmembed --mmproj "$T/$1" --audio "$2" -o "$T/c.f32" -t 2 >"$T/c.txt" 2>"$T/err"; then
        bad "$name: mmembed failed: $(head -c 300 "$T/err")"; return
    fi
    if ! "$PY" "$D/ref_embed.py" audio "$T/$1" "$2" "$T/r.f32" >"$T/r.txt" 2>"$T/err"; then
        bad "$name: reference failed: $(head -c 300 "$T/err")"; return
    fi
    compare "$name" 1e-4 audio
}
gen wav "$T/32333.wav" 32333 1 pcm16 1
"$G" mmembed --mmproj "$T/f32.gguf" --audio "$T/32333.wav" -o "$T/c.f32" >"$T/c.txt" 2>"$T/err"
if grep -q "not implemented" "$T/err"; then
    skipped="$skipped audio"
    echo "skipped: audio parts: $(cat "$T/err")"
else
    gen wav "$T/silent.wav" 16000 1 silent 2
    gen wav "$T/stereo.wav" 20000 2 pcm16 3
    gen wav "$T/float.wav" 1280 1 float32 4
    gen wav "$T/pcm24.wav" 7001 1 pcm24 5
    gen wav "$T/float-stereo.wav" 48000 2 float32 6
    audio f32.gguf "$T/32333.wav"
    grep -qx "tokens 51" "$T/c.txt" && ok || bad "32333 samples: $(head -1 "$T/c.txt"), want 51 tokens"
    audio aud.gguf "$T/32333.wav"
    audio f32.gguf "$T/silent.wav"
    grep -qx "tokens 25" "$T/c.txt" && ok || bad "silent 1 s: $(head -1 "$T/c.txt"), want 25 tokens"
    audio q8.gguf "$T/stereo.wav"
    audio f16.gguf "$T/float.wav"
    audio bf16.gguf "$T/pcm24.wav"
    audio aud.gguf "$T/float-stereo.wav"
    echo "  worst audio relative error: $worst_aud"
    expect_err 1 "no audio projector" "audio with a vision-only mmproj" -- "$G" mmembed --mmproj "$T/pos8.gguf" --audio "$T/32333.wav" -o "$T/o.f32"
    expect_err 1 "" "garbage audio" -- "$G" mmembed --mmproj "$T/f32.gguf" --audio "$T/junk.png" -o "$T/o.f32"
fi

# ---- the real 12B shapes (6912 -> 3840, 1120 positions; ~100 MB): on request ----
if [ -n "${G4_MMEMBED_12B:-}" ] && [ -z "$skipped" ]; then
    E=3840
    "$G" make-test-model --mmproj-out "$T/12b.gguf" --preset 12b --mmproj-type f16 -q >/dev/null || bad "12b mmproj"
    image 12b.gguf "$T/768.png" 280 1e-4
    image 12b.gguf "$T/640x480.jpg" 280 2e-2
    audio 12b.gguf "$T/32333.wav"
    rm -f "$T/12b.gguf"
    E=64
fi

# ---- usage and file errors (no decoder needed) ----
touch "$T/a.wav" "$T/a.png"
expect_err 2 "missing --mmproj" "no --mmproj" -- "$G" mmembed --image "$T/a.png" -o "$T/o.f32"
expect_err 2 "exactly one of --image and --audio" "both" -- "$G" mmembed --mmproj "$T/f32.gguf" --image "$T/a.png" --audio "$T/a.wav" -o "$T/o.f32"
expect_err 2 "exactly one of --image and --audio" "neither" -- "$G" mmembed --mmproj "$T/f32.gguf" -o "$T/o.f32"
expect_err 2 "missing -o" "no -o" -- "$G" mmembed --mmproj "$T/f32.gguf" --image "$T/a.png"
expect_err 2 "not one of 70, 140, 280, 560, 1120" "budget 100" -- "$G" mmembed --mmproj "$T/f32.gguf" --image "$T/a.png" --image-tokens 100 -o "$T/o.f32"
expect_err 2 "--image-tokens applies to --image only" "budget with audio" -- "$G" mmembed --mmproj "$T/f32.gguf" --audio "$T/a.wav" --image-tokens 70 -o "$T/o.f32"
expect_err 2 "unknown argument" "unknown option" -- "$G" mmembed --mmproj "$T/f32.gguf" --frob
expect_err 2 "needs a value" "missing value" -- "$G" mmembed --mmproj
expect_err 1 "cannot open" "missing mmproj" -- "$G" mmembed --mmproj "$T/none.gguf" --image "$T/a.png" -o "$T/o.f32"
expect_err 1 "not 'clip'" "text model as mmproj" -- "$G" mmembed --mmproj "$T/text.gguf" --audio "$T/a.wav" -o "$T/o.f32"
head -c 1000 "$T/f32.gguf" >"$T/cut.gguf"
expect_err 1 "" "truncated mmproj" -- "$G" mmembed --mmproj "$T/cut.gguf" --audio "$T/a.wav" -o "$T/o.f32"
[ ! -e "$T/o.f32" ] && ok || bad "a failed mmembed left an output file"
"$G" mmembed --help | grep -q "image-tokens" && ok || bad "mmembed --help"

if [ "$fail" = 0 ] && [ -n "$skipped" ]; then
    echo "SKIP: mmembed:$skipped not checked (decoder not implemented yet); $pass other checks passed"
fi
echo "mmembed: $pass passed, $fail failed"
[ "$fail" = 0 ]
