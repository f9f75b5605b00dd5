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
echo "demo done. A real model: see README.md (gemma4 run / chat -m gemma-4-12B-it-qat-q4_0.gguf)."
