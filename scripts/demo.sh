#!/bin/bash
# demo.sh BUILD_DIR - the main job end to end on a small synthetic model.
# The weights are RANDOM: the model shows that the engine runs, not what
# Gemma 4 says.  Real models: see README.md.
set -euo pipefail
B=${1:-build}
G=$B/gemma4
M=$B/demo-model.gguf
echo "== gemma4.c demo (synthetic random-weight model: outputs are meaningless by design) =="
if [ ! -s "$M" ]; then
    "$G" make-test-model -o "$M" --layers 12 --type q4_0 --seed 42
fi
"$G" info "$M"
echo
echo "== logits of the token ids 2,105,9,10,11 (no BOS added) =="
"$G" logits -m "$M" --tokens 2,105,9,10,11 -o "$B/demo-logits.f32"
python3 - "$B/demo-logits.f32" <<'PY' 2>/dev/null || od -A d -t f4 -N 32 "$B/demo-logits.f32"
import struct, sys
data = open(sys.argv[1], 'rb').read()
v = struct.unpack('<%df' % (len(data) // 4), data)
top = sorted(range(len(v)), key=lambda i: -v[i])[:5]
print('top-5 next tokens:', ', '.join('%d (%.3f)' % (i, v[i]) for i in top))
PY
echo
echo "== gemma4 render: the chat template of one user turn =="
printf '[{"role":"user","content":"Hello, who are you?"}]' >"$B/demo-messages.json"
"$G" render --messages "$B/demo-messages.json"
echo
echo "== gemma4 run --raw: 24 sampled tokens (random weights: gibberish by design; a random model with a"
echo "   tied head mostly repeats its last token, so a presence penalty pushes it on) =="
"$G" run -m "$M" --raw -p "Once upon a time" -n 24 --seed 1 --presence-penalty 15
echo
echo "== images and audio: a random-weight model with the 262144-token vocabulary and its synthetic"
echo "   projector (gemma4uv + gemma4ua); a generated picture and a 2 s tone =="
MM_M=$B/demo-mm-model.gguf
MM_P=$B/demo-mmproj.gguf
if [ ! -s "$MM_M" ] || [ ! -s "$MM_P" ]; then
    "$G" make-test-model -q -o "$MM_M" --preset tiny --layers 4 --vocab 262144 --type q8_0 --seed 42 --mmproj-out "$MM_P"
fi
python3 - "$B" <<'PY'
import math, struct, sys, wave
d = sys.argv[1]
w, h = 320, 200                      # a 24-bit BMP: colour bands
rows = b""
for y in range(h - 1, -1, -1):       # bottom-up
    row = b"".join(struct.pack("BBB", (x * 255) // w, (y * 255) // h, 128) for x in range(w))
    rows += row + b"\0" * ((4 - len(row) % 4) % 4)
hdr = struct.pack("<2sIHHI", b"BM", 54 + len(rows), 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(rows), 2835, 2835, 0, 0)
open(d + "/demo-image.bmp", "wb").write(hdr + rows)
a = wave.open(d + "/demo-audio.wav", "wb")
a.setnchannels(1); a.setsampwidth(2); a.setframerate(16000)
a.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000))) for i in range(32000)))
a.close()
PY
"$G" mmembed --mmproj "$MM_P" --image "$B/demo-image.bmp" --image-tokens 70 -o "$B/demo-image.f32"
"$G" run -m "$MM_M" --mmproj "$MM_P" --image "$B/demo-image.bmp" --image-tokens 70 -p "What is in this image?" -n 12 --seed 1 --presence-penalty 15
echo
echo "== gemma4 transcribe (greedy; with random weights the text is meaningless and may be empty) =="
"$G" transcribe -m "$MM_M" --mmproj "$MM_P" "$B/demo-audio.wav" --language English -n 12
echo
echo "demo done. A real model: see README.md (gemma4 run / chat -m gemma-4-12B-it-qat-q4_0.gguf)."
