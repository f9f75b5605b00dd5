#!/bin/bash
# client.sh BUILD_DIR - the official `openai` npm client (pinned in
# tests/server/package.json) against `gemma4 serve` on a tiny random model:
# client.mjs (models, chat, tools, thinking, completions, tokenize) and, when
# make-test-model can write an mmproj, media.mjs (images, audio,
# transcriptions).  Prints "SKIP: ..." first and exits 0 only when the npm
# package cannot be had (no npm, registry unreachable).
set -u
B=${1:?usage: client.sh BUILD_DIR}
T=$(mktemp -d /tmp/g4-srvclient.XXXXXX)
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/server/lib-server.sh
. "$(dirname "$0")/lib-server.sh"
trap 'srv_stop_all; rm -rf "$T"' EXIT

NPM=$(npm_openai 2>"$T/npm.err") || { echo "SKIP: official openai client unavailable: $(cat "$T/npm.err")"; exit 0; }
export G4_NPM_OPENAI_DIR=$NPM G4_BIN=$G

make_model "$T/m.gguf" || { echo "cannot make the test model"; exit 1; }
srv_start text -m "$T/m.gguf" --ctx 1024 --parallel 2 --threads 1 || exit 1
G4_URL=$(srv_url text) G4_MODEL=$T/m.gguf G4_ALIAS=m node "$SRV_DIR/client.mjs" && ok || bad "client.mjs"
srv_stop text

if has_mmproj; then
    # media need the multimodal marker tokens, which exist from a full-size
    # vocabulary on (token_embd in f16 keeps the file at ~40 MB)
    make_model "$T/mm.gguf" --vocab 262144 --embd-type f16 --mmproj-out "$T/mmproj.gguf" || { echo "cannot make the media test model"; exit 1; }
    srv_start media -m "$T/mm.gguf" --mmproj "$T/mmproj.gguf" --ctx 4096 --parallel 4 --threads 2 || exit 1
    G4_URL=$(srv_url media) G4_MODEL=$T/mm.gguf G4_ALIAS=mm G4_MMPROJ=$T/mmproj.gguf node "$SRV_DIR/media.mjs" && ok || bad "media.mjs"
    srv_stop media
else
    echo "  SKIP: images, audio and transcriptions: make-test-model has no --mmproj-out"
fi

echo "client: $pass passed, $fail failed"
[ "$fail" = 0 ]
