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
echo "demo done. Text generation (run/chat) arrives with the tokenizer work; see README.md."
