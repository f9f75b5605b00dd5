#!/bin/bash
# cache.sh BUILD_DIR - the prompt cache (cache.mjs): multi-turn chat and
# partial prefixes on a warm one-slot server must match a cold server exactly
# (text and logprobs) while reporting cached_tokens; the model's sliding
# window (16) is shorter than every reused prefix, and --batch 64 keeps the
# sliding layers' KV ring at 80 positions, so a prefix that ends far behind
# the cached end cannot simply be truncated back to.  Needs node (no npm package).
set -u
B=${1:?usage: cache.sh BUILD_DIR}
T=$(mktemp -d /tmp/g4-srvcache.XXXXXX)
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/server/lib-server.sh
. "$(dirname "$0")/lib-server.sh"
trap 'srv_stop_all; rm -rf "$T"' EXIT
command -v node >/dev/null 2>&1 || { echo "SKIP: node not found (apt-get install nodejs)"; exit 0; }

make_model "$T/m.gguf" || { echo "cannot make the test model"; exit 1; }
srv_start warm -m "$T/m.gguf" --ctx 1024 --parallel 1 --batch 64 --threads 1 || exit 1
srv_start cold -m "$T/m.gguf" --ctx 1024 --parallel 1 --batch 64 --threads 1 || exit 1
G4_URL=$(srv_url warm) G4_COLD_URL=$(srv_url cold) G4_BIN=$G G4_MODEL=$T/m.gguf \
    node "$SRV_DIR/cache.mjs" && ok || bad "cache.mjs"
srv_stop warm
srv_stop cold
echo "cache: $pass passed, $fail failed"
[ "$fail" = 0 ]
